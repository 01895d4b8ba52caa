"""COCO export, then import, of 100,000 annotations vs loading the file with pycocotools.

The same ``annotations.json`` (written by Studio's export job) is loaded by
``pycocotools.coco.COCO(path)`` and imported by Studio's import job in the same process,
one after the other. Studio's import parses, resolves images and classes, validates
every geometry (RLE counts, polygon self-intersection, bounds, attributes) and writes
every annotation in one transaction (an imported annotation's create revision is written
when it first changes); pycocotools only parses and indexes. Ratio = Studio's throughput / pycocotools'; the goal is >= 0.5.

Memory: the peak of Python allocations (tracemalloc) while importing a tenth of the
file and the whole file, in separate untimed runs; flat means the whole file's peak is
not ten times the tenth's.
"""

from __future__ import annotations

import gc
import json
import os
import statistics
import time
import tracemalloc
import zipfile

import numpy as np
import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile

from annotation import geometry as geo
from annotation.models import Annotation, LabelClass
from annotation.services.export import export_start
from annotation.services.imports import import_start
from studio.models import DatasetVersion, Image, Job
from studio.services.datasets import dataset_add_images, dataset_version_create
from studio.services.jobs import job_run
from tests.factories import make_dataset, make_project, make_user

pytestmark = pytest.mark.benchmark
N = int(os.environ.get("BENCH_ANNOTATIONS", 100_000))
PER_IMAGE = 100
ROUNDS = int(os.environ.get("BENCH_ROUNDS", 2))
W, H = 640, 480


