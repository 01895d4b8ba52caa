"""Pages work under the Content-Security-Policy: charts, Swagger UI, the admin, the small
behaviours moved out of inline attributes, and the sign-in lockout page.

The ``browser`` fixture fails any test whose pages log a CSP violation.
"""

from __future__ import annotations

import pytest

from studio.models import Job
from tests.annotation.test_quality_stats import scenario  # noqa: F401 - shared fixture
from tests.factories import PASSWORD, make_user

pytestmark = pytest.mark.e2e


def _sign_in(page, url, username, password=PASSWORD):
    page.goto(f"{url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("main button[type=submit]")


def test_pages_work_under_the_policy(live_server, browser, scenario):  # noqa: F811
    lead, project, queue = scenario["lead"], scenario["project"], scenario["queue"]
    lead.is_staff = lead.is_superuser = True
    lead.save()
    url = live_server.url
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    _sign_in(page, url, "lead")
    page.wait_for_url(f"{url}/")

    # Plotly charts, drawn by a static script from the figures in the page.
    page.goto(f"{url}/p/{project.slug}/queues/{queue.pk}/stats/")
    page.locator("#chart-honeypots .main-svg").first.wait_for()
    assert page.locator(".plot-container").count() == 4

    # Progress bars get their width from data-width (no style attribute).
    page.goto(f"{url}/p/{project.slug}/")
    assert Job.objects.filter(project=project, progress=100).exists()
    bar = page.locator("#jobs .progress > div").first
    assert bar.evaluate("el => el.style.width") == "100%"

    # A <select data-autosubmit> submits its form when changed.
    page.goto(f"{url}/p/{project.slug}/review/")
    page.select_option("#queue", str(queue.pk))
    page.wait_for_url(f"**/review/?queue={queue.pk}")

    # Swagger UI from the sidecar, started by its split-out script.
    page.goto(f"{url}/api/docs/")
    page.locator(".swagger-ui .info .title").wait_for()
    assert "Studio API" in page.locator(".swagger-ui .info .title").inner_text()
    page.locator(".opblock").first.wait_for()

    # The admin.
    page.goto(f"{url}/admin/")
    page.locator("#site-name").wait_for()
    page.goto(f"{url}/admin/studio/project/")
    page.locator("#result_list").wait_for()


def test_repeated_wrong_passwords_show_the_lockout_page(live_server, browser, db, settings):
    settings.AXES_FAILURE_LIMIT = 3
    make_user("mallory-target")
    page = browser.new_page()
    for _ in range(3):
        _sign_in(page, live_server.url, "mallory-target", "guess")
    assert page.locator("h1").inner_text() == "Too many failed sign-ins"
    assert "Try again in 15 minutes" in page.locator("#lockout").inner_text()
    _sign_in(page, live_server.url, "mallory-target")  # the right password, too late
    assert page.locator("h1").inner_text() == "Too many failed sign-ins"
