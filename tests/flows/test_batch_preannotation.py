"""Batch pre-annotation through the API and a real Celery worker: boxes → masks with GrabCut."""

from __future__ import annotations

import numpy as np
import pytest

from annotation import geometry as geo
from annotation.models import Annotation
from annotation.services import labels
from studio.demo import encode
from studio.ml.scenes import render_scene
from studio.models import DatasetVersion, Job
from studio.services.ingest import upload_create
from tests.factories import make_dataset, make_project, make_user, upload
from tests.worker import wait_for

pytestmark = pytest.mark.worker


def _job(pk: int) -> Job:
    return Job.objects.get(pk=pk)


def test_worker_turns_boxes_into_grabcut_masks(worker, api):
    lead, annotator = make_user("lead"), make_user("annotator")
    project = make_project(lead, annotator=annotator)
    dataset = make_dataset(project, lead)
    scenes = {f"scene-{s}.png": render_scene(s) for s in (18, 19)}
    ingest = upload_create(actor=lead, project=project, dataset=dataset,
                           files=[upload(n, encode(s.image, "PNG")) for n, s in scenes.items()])  # fmt: skip
    wait_for(lambda: _job(ingest.pk).status == "succeeded", 90, "the ingest", worker)
    version = DatasetVersion.objects.get(dataset=dataset)
    mask_class = labels.label_class_create(actor=lead, project=project, name="object", kind="mask")
    box_class = labels.label_class_create(actor=lead, project=project, name="box", kind="box")
    truth = {}
    for image in dataset.images.all():
        for obj in scenes[image.original_name].objects:
            x0, y0, x1, y1 = obj.box
            box = labels.annotation_create(actor=annotator, image=image, label_class=box_class,
                                           geometry=[x0, y0, x1 - x0, y1 - y0])  # fmt: skip
            truth[box.pk] = obj.mask

    r = api(lead).post(
        f"/api/v1/projects/{project.slug}/preannotate-jobs/",
        {"mode": "boxes_to_masks", "label_class": mask_class.pk, "dataset": dataset.pk,
         "version": version.number, "params": {"method": "grabcut"}},
        format="json",
    )  # fmt: skip
    assert r.status_code == 202, r.content
    job_id = r.json()["id"]
    wait_for(lambda: _job(job_id).status in Job.FINISHED, 120, "the pre-annotation job", worker)
    job = _job(job_id)
    assert job.status == "succeeded", job.error
    assert job.result["drafts"] == len(truth) and job.result["failed"] == []
    drafts = Annotation.objects.filter(label_class=mask_class)
    assert drafts.count() == len(truth)
    for d in drafts.select_related("image"):
        assert d.source == "grabcut" and d.status == "draft" and d.author == lead
        mask = geo.to_mask(d.geometry, "mask", d.image.width, d.image.height)
        want = truth[int(d.source_detail.rsplit("#", 1)[1])]
        assert (mask & want).sum() / (mask | want).sum() >= 0.9
    assert np.all([b.version == 1 for b in Annotation.objects.filter(label_class=box_class)])
    logs = worker.logs(tail=None)  # GrabCut needs no GPU: the job ran on the default queue
    assert "studio.tasks.run_gpu_job[" not in logs and logs.count("studio.tasks.run_job[") >= 2
