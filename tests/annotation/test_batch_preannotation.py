"""Batch pre-annotation jobs (annotation/services/batch_preannotation.py).

SAM runs for real: a tiny SAM built with segment-anything's own modules, saved as a
checkpoint and loaded through Studio's loading path (hash-free custom checkpoint,
``weights_only=True``). GrabCut runs on generated scenes whose exact masks are known.
"""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data

from annotation import geometry as geo
from annotation.models import Annotation, AnnotationRevision
from annotation.services import labels
from annotation.services.batch_preannotation import preannotate_run, preannotate_start
from annotation.services.queues import queue_create
from studio.demo import encode
from studio.errors import ApplicationError, Forbidden, NotFound
from studio.ml.scenes import render_scene
from studio.models import DatasetVersion, Job
from studio.services.ingest import upload_create
from studio.services.jobs import job_claim, job_run, jobs_sweep
from tests.annotation.conftest import jpeg
from tests.factories import make_dataset, upload
from tests.jobs import DyingContext, WorkerKilled

SCENES = (12, 18)  # a lightly blurred and a sharp scene, three objects each


def _version(team, name: str, files: dict[str, bytes]) -> DatasetVersion:
    dataset = make_dataset(team["project"], team["lead"], name)
    job = upload_create(
        actor=team["lead"], project=team["project"], dataset=dataset,
        files=[upload(n, data) for n, data in files.items()],
    )  # fmt: skip
    job_run(job_id=job.pk)
    return DatasetVersion.objects.get(dataset=dataset)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


@pytest.fixture
def no_sam(settings, tmp_path):
    """An empty weights folder: no Segment Anything checkpoint is installed."""
    settings.STUDIO = {**settings.STUDIO, "WEIGHTS_DIR": tmp_path / "empty", "SAM_CHECKPOINT": ""}


@pytest.fixture
def tiny_sam(settings, tmp_path):
    """A tiny SAM saved as a checkpoint file and configured as the project's SAM."""
    import torch

    from studio.ml.sam import build_sam

    torch.manual_seed(1)
    path = tmp_path / "weights" / "sam-tiny-test.pth"
    path.parent.mkdir()
    torch.save(build_sam("tiny").state_dict(), path)
    settings.STUDIO = {**settings.STUDIO, "WEIGHTS_DIR": path.parent, "SAM_MODEL": "tiny",
                       "SAM_CHECKPOINT": str(path)}  # fmt: skip
    return path


@pytest.fixture
def classes(team):
    lead, project = team["lead"], team["project"]
    return {
        "object": labels.label_class_create(
            actor=lead, project=project, name="object", kind="mask"
        ),
        "box": labels.label_class_create(
            actor=lead, project=project, name="object box", kind="box"
        ),
        "tag": labels.label_class_create(actor=lead, project=project, name="indoor", kind="tag"),
    }


@pytest.fixture
def scenes(team, classes):
    """Generated scenes with a person's box around every object; returns (version, truth).

    ``truth`` maps each box annotation's id to (image, exact mask of its object).
    """
    rendered = {f"scene-{s}.png": render_scene(s) for s in SCENES}
    version = _version(team, "Scenes", {n: encode(s.image, "PNG") for n, s in rendered.items()})
    truth = {}
    for image in version.dataset.images.order_by("pk"):
        for obj in rendered[image.original_name].objects:
            x0, y0, x1, y1 = obj.box
            box = labels.annotation_create(
                actor=team["annotator"], image=image, label_class=classes["box"],
                geometry=[x0, y0, x1 - x0, y1 - y0],
            )  # fmt: skip
            truth[box.pk] = (image, obj.mask)
    return version, truth


def _drafts(job: Job):
    return Annotation.objects.filter(source_detail__startswith=f"job {job.pk}:").order_by("pk")


