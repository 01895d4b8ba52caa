"""Ingest throughput of a 1,000-image zip through the real job vs a bare Pillow loop.

Both sides decode every image and make the same 256-px thumbnail from the same zip in
the same process, one after the other. Studio's job additionally validates, hashes,
stores originals and thumbnails, and writes rows and checkpoints. Ratio = Studio's
throughput / Pillow's; the goal is >= 0.8.
"""

from __future__ import annotations

import io
import os
import statistics
import time
import zipfile

import numpy as np
import pytest
from PIL import Image as PILImage

from studio.models import Image
from studio.services.ingest import upload_create
from studio.services.jobs import job_run
from tests.factories import make_dataset, make_project, make_user, upload

pytestmark = pytest.mark.benchmark
N = int(os.environ.get("BENCH_IMAGES", 1000))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", 3))


def _photo_zip(n: int) -> bytes:
    """n distinct 640x480 JPEGs cut from scikit-image's photos (real image statistics)."""
    from studio.demo import photo_arrays

    photos = [arr for _, arr in photo_arrays() if min(arr.shape[:2]) >= 300]
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for i in range(n):
            src = PILImage.fromarray(photos[i % len(photos)]).resize((800, 600))
            x, y = int(rng.integers(0, 160)), int(rng.integers(0, 120))
            crop = np.asarray(src.crop((x, y, x + 640, y + 480)), dtype=np.int16)
            crop = np.clip(crop + rng.integers(-3, 4, crop.shape), 0, 255).astype(np.uint8)
            out = io.BytesIO()
            PILImage.fromarray(crop).save(out, "JPEG", quality=90)
            zf.writestr(f"photos/{i:05d}.jpg", out.getvalue())
    return buf.getvalue()


def _bare_pillow(archive: bytes) -> float:
    start = time.perf_counter()
    with zipfile.ZipFile(io.BytesIO(archive)) as zf:
        for info in zf.infolist():
            img = PILImage.open(io.BytesIO(zf.read(info)))
            img.thumbnail((256, 256))
            img.convert("RGB").save(io.BytesIO(), "JPEG", quality=85)
    return time.perf_counter() - start


def _studio_job(archive: bytes, round_no: int) -> float:
    user = make_user(f"bench{round_no}")
    project = make_project(user, f"Bench {round_no}")
    dataset = make_dataset(project, user)
    start = time.perf_counter()
    job = upload_create(
        actor=user, project=project, dataset=dataset, files=[upload("photos.zip", archive)]
    )
    job_run(job_id=job.pk)
    elapsed = time.perf_counter() - start
    job.refresh_from_db()
    assert job.status == "succeeded" and job.result["accepted"] == N, job.result
    assert Image.objects.filter(project=project).count() == N
    return elapsed


@pytest.mark.django_db(transaction=True)
def test_ingest_throughput_vs_bare_pillow(capsys, settings):
    archive = _photo_zip(N)
    threads = settings.STUDIO["INGEST_THREADS"]
    studio, studio_1t, bare = [], [], []
    for r in range(ROUNDS):
        bare.append(_bare_pillow(archive))
        settings.STUDIO = {**settings.STUDIO, "INGEST_THREADS": threads}
        studio.append(_studio_job(archive, 2 * r))
        settings.STUDIO = {**settings.STUDIO, "INGEST_THREADS": 1}
        studio_1t.append(_studio_job(archive, 2 * r + 1))
    b = statistics.median(bare)
    with capsys.disabled():
        print(f"\ningest {N} images ({len(archive) / 1e6:.0f} MB zip), median of {ROUNDS} rounds:")
        print(f"  bare Pillow loop (1 thread)      {N / b:6.0f} img/s")
        for label, times in (
            (f"Studio job ({threads} threads)", studio),
            ("Studio job (1 thread)", studio_1t),
        ):
            s = statistics.median(times)
            print(f"  {label:<32} {N / s:6.0f} img/s   ratio {b / s:.2f} (goal >= 0.80)")
