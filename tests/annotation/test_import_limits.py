"""Hostile import files, posted through the real import API: limits hold before reading.

A small zip that expands to a 300 MiB label file, a mask PNG whose header claims
15,000 × 15,000 pixels, a Label Studio brush declaring an enormous size for an image the
version lacks, entries that escape the archive: each is a clear problem in the job's
report, found from headers, quickly, in bounded memory, and the job fails once without
a retry.
"""

from __future__ import annotations

import io
import json
import time
import tracemalloc
import zipfile

import PIL.Image
import pytest

from annotation.services.labels import label_class_create
from studio.models import DatasetVersion, Image, Job
from studio.services.ingest import upload_create
from studio.services.jobs import job_run
from tests.factories import image_bytes, png_bomb, upload

W, H = 60, 40


@pytest.fixture
def version(team, dataset) -> DatasetVersion:
    job = upload_create(actor=team["lead"], project=team["project"], dataset=dataset,
                        files=[upload("small.png", image_bytes(size=(W, H), fmt="PNG"))])  # fmt: skip
    job_run(job_id=job.pk)
    for kind in ("mask", "box"):
        label_class_create(actor=team["lead"], project=team["project"], name=kind, kind=kind)
    return DatasetVersion.objects.get(dataset=dataset)


def _import(api, team, version, fmt: str, data: bytes, name: str = "hostile.zip") -> Job:
    url = (
        f"/api/v1/projects/{team['project'].slug}/datasets/{version.dataset_id}/versions/"
        f"{version.number}/import/"
    )
    f = io.BytesIO(data)
    f.name = name
    r = api(team["lead"]).post(url, {"format": fmt, "file": f}, format="multipart")
    assert r.status_code == 202, r.content
    job_run(job_id=r.json()["id"])
    job = Job.objects.get(pk=r.json()["id"])
    assert job.status == Job.Status.FAILED and job.attempts == 1, (job.status, job.error)
    assert "Internal error" not in job.error
    assert not Image.objects.get(original_name="small.png").annotations.exists()
    return job


def _messages(job: Job) -> str:
    return " | ".join(f"{p['where']}: {p['message']}" for p in job.result["problems"])


def test_a_small_zip_with_a_300_mib_label_file_is_refused_unread(api, team, version):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("classes.txt", "box\n")
        with zf.open("labels/small.txt", "w", force_zip64=True) as member:
            line = b"0 0.5 0.5 0.1 0.1\n" * (1 << 16)  # ~1.2 MB, written 256 times
            for _ in range(256):
                member.write(line)
    data = buf.getvalue()
    assert len(data) < 2 * 1024**2
    tracemalloc.start()
    started = time.monotonic()
    job = _import(api, team, version, "yolo", data)
    elapsed = time.monotonic() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert "labels/small.txt" in job.error and "compression ratio" in job.error
    assert elapsed < 10 and peak < 64 * 1024**2, (elapsed, peak)


def test_a_label_file_too_large_to_read_whole_is_refused(api, team, version, settings):
    settings.STUDIO = {**settings.STUDIO, "MAX_FILE_BYTES": 1000}
    lines = "".join(f"0 0.5 0.5 0.{n % 9 + 1} 0.1\n" for n in range(200))
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w") as zf:
        zf.writestr("classes.txt", "box\n")
        zf.writestr("labels/small.txt", lines)
    job = _import(api, team, version, "yolo", data.getvalue())
    assert "labels/small.txt is 4,000 bytes" in job.error or "limited to 1,000" in job.error


def test_a_mask_png_of_15000_squared_pixels_is_refused_before_decoding(api, team, version):
    xml = ("<annotation><filename>small.png</filename><object><name>mask</name>"
           "<bndbox><xmin>1</xmin><ymin>1</ymin><xmax>9</xmax><ymax>9</ymax></bndbox>"
           "</object></annotation>")  # fmt: skip
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w") as zf:
        zf.writestr("Annotations/small.xml", xml)
        zf.writestr("SegmentationObject/small.png", png_bomb(15_000, 15_000))
    started = time.monotonic()
    job = _import(api, team, version, "voc", data.getvalue())
    assert time.monotonic() - started < 10
    assert "15000x15000 = 225,000,000 pixels" in _messages(job), _messages(job)


def test_a_brush_declaring_an_enormous_size_for_a_missing_image_is_not_decoded(api, team, version):
    region = {"id": "r1", "type": "brushlabels", "from_name": "label", "to_name": "image",
              "original_width": 200_000, "original_height": 200_000,
              "value": {"format": "rle", "rle": [0] * 64, "brushlabels": ["mask"]}}  # fmt: skip
    tasks = [{"id": 1, "data": {"image": "missing.png"}, "annotations": [{"result": [region]}]}]
    started = time.monotonic()
    job = _import(api, team, version, "labelstudio", json.dumps(tasks).encode(), "tasks.json")
    assert time.monotonic() - started < 10
    assert "'missing.png' is not in version" in _messages(job), _messages(job)


@pytest.mark.parametrize(
    ("entry", "reason"),
    [("../annotations.json", "escapes"), ("/annotations.json", "absolute")],
)
def test_an_import_archive_whose_entries_escape_is_refused(api, team, version, entry, reason):
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w") as zf:
        zf.writestr(entry, "{}")
    job = _import(api, team, version, "coco", data.getvalue())
    assert reason in job.error


def test_an_import_archive_with_too_many_entries_is_refused(api, team, version, settings):
    settings.STUDIO = {**settings.STUDIO, "MAX_ARCHIVE_ENTRIES": 5}
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w") as zf:
        for n in range(6):
            zf.writestr(f"labels/{n}.txt", "")
    job = _import(api, team, version, "yolo", data.getvalue())
    assert "6 files; the limit is 5" in job.error


def test_pillows_own_bomb_guard_stays_on():
    import studio.uploads  # noqa: F401 - importing it once switched the guard off

    assert PIL.Image.MAX_IMAGE_PIXELS is not None and PIL.Image.MAX_IMAGE_PIXELS > 0


def test_a_checkpoint_zip_that_expands_too_far_is_refused_before_torch_reads_it(api, team):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("archive/data.pkl", b"\x80\x02}q\x00.")
        zf.writestr("archive/data/0", bytes(20 * 1024**2))
    f = io.BytesIO(buf.getvalue())
    f.name = "bomb.pt"
    url = f"/api/v1/projects/{team['project'].slug}/checkpoints/"
    body = {"name": "bomb", "architecture": "efficientnet_lite0", "file": f}
    r = api(team["lead"]).post(url, body, format="multipart")
    assert r.status_code == 400, r.content
    assert "archive/data/0: compression ratio" in r.json()["error"]["message"]


def test_a_voc_annotation_xml_too_large_to_parse_whole_is_that_files_problem(
    api, team, version, settings
):
    settings.STUDIO = {**settings.STUDIO, "MAX_FILE_BYTES": 2000}
    objects = "".join(
        "<object><name>box</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>9</xmax>"
        "<ymax>9</ymax></bndbox></object>" for _ in range(40)
    )  # fmt: skip
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w") as zf:
        zf.writestr("Annotations/small.xml", f"<annotation>{objects}</annotation>")
    job = _import(api, team, version, "voc", data.getvalue())
    assert "Annotations/small.xml is " in _messages(job) and "limited to 2,000" in _messages(job)