def _human_state():
    return list(
        Annotation.objects.filter(source=Annotation.Source.HUMAN)
        .order_by("pk")
        .values_list("pk", "version", "geometry", "status", "deleted", "updated_at")
    )


def test_automatic_generation_on_real_photos_makes_scored_sam_drafts(
    team, classes, tiny_sam, settings
):
    version = _version(team, "Photos", {
        "chelsea.jpg": jpeg(skimage.data.chelsea(), (225, 150)),
        "broken.jpg": jpeg(skimage.data.camera(), (120, 120)),
    })  # fmt: skip
    broken = version.dataset.images.get(original_name="broken.jpg")
    (settings.MEDIA_ROOT / broken.file.name).write_bytes(b"the disk ate this file")
    params = {"points_per_side": 2, "pred_iou_thresh": 0.0, "stability_score_thresh": 0.0,
              "max_masks": 3}  # fmt: skip

    job = preannotate_start(actor=team["reviewer"], version=version, label_class=classes["object"],
                            mode="automatic", params=params)  # fmt: skip
    assert job.params["gpu"] is True  # SAM work goes to the gpu queue
    job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    drafts = list(_drafts(job))
    assert job.result["drafts"] == len(drafts) >= 1 and job.result["images"] == 2
    assert {d.image.original_name for d in drafts} == {"chelsea.jpg"}
    assert [f["name"] for f in job.result["failed"]] == ["broken.jpg"]
    assert "could not be decoded" in job.result["failed"][0]["reason"]
    for d in drafts:
        assert d.source == "sam" and d.status == "draft" and d.kind == "mask"
        assert d.confidence is not None and 0 <= d.confidence <= 1
        assert "SAM tiny (sam-tiny-test.pth) automatic, 2 pts/side" in d.source_detail
        assert "stability" in d.source_detail and d.author == team["reviewer"] and d.area > 0
    assert job.result["method"] == "Segment Anything"

    # The same job again makes nothing new: every mask is already there as a draft.
    again = preannotate_start(actor=team["lead"], version=version, label_class=classes["object"],
                              mode="automatic", params=params)  # fmt: skip
    job_run(job_id=again.pk)
    again.refresh_from_db()
    assert again.status == "succeeded" and again.result["drafts"] == 0
    assert again.result["skipped_overlap"] >= len(drafts)


def test_parameters_and_targets_are_checked_with_clear_errors(team, classes, scenes, no_sam):
    version, _ = scenes
    start = dict(actor=team["lead"], version=version, label_class=classes["object"])
    bad = [
        ({"points_per_side": 0}, "points_per_side is between 1 and 64"),
        ({"points_per_side": 100}, "points_per_side is between 1 and 64"),
        ({"points_per_side": 2.5}, "points_per_side is a whole number"),
        ({"points_per_side": True}, "points_per_side is a number"),
        ({"pred_iou_thresh": 1.5}, "pred_iou_thresh is between 0 and 1"),
        ({"stability_score_thresh": "high"}, "stability_score_thresh is a number"),
        ({"min_mask_region_area": -1}, "min_mask_region_area is between 0"),
        ({"max_masks": 0}, "max_masks is between 1 and 500"),
        ({"points": 8}, "Unknown parameter 'points' for automatic mode"),
    ]
    for params, message in bad:
        with pytest.raises(ApplicationError, match=message):
            preannotate_start(**start, mode="automatic", params=params)
    with pytest.raises(ApplicationError, match="choose a mask class"):
        preannotate_start(**{**start, "label_class": classes["tag"]}, mode="automatic")
    with pytest.raises(ApplicationError, match="The mode is automatic or boxes_to_masks"):
        preannotate_start(**start, mode="everything")
    with pytest.raises(ApplicationError, match="method is auto, sam or grabcut"):
        preannotate_start(**start, mode="boxes_to_masks", params={"method": "magic"})
    with pytest.raises(ApplicationError, match="'object' is a mask class, not a box class"):
        preannotate_start(
            **start, mode="boxes_to_masks", params={"box_class": classes["object"].pk}
        )
    with pytest.raises(ApplicationError, match="box_class is the id of a box class"):
        preannotate_start(**start, mode="boxes_to_masks", params={"box_class": "boxes"})
    with pytest.raises(
        ApplicationError, match="Unknown parameter 'points_per_side' for boxes_to_masks"
    ):
        preannotate_start(**start, mode="boxes_to_masks", params={"points_per_side": 4})
    with pytest.raises(ApplicationError, match="either a dataset version or a queue"):
        preannotate_start(actor=team["lead"], label_class=classes["object"])
    assert not Job.objects.filter(kind=Job.Kind.PREANNOTATE).exists()


