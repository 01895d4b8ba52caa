"""Fixtures for curation tests: a dataset version of real photos (and one resized copy)."""

from __future__ import annotations

import io

import pytest
import skimage.data
from PIL import Image as PILImage

from studio.models import DatasetVersion
from studio.services.ingest import upload_create
from studio.services.jobs import job_run
from tests.factories import upload

PHOTOS = ["astronaut", "camera", "coffee", "chelsea", "rocket", "coins", "moon", "page"]


def jpeg(arr, size=None) -> bytes:
    img = PILImage.fromarray(arr).convert("RGB")
    if size:
        img = img.resize(size)
    out = io.BytesIO()
    img.save(out, "JPEG", quality=90)
    return out.getvalue()


@pytest.fixture
def version(team, dataset):
    files = [upload(f"{n}.jpg", jpeg(getattr(skimage.data, n)())) for n in PHOTOS]
    files.append(upload("chelsea-small.jpg", jpeg(skimage.data.chelsea(), (225, 150))))
    job = upload_create(actor=team["lead"], project=team["project"], dataset=dataset, files=files)
    job_run(job_id=job.pk)
    return DatasetVersion.objects.get(dataset=dataset)


@pytest.fixture
def embedded(team, version):
    """The version, embedded with the default backbone."""
    from annotation.services.embeddings import embedding_job_start

    job = embedding_job_start(actor=team["lead"], version=version, backbone="efficientnet_lite0")
    job_run(job_id=job.pk)
    return version
