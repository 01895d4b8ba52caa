"""Ingest through a real Celery worker process, including a worker killed mid-job."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image as PILImage

from studio.models import Image, IngestFile, Job
from studio.services.ingest import upload_create
from tests.factories import image_bytes, make_dataset, make_project, make_user, upload, zip_bytes
from tests.worker import wait_for

pytestmark = pytest.mark.worker


def _job(pk: int) -> Job:
    return Job.objects.get(pk=pk)


def _files(root) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in (root / "projects").rglob("*") if p.is_file())


def test_worker_ingests_a_zip(worker, settings):
    user = make_user("ingester")
    project = make_project(user)
    dataset = make_dataset(project, user)
    archive = zip_bytes(
        {f"img/{i}.jpg": image_bytes(i) for i in range(20)} | {"img/readme.md": b"# hi"}
    )
    job = upload_create(
        actor=user, project=project, dataset=dataset, files=[upload("set.zip", archive)]
    )

    wait_for(lambda: _job(job.pk).status == "succeeded", 90, "the ingest job to succeed", worker)
    job = _job(job.pk)
    assert (
        job.result["accepted"] == 20 and job.result["rejected"] == 1 and job.result["version"] == 1
    )
    assert Image.objects.filter(project=project).count() == 20
    assert len(_files(settings.MEDIA_ROOT)) == 40


def _noise_jpeg(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    out = io.BytesIO()
    PILImage.fromarray(rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)).save(
        out, "JPEG", quality=90
    )
    return out.getvalue()


def test_worker_killed_mid_ingest_resumes_after_restart_storing_each_image_once(worker, settings):
    user = make_user("ingester")
    project = make_project(user)
    dataset = make_dataset(project, user)
    unique = 360
    entries = {f"big/{i:04d}.jpg": _noise_jpeg(i) for i in range(unique)}
    entries |= {f"big/copy-{i}.jpg": entries[f"big/{i:04d}.jpg"] for i in range(0, unique, 40)}
    total = len(entries)
    job = upload_create(
        actor=user, project=project, dataset=dataset, files=[upload("big.zip", zip_bytes(entries))]
    )

    # Kill the worker once some chunks are committed but well before the end.
    wait_for(lambda: 64 <= IngestFile.objects.filter(job_id=job.pk).count() < total - 100, 120,
             "the job to be part-way through", worker, interval=0.02)  # fmt: skip
    worker.kill()
    killed_at = IngestFile.objects.filter(job_id=job.pk).count()
    assert _job(job.pk).status == "running" and killed_at < total

    worker.start()  # the sweeper notices the silent job and re-queues it; it resumes
    wait_for(
        lambda: _job(job.pk).status == "succeeded", 180, "the job to finish after restart", worker
    )
    job = _job(job.pk)
    assert job.attempts == 2
    assert job.result["accepted"] == unique and job.result["duplicate"] == total - unique
    assert list(job.files.values_list("position", flat=True)) == list(range(total))
    assert Image.objects.filter(project=project).count() == unique
    assert len(_files(settings.MEDIA_ROOT)) == 2 * unique  # each original and thumbnail once


def test_worker_embeds_on_the_gpu_queue_and_follows_up(worker, settings):
    """The one-click curation through a real worker: embed (gpu queue), then analyze and cluster."""
    import skimage.data

    from annotation.models import ClusterRun, EmbeddingMap
    from annotation.services.embeddings import embedding_job_start
    from studio.models import DatasetVersion
    from tests.annotation.conftest import jpeg

    user = make_user("curator")
    project = make_project(user)
    dataset = make_dataset(project, user)
    photos = ["astronaut", "camera", "coffee", "chelsea", "rocket", "coins"]
    files = [upload(f"{n}.jpg", jpeg(getattr(skimage.data, n)())) for n in photos]
    ingest = upload_create(actor=user, project=project, dataset=dataset, files=files)
    wait_for(lambda: _job(ingest.pk).status == "succeeded", 90, "the ingest", worker)
    version = DatasetVersion.objects.get(dataset=dataset)
    job = embedding_job_start(
        actor=user, version=version, backbone="efficientnet_lite0", then=["analyze", "cluster"]
    )
    wait_for(lambda: ClusterRun.objects.filter(version=version).exists() and EmbeddingMap.objects.filter(version=version).exists(),
             180, "embed, analyze and cluster", worker)  # fmt: skip
    assert _job(job.pk).result["embedded"] == 6
    assert "studio.tasks.run_gpu_job" in worker.logs(tail=None)  # routed to the gpu queue