def test_automatic_mode_without_a_checkpoint_says_which_file_to_put_where(
    team, classes, scenes, no_sam
):
    version, _ = scenes
    with pytest.raises(ApplicationError) as err:
        preannotate_start(actor=team["lead"], version=version, label_class=classes["object"])
    message = err.value.message
    assert message.startswith("Automatic mask generation needs a Segment Anything checkpoint")
    assert (
        "sam_vit_b_01ec64.pth in the weights folder" in message and "STUDIO_WEIGHTS_DIR" in message
    )
    with pytest.raises(ApplicationError, match="sam_vit_b_01ec64.pth"):
        preannotate_start(actor=team["lead"], version=version, label_class=classes["object"],
                          mode="boxes_to_masks", params={"method": "sam"})  # fmt: skip


def test_boxes_to_masks_with_grabcut_cuts_the_objects_and_leaves_human_work_alone(
    team, classes, scenes, no_sam
):
    version, truth = scenes
    # A person already drew the mask of one object, and another mask of the class elsewhere.
    covered_box, (image, mask) = next(iter(truth.items()))
    human = labels.annotation_create(actor=team["annotator"], image=image, label_class=classes["object"],
                                     geometry=geo.mask_from_array(mask))  # fmt: skip
    labels.annotation_update(actor=team["annotator"], annotation=human, expected_version=1,
                             status="submitted")  # fmt: skip
    before, revisions = _human_state(), AnnotationRevision.objects.count()

    job = preannotate_start(actor=team["lead"], version=version, label_class=classes["object"],
                            mode="boxes_to_masks")  # fmt: skip
    assert job.params["method"] == "grabcut" and job.params["gpu"] is False
    job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    assert job.result["method"] == "GrabCut (no SAM checkpoint)"
    drafts = list(_drafts(job))
    assert (
        len(drafts) == len(truth) - 1 == job.result["drafts"] and job.result["skipped_overlap"] == 1
    )
    scores = []
    for d in drafts:
        box_id = int(d.source_detail.rsplit("#", 1)[1])
        assert box_id != covered_box and d.image_id == truth[box_id][0].pk
        assert d.source == "grabcut" and d.confidence is None and d.status == "draft"
        assert "OpenCV GrabCut (no SAM checkpoint needed)" in d.source_detail
        scores.append(
            _iou(geo.to_mask(d.geometry, "mask", d.image.width, d.image.height), truth[box_id][1])
        )
    assert np.median(scores) >= 0.9 and min(scores) >= 0.8, scores
    # Nothing a person made changed: same versions, geometry, status; no new revisions of it.
    assert _human_state() == before
    assert AnnotationRevision.objects.count() == revisions + len(drafts)

    # Running it again adds nothing: every box already has its mask.
    again = preannotate_start(actor=team["lead"], version=version, label_class=classes["object"],
                              mode="boxes_to_masks", params={"method": "grabcut"})  # fmt: skip
    job_run(job_id=again.pk)
    again.refresh_from_db()
    assert again.result["drafts"] == 0 and again.result["skipped_overlap"] == len(truth)
    assert Annotation.objects.filter(label_class=classes["object"]).count() == len(truth)