def _version(owner, name: str) -> DatasetVersion:
    """A version of N / PER_IMAGE image rows (no pixels needed to exchange annotations)."""
    project = make_project(owner, name)
    for cls, kind in (("cell", "mask"), ("road", "polygon"), ("car", "box")):
        LabelClass.objects.create(project=project, name=cls, kind=kind)
    images = [
        Image(project=project, sha256=f"{i:064x}", file=f"x/{i}.jpg", thumbnail=f"x/{i}.t.jpg",
              original_name=f"frames/{i:05d}.jpg", format="JPEG", width=W, height=H, byte_size=1)
        for i in range(max(1, N // PER_IMAGE))
    ]  # fmt: skip
    Image.objects.bulk_create(images)
    dataset = make_dataset(project, owner)
    dataset_add_images(
        dataset=dataset,
        image_ids=list(Image.objects.filter(project=project).values_list("pk", flat=True)),
    )
    version, _ = dataset_version_create(dataset=dataset, actor=owner)
    return version


def _annotate(version: DatasetVersion) -> None:
    """A third each of distinct masks, non-convex 16-vertex polygons and boxes, stored as
    the API stores them (canonical RLE, vertices rounded to 3 decimals)."""
    import cv2
    from pycocotools import mask as coco

    rng = np.random.default_rng(0)
    classes = {c.kind: c for c in LabelClass.objects.filter(project=version.dataset.project)}
    image_ids = list(version.items.order_by("image_id").values_list("image_id", flat=True))
    rows = []
    for n in range(N):
        image_id = image_ids[n // PER_IMAGE % len(image_ids)]
        if n % 3 == 0:
            canvas = np.zeros((H, W), np.uint8)
            centre = (int(rng.integers(60, 580)), int(rng.integers(60, 420)))
            axes = (int(rng.integers(8, 45)), int(rng.integers(8, 45)))
            cv2.ellipse(canvas, centre, axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
            rle = coco.encode(np.asfortranarray(canvas))
            shape = geo.Geometry("mask", {"size": [H, W], "counts": rle["counts"].decode()},
                                 float(coco.area(rle)), tuple(float(v) for v in coco.toBbox(rle)))  # fmt: skip
        elif n % 3 == 1:  # star-shaped: simple, rarely convex
            cx, cy = rng.uniform(40, 600), rng.uniform(40, 440)
            angles = np.linspace(0, 2 * np.pi, 17)[:-1]
            radius = rng.uniform(8, 35, 16)
            pts = np.stack([cx + radius * np.cos(angles), cy + radius * np.sin(angles)], 1)
            shape = geo.polygon(np.clip(pts, 0, [W, H]).round(2).ravel().tolist(), W, H)
        else:
            shape = geo.box(
                [round(rng.uniform(0, 500), 2), round(rng.uniform(0, 400), 2), 50.5, 40.25], W, H
            )
        rows.append(Annotation(image_id=image_id, label_class=classes[shape.kind], kind=shape.kind,
                               geometry=shape.data, area=shape.area, bbox=list(shape.bbox),
                               status="submitted"))  # fmt: skip
    Annotation.objects.bulk_create(rows, batch_size=2000)


def _import(owner, version, path: str, dry_run: bool = False) -> tuple[float, Job]:
    with open(path, "rb") as fh:
        job = import_start(actor=owner, version=version, fmt="coco", dry_run=dry_run,
                           upload=SimpleUploadedFile("annotations.json", fh.read()))  # fmt: skip
    gc.collect()
    start = time.perf_counter()
    if os.environ.get("BENCH_PROFILE"):
        import cProfile
        import pstats

        prof = cProfile.Profile()
        prof.runcall(job_run, job_id=job.pk)
        pstats.Stats(prof).sort_stats(os.environ["BENCH_PROFILE"]).print_stats(22)
    else:
        job_run(job_id=job.pk)
    elapsed = time.perf_counter() - start
    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    return elapsed, job


def _subset(path: str, out: str, n: int) -> None:
    with open(path) as fh:
        doc = json.load(fh)
    doc["annotations"] = doc["annotations"][:n]
    with open(out, "w") as fh:
        json.dump(doc, fh)


def _peak(fn) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.django_db(transaction=True)
def test_coco_import_throughput_vs_pycocotools(capsys, tmp_path):
    from pycocotools.coco import COCO

    owner = make_user("bench")
    source = _version(owner, "Source")
    _annotate(source)

    start = time.perf_counter()
    export = export_start(actor=owner, version=source, fmt="coco")
    job_run(job_id=export.pk)
    export_s = time.perf_counter() - start
    export.refresh_from_db()
    assert export.result["annotations"] == N, export.result
    path = str(tmp_path / "annotations.json")
    with default_storage.open(export.result["path"], "rb") as fh, zipfile.ZipFile(fh) as zf:
        (tmp_path / "annotations.json").write_bytes(zf.read("annotations.json"))
    size_mb = os.path.getsize(path) / 1e6

    studio, coco, checks = [], [], []
    for round_no in range(ROUNDS):
        gc.collect()
        start = time.perf_counter()
        COCO(path)
        coco.append(time.perf_counter() - start)
        target = _version(owner, f"Target {round_no}")
        checks.append(_import(owner, target, path, dry_run=True)[0])
        elapsed, job = _import(owner, target, path)
        assert job.result["imported"] == N
        studio.append(elapsed)
        assert Annotation.objects.filter(image__project=target.dataset.project).count() == N

    # Memory, untimed: a tenth of the file, then the whole file (each into a fresh version).
    tenth = str(tmp_path / "tenth.json")
    _subset(path, tenth, N // 10)
    peak_tenth = _peak(lambda: _import(owner, _version(owner, "Mem tenth"), tenth))
    peak_full = _peak(lambda: _import(owner, _version(owner, "Mem full"), path))
    peak_coco = _peak(lambda: COCO(path))
    # The export of a tenth (the first tenth of the images, in a version of their own).
    dataset = make_dataset(source.dataset.project, owner, "Tenth")
    first = source.items.order_by("image_id").values_list("image_id", flat=True)
    dataset_add_images(dataset=dataset, image_ids=list(first[: max(1, N // PER_IMAGE // 10)]))
    small, _ = dataset_version_create(dataset=dataset, actor=owner)
    export_tenth = _peak(
        lambda: job_run(job_id=export_start(actor=owner, version=small, fmt="coco").pk)
    )
    export_full = _peak(
        lambda: job_run(job_id=export_start(actor=owner, version=source, fmt="coco").pk)
    )

    s, c, d = statistics.median(studio), statistics.median(coco), statistics.median(checks)
    with capsys.disabled():
        print(
            f"\nCOCO file: {N:,} annotations, {size_mb:.1f} MB; export job {export_s:.2f} s "
            f"({N / export_s:,.0f} annotations/s)"
        )
        print(
            f"pycocotools COCO(path): {c:.2f} s ({N / c:,.0f}/s), runs {[round(x, 2) for x in coco]}"
        )
        print(
            f"Studio import job:      {s:.2f} s ({N / s:,.0f}/s), runs {[round(x, 2) for x in studio]}"
        )
        print(f"ratio (Studio / pycocotools throughput): {c / s:.2f}x (goal >= 0.5x)")
        print(f"Studio dry run (parse + resolve + validate, no writes): {d:.2f} s: {c / d:.2f}x")
        print(f"peak Python memory: import of {N // 10:,}: {peak_tenth / 1e6:.1f} MB; of {N:,}: "
              f"{peak_full / 1e6:.1f} MB; pycocotools COCO of {N:,}: {peak_coco / 1e6:.1f} MB")  # fmt: skip
        print(f"peak Python memory of the export job: {N // 10:,}: {export_tenth / 1e6:.1f} MB; "
              f"{N:,}: {export_full / 1e6:.1f} MB")  # fmt: skip
    assert peak_full < 3 * peak_tenth, "import memory grows with the file"
    assert export_full < 3 * export_tenth, "export memory grows with the version"
