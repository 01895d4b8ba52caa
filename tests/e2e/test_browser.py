"""A new user's first session in headless chromium: sign in, set up a project, upload a zip."""

from __future__ import annotations

import pytest

from studio.models import Image, Job, Objective
from tests.e2e.conftest import SCREENSHOTS
from tests.factories import PASSWORD, image_bytes, make_user, zip_bytes

pytestmark = [pytest.mark.e2e, pytest.mark.worker]


def test_new_user_creates_project_uploads_zip_and_sees_thumbnails(
    browser, live_server, worker, tmp_path
):
    make_user("maria")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    url = live_server.url

    page.goto(f"{url}/")
    page.fill("#id_username", "maria")
    page.fill("#id_password", PASSWORD)
    page.click("main button[type=submit]")
    page.get_by_role("link", name="New project").click()
    page.fill("#id_name", "Parcel damage")
    page.fill("#id_business_problem", "Damaged parcels slip through the depot unnoticed.")
    page.click("main button[type=submit]")
    page.wait_for_url(f"{url}/p/parcel-damage/")

    page.get_by_role("link", name="Add objective").click()
    page.fill("#id_title", "Catch damaged parcels")
    page.fill("#id_kpi", "Recall on damaged parcels")
    page.fill("#id_target_value", "0.95")
    page.fill("#id_unit", "%")
    page.click("main button[type=submit]")
    page.get_by_text("Objective saved.").wait_for()
    assert page.locator("#objectives td", has_text="Catch damaged parcels").count() == 1

    page.get_by_role("link", name="Define").click()
    page.select_option("#id_task_type", "detection")
    page.fill("#id_criteria-0-metric", "AP50")
    page.fill("#id_criteria-0-threshold", "0.8")
    page.fill("#id_criteria-0-slice", "lighting=dark")
    page.click("main button[type=submit]")
    page.get_by_text("Problem statement saved.").wait_for()
    assert page.locator("#problem code", has_text="AP50").count() == 1

    page.get_by_role("link", name="New dataset").click()
    page.fill("#id_name", "Depot cameras")
    page.click("main button[type=submit]")
    archive = tmp_path / "depot.zip"
    archive.write_bytes(
        zip_bytes(
            {f"cam/{i}.jpg": image_bytes(i, (320, 240)) for i in range(6)}
            | {"cam/notes.txt": b"shift log", "cam/broken.jpg": image_bytes(9)[:300]}
        )
    )
    page.set_input_files("#id_files", str(archive))
    page.click("main button[type=submit]")
    page.wait_for_url(f"{url}/jobs/*/")
    try:
        page.locator("#job-status[data-status=succeeded]").wait_for(timeout=90_000)
    except Exception:
        page.screenshot(path=str(SCREENSHOTS / "job-timeout.png"), full_page=True)
        raise AssertionError(
            f"job did not finish: {list(Job.objects.values('status', 'message', 'error'))}\n{worker.logs()}"
        )
    assert page.locator("#count-accepted").inner_text() == "6"
    assert page.locator("#count-rejected").inner_text() == "2"
    page.get_by_text("broken.jpg").wait_for()  # the file list refreshes when the job ends
    page.screenshot(path=str(SCREENSHOTS / "job.png"), full_page=True)

    page.get_by_role("link", name="Open the dataset").click()
    thumbs = page.locator(".thumbs img")
    assert thumbs.count() == 6
    page.wait_for_function(
        # A function, not an expression: Playwright evals expressions, which the CSP refuses.
        "() => Array.from(document.querySelectorAll('.thumbs img')).every(i => i.complete && i.naturalWidth > 0)"
    )
    page.screenshot(path=str(SCREENSHOTS / "dataset.png"), full_page=True)

    assert Objective.objects.get().title == "Catch damaged parcels"
    assert Image.objects.count() == 6 and Job.objects.get().status == "succeeded"
