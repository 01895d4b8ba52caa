"""Export to every format and import back, in headless chromium with a real worker.

A lead exports a labelled version from the dataset's *Export / import* page, downloads the
archive, and imports it into a fresh project holding the same photos. What the format can
hold comes back pixel for pixel; what it cannot is listed on the export's job page. A bad
file fails its import with the record named, and changes nothing.
"""

from __future__ import annotations

import json

import pytest

from annotation.models import Annotation
from studio.models import Job
from tests.annotation.exchange_helpers import label, schema, shapes, twin
from tests.e2e.conftest import SCREENSHOTS
from tests.factories import PASSWORD

pytestmark = [pytest.mark.e2e, pytest.mark.worker]

# Kinds each format holds (docs/formats.md); the others are reported at export.
HOLDS = {
    "coco": {"mask", "polygon", "box", "tag"},
    "cvat": {"mask", "polygon", "box", "tag"},
    "voc": {"box"},  # and non-overlapping masks; the labelled photos overlap some
    "yolo": {"box", "polygon"},
    "labelstudio": {"mask", "polygon", "box", "tag"},  # masks as its brush RLE
}


def _wait_for_job(page, worker, status: str = "succeeded") -> None:
    page.wait_for_url("**/jobs/*/")
    try:
        page.locator(f"#job-status[data-status={status}]").wait_for(timeout=90_000)
    except Exception:
        page.screenshot(path=str(SCREENSHOTS / "exchange-timeout.png"), full_page=True)
        raise AssertionError(
            f"{list(Job.objects.values('kind', 'status', 'error'))}\n{worker.logs()}"
        )


def _kinds(found: dict, kinds: set) -> dict:
    return {k: v for k, v in found.items() if k[2] in kinds}


def test_export_every_format_and_import_back(browser, live_server, worker, team, version, tmp_path):
    lead = team["lead"]
    label(lead, version, schema(lead, team["project"]), status="submitted")
    original = shapes(version, attributes=False)
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    base = live_server.url
    page.goto(f"{base}/accounts/login/")
    page.fill("#id_username", lead.username)
    page.fill("#id_password", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url(f"{base}/")
    exchange = f"{base}/p/{team['project'].slug}/datasets/{version.dataset_id}/exchange/"

    copy = twin(lead, name="Copy")
    schema(lead, copy.dataset.project)  # the same label schema, so classes match by name
    copy_page = f"{base}/p/{copy.dataset.project.slug}/datasets/{copy.dataset_id}/exchange/"
    for fmt, kinds in HOLDS.items():
        Annotation.objects.filter(image__project=copy.dataset.project).delete()  # a clean slate
        page.goto(exchange)
        page.select_option("#id_export-format", fmt)
        page.uncheck("input[name=export-statuses][value=accepted]")
        page.check("input[name=export-statuses][value=submitted]")
        page.get_by_role("button", name="Export").click()
        _wait_for_job(page, worker)
        job = Job.objects.filter(kind="export").latest("pk")
        if kinds != {"mask", "polygon", "box", "tag"}:
            page.get_by_text("this format cannot hold").wait_for()
            assert job.result["not_held_count"] > 0
        with page.expect_download() as download:
            page.get_by_role("link", name="Download").click()
        path = tmp_path / download.value.suggested_filename
        download.value.save_as(path)
        if fmt == "coco":
            page.screenshot(path=str(SCREENSHOTS / "export-job.png"), full_page=True)

        page.goto(copy_page)
        page.select_option("#id_import-format", fmt)
        page.set_input_files("#id_import-file", str(path))
        page.get_by_role("button", name="Import").click()
        _wait_for_job(page, worker)
        imported = shapes(copy, attributes=False)
        assert _kinds(imported, kinds) == _kinds(original, kinds), fmt
        if fmt in ("cvat", "labelstudio"):  # attributes travel too
            assert shapes(copy) == shapes(version)

    # A file naming a path outside the dataset fails with the record named; nothing changes.
    Annotation.objects.filter(image__project=copy.dataset.project).delete()
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({
        "images": [{"id": 1, "file_name": "../../etc/passwd", "width": 10, "height": 10}],
        "categories": [{"id": 1, "name": "car"}],
        "annotations": [{"id": 7, "image_id": 1, "category_id": 1, "bbox": [1, 1, 2, 2]}],
    }))  # fmt: skip
    page.goto(copy_page)
    page.select_option("#id_import-format", "coco")
    page.set_input_files("#id_import-file", str(bad))
    page.check("#id_import-create_classes")
    page.get_by_role("button", name="Import").click()
    _wait_for_job(page, worker, "failed")
    problems = page.locator("#problems").inner_text()
    assert "nothing was imported" in problems and "etc/passwd" in problems
    page.screenshot(path=str(SCREENSHOTS / "import-failed.png"), full_page=True)
    assert not Annotation.objects.filter(image__project=copy.dataset.project).exists()
