"""Curating in the browser: a lasso on the embedding map becomes a new version and a queue."""

from __future__ import annotations

import pytest

from annotation.models import AnnotationQueue
from annotation.services.curation import analyze_job_start, cluster_job_start
from annotation.services.embeddings import embedding_job_start
from studio.models import DatasetVersion
from studio.services.jobs import job_run
from tests.e2e.conftest import SCREENSHOTS
from tests.factories import PASSWORD

pytestmark = pytest.mark.e2e


def _sign_in(page, url, username):
    page.goto(f"{url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("main button[type=submit]")


def _lasso_everything(page):
    page.evaluate("document.getElementById('map').scrollIntoView({block: 'center'})")
    box = page.locator("#map .nsewdrag").first.bounding_box()
    x0, y0, x1, y1 = (
        box["x"] + 3,
        box["y"] + 3,
        box["x"] + box["width"] - 3,
        box["y"] + box["height"] - 3,
    )
    page.mouse.move(x0, y0)
    page.mouse.down()
    for x, y in [(x1, y0), (x1, y1), (x0, y1), (x0, y0 + 2)]:
        page.mouse.move(x, y, steps=8)
    page.mouse.up()


def test_lasso_selection_becomes_a_version_and_a_queue(live_server, browser, team, version):
    job_run(
        job_id=embedding_job_start(
            actor=team["lead"], version=version, backbone="efficientnet_lite0"
        ).pk
    )
    job_run(job_id=analyze_job_start(actor=team["lead"], version=version).pk)
    job_run(job_id=cluster_job_start(actor=team["lead"], version=version, k=3).pk)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    _sign_in(page, live_server.url, "reviewer")
    page.goto(f"{live_server.url}/p/{team['project'].slug}/datasets/{version.dataset_id}/curate/")
    page.locator("#map .scatterlayer .point").first.wait_for()
    assert page.locator("#map .scatterlayer .point").count() == 9
    assert page.locator("#histograms .plot-container").count() >= 6

    # Plotly's drag layer takes the events: bring the map into view and move onto a point
    # in steps, as a person's mouse would.
    page.evaluate("document.getElementById('map').scrollIntoView({block: 'center'})")
    point = page.locator("#map .scatterlayer .point").first.bounding_box()
    page.mouse.move(point["x"] - 25, point["y"] - 25)
    page.mouse.move(point["x"] + point["width"] / 2, point["y"] + point["height"] / 2, steps=10)
    page.locator("#preview:not([hidden]) img").wait_for()

    _lasso_everything(page)
    page.get_by_text("9 images selected on the map").wait_for()
    assert page.locator("#selection-thumbs img").count() == 9
    page.screenshot(path=str(SCREENSHOTS / "curate.png"), full_page=True)
    page.select_option("#action", "queue")
    page.fill("#queue_name", "Whole set")
    page.click("#apply-button")
    page.get_by_text("Annotation queue made with 9 images").wait_for()
    assert AnnotationQueue.objects.get().items.count() == 9

    page.locator(".select-cluster").first.click()
    page.select_option("#action", "keep_only")
    page.click("#apply-button")
    # Asked first, in numbers, with the images it would leave out; nothing made yet.
    page.get_by_text("Version 2 will have").wait_for()
    assert "fewer than version 1 (9)" in page.locator("#confirm").inner_text()
    assert page.locator("#confirm .small-thumbs img").count() > 0
    assert DatasetVersion.objects.filter(dataset=version.dataset).count() == 1
    page.screenshot(path=str(SCREENSHOTS / "curate-confirm.png"), full_page=True)
    page.locator("#confirm button[type=submit]").click()
    page.get_by_text("Version 2 made").wait_for()
    v2 = DatasetVersion.objects.get(dataset=version.dataset, number=2)
    assert 0 < v2.image_count < 9
    # Undo: restore version 1's images as version 3, asked first too.
    page.get_by_role("link", name="Undo: restore version 1…").click()
    page.get_by_text("Version 3 will have 9 images").wait_for()
    page.locator("#confirm button[type=submit]").click()
    page.get_by_text("Version 3 made with the 9 images of version 1").wait_for()
    v3 = DatasetVersion.objects.get(dataset=version.dataset, number=3)
    assert v3.image_count == 9