def test_a_killed_job_resumes_without_repeating_an_image(team, classes, scenes, no_sam, settings):
    version, truth = scenes
    settings.STUDIO = {**settings.STUDIO, "JOB_STALE_AFTER_S": 0}
    job = preannotate_start(actor=team["lead"], version=version, label_class=classes["object"],
                            mode="boxes_to_masks")  # fmt: skip
    job = job_claim(job.pk)
    with pytest.raises(WorkerKilled):  # dies while committing the second image
        preannotate_run(job, DyingContext(job, die_at=2))
    first = version.dataset.images.order_by("pk").first()
    assert set(_drafts(job).values_list("image_id", flat=True)) == {first.pk}
    made_first = _drafts(job).count()

    assert jobs_sweep() == [job.pk]
    job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == "succeeded" and job.attempts == 2
    assert job.result["drafts"] == _drafts(job).count() == len(truth)
    assert _drafts(job).filter(image=first).count() == made_first  # the first image was not redone


def test_boxes_to_masks_with_sam_over_a_queue(team, classes, scenes, tiny_sam):
    version, truth = scenes
    image = version.dataset.images.order_by("pk").first()
    queue = queue_create(actor=team["lead"], project=team["project"], name="First scene",
                         image_ids=[image.pk])  # fmt: skip
    job = preannotate_start(actor=team["lead"], queue=queue, label_class=classes["object"],
                            mode="boxes_to_masks", params={"box_class": classes["box"].pk})  # fmt: skip
    assert job.params["method"] == "sam" and job.params["gpu"] is True
    job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    assert job.result["images"] == 1 and job.result["failed"] == []
    drafts = list(_drafts(job))
    boxes = {pk for pk, (img, _) in truth.items() if img.pk == image.pk}
    # Random tiny weights give masks of no particular quality, but every box was decoded:
    # each either became a draft or overlapped one made for an earlier box.
    assert len(drafts) >= 1 and len(drafts) + job.result["skipped_overlap"] == len(boxes)
    for d in drafts:
        assert d.image_id == image.pk and d.source == "sam" and 0 <= d.confidence <= 1
        assert "SAM tiny (sam-tiny-test.pth) from box #" in d.source_detail
        assert int(d.source_detail.rsplit("#", 1)[1]) in boxes


def test_only_reviewers_and_leads_start_jobs_and_outsiders_see_nothing(
    api, team, classes, scenes, no_sam
):
    version, _ = scenes
    url = f"/api/v1/projects/{team['project'].slug}/preannotate-jobs/"
    body = {"mode": "boxes_to_masks", "label_class": classes["object"].pk,
            "dataset": version.dataset_id, "version": version.number}  # fmt: skip
    for role in ("annotator", "viewer"):
        r = api(team[role]).post(url, body, format="json")
        assert r.status_code == 403, (role, r.content)
    assert api(team["outsider"]).post(url, body, format="json").status_code == 404
    with pytest.raises(NotFound):
        preannotate_start(actor=team["outsider"], version=version, label_class=classes["object"])
    with pytest.raises(Forbidden):
        preannotate_start(actor=team["annotator"], version=version, label_class=classes["object"])
    r = api(team["lead"]).post(url, {**body, "version": 99}, format="json")
    assert r.status_code == 404
    r = api(team["lead"]).post(url, {"label_class": classes["object"].pk}, format="json")
    assert r.status_code == 400 and "queue, or a dataset" in r.json()["error"]["message"]
    r = api(team["lead"]).post(url, {**body, "mode": "automatic"}, format="json")
    assert (
        r.status_code == 400
        and "needs a Segment Anything checkpoint" in r.json()["error"]["message"]
    )

    r = api(team["reviewer"]).post(url, {**body, "params": {"method": "grabcut"}}, format="json")
    assert r.status_code == 202, r.content
    assert r.json()["kind"] == "preannotate" and r.json()["status"] == "queued"
