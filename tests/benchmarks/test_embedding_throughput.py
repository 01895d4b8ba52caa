"""Embedding job throughput vs the bare forward pass of the same model.

The job decodes each stored JPEG, resizes and normalises it, runs EfficientNet-Lite0
and stores the vectors in shards with their index rows. The peer is the same model's
forward pass alone on tensors prepared beforehand (decode and resize not timed).
Ratio = job throughput / forward-pass throughput; goal >= 0.85.
"""

from __future__ import annotations

import io
import os
import statistics
import time
import zipfile

import numpy as np
import pytest

from annotation.models import ImageEmbedding
from annotation.services.embeddings import embedding_job_start
from studio.ml.backbones import load_backbone
from studio.models import DatasetVersion, Image
from studio.services.ingest import upload_create
from studio.services.jobs import job_run
from tests.benchmarks.test_ingest_throughput import _photo_zip
from tests.factories import make_dataset, make_project, make_user, upload

pytestmark = pytest.mark.benchmark
N = int(os.environ.get("BENCH_EMBED_IMAGES", 512))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", 3))


@pytest.mark.django_db(transaction=True)
def test_embedding_job_vs_bare_forward(capsys):
    from PIL import Image as PILImage

    archive = _photo_zip(N)
    backbone = load_backbone("efficientnet_lite0")
    with zipfile.ZipFile(io.BytesIO(archive)) as zf:
        batch = np.stack(
            [backbone.preprocess(PILImage.open(io.BytesIO(zf.read(i)))) for i in zf.infolist()]
        )
    backbone.embed_arrays(batch[:32])  # warm-up, as the job's first batch is not special either
    bare, job_times = [], []
    for r in range(ROUNDS):
        t = time.perf_counter()
        for start in range(0, N, 32):
            backbone.embed_arrays(batch[start : start + 32])
        bare.append(time.perf_counter() - t)

        user = make_user(f"embed{r}")
        project = make_project(user, f"Embed bench {r}")
        dataset = make_dataset(project, user)
        ingest = upload_create(
            actor=user, project=project, dataset=dataset, files=[upload("p.zip", archive)]
        )
        job_run(job_id=ingest.pk)
        version = DatasetVersion.objects.get(dataset=dataset)
        t = time.perf_counter()
        job = embedding_job_start(actor=user, version=version, backbone="efficientnet_lite0")
        job_run(job_id=job.pk)
        job_times.append(time.perf_counter() - t)
        assert (
            ImageEmbedding.objects.filter(image__in=Image.objects.filter(project=project)).count()
            == N
        )
    b, j = statistics.median(bare), statistics.median(job_times)
    with capsys.disabled():
        print(f"\nembedding {N} 640x480 JPEGs with EfficientNet-Lite0 on CPU, median of {ROUNDS}: "
              f"bare forward {N / b:.1f} img/s, Studio job {N / j:.1f} img/s, ratio {b / j:.2f} (goal >= 0.85)")  # fmt: skip
