"""Batch pre-annotation jobs: masks for every image of a dataset version or a queue.

Two modes, each a ``preannotate`` job:

- **automatic**: Segment Anything's automatic mask generator (a grid of point prompts,
  filtered by the model's predicted IoU and stability) proposes masks for the whole
  image. It needs a SAM checkpoint.
- **boxes_to_masks**: every live box annotation on an image becomes a mask prompt. SAM
  decodes it when its checkpoint is installed; otherwise OpenCV GrabCut cuts the object
  out of the box, and the drafts say so.

Results are **drafts** with their source, score and a ``source_detail`` that names the
job, the checkpoint and the parameters. Human work is never overwritten: existing
annotations are never changed, and a new mask is not written where a live annotation of
the target class on that image (a person's, an earlier run's, or one this run just made)
already covers it with IoU above ``OVERLAP_IOU``. Re-running a job therefore adds only
what is new, and a resumed job repeats nothing: each image's drafts commit with the
checkpoint that moves past it, and an image that already has a draft from this job is
skipped.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from django.db import transaction

from annotation import geometry as geo
from annotation.models import Annotation, AnnotationQueue, LabelClass
from annotation.services.labels import annotation_create
from annotation.services.preannotation import _pixels, sam_session, sam_weights
from studio.errors import ApplicationError
from studio.models import DatasetVersion, Image, Job
from studio.permissions import Capability, require
from studio.services.jobs import JobContext, job_create, job_enqueue, register

log = logging.getLogger(__name__)

MODES = ("automatic", "boxes_to_masks")
METHODS = ("auto", "sam", "grabcut")
OVERLAP_IOU = 0.5
MAX_FAILURES_KEPT = 100
CHUNK = 200

# name: (type, lowest, highest, default). The defaults are segment-anything's, except the
# grid (16² prompts instead of 32², four times faster) and the cap on masks per image.
AUTOMATIC_PARAMS: dict[str, tuple[type, float, float, float]] = {
    "points_per_side": (int, 1, 64, 16),
    "pred_iou_thresh": (float, 0.0, 1.0, 0.88),
    "stability_score_thresh": (float, 0.0, 1.0, 0.95),
    "min_mask_region_area": (int, 0, 1_000_000, 0),
    "max_masks": (int, 1, 500, 50),
}


def _number(name: str, value, kind: type, lo: float, hi: float):
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ApplicationError(f"{name} is a number between {lo:g} and {hi:g}; got {value!r}.")
    if kind is int and value != int(value):
        raise ApplicationError(f"{name} is a whole number between {lo:g} and {hi:g}.")
    if not lo <= value <= hi:
        raise ApplicationError(f"{name} is between {lo:g} and {hi:g}; got {value:g}.")
    return kind(value)


def _clean_params(mode: str, params: dict | None, project) -> dict:
    """Check a mode's parameters: unknown names, types and ranges are refused with the reason."""
    params = dict(params or {})
    if mode == "automatic":
        allowed = AUTOMATIC_PARAMS
        unknown = sorted(set(params) - set(allowed))
        if unknown:
            raise ApplicationError(
                f"Unknown parameter {unknown[0]!r} for automatic mode; use {', '.join(allowed)}."
            )
        return {
            name: _number(name, params.get(name, default), kind, lo, hi)
            for name, (kind, lo, hi, default) in allowed.items()
        }
    unknown = sorted(set(params) - {"method", "box_class"})
    if unknown:
        raise ApplicationError(
            f"Unknown parameter {unknown[0]!r} for boxes_to_masks; use method and box_class."
        )
    method = params.get("method", "auto")
    if method not in METHODS:
        raise ApplicationError("method is auto, sam or grabcut.")
    box_class = params.get("box_class")
    if box_class is not None:
        if isinstance(box_class, bool) or not isinstance(box_class, int):
            raise ApplicationError("box_class is the id of a box class.")
        found = LabelClass.objects.filter(pk=box_class, project=project).first()
        if found is None:
            raise ApplicationError("box_class is not a label class of this project.")
        if found.kind != LabelClass.Kind.BOX:
            raise ApplicationError(
                f"box_class {found.name!r} is a {found.kind} class, not a box class."
            )
        box_class = found.pk
    return {"method": method, "box_class": box_class}


def _needs_sam_error(exc: ApplicationError) -> ApplicationError:
    return ApplicationError(
        f"Automatic mask generation needs a Segment Anything checkpoint. {exc.message} "
        "Boxes → masks works without one (GrabCut)."
    )


def preannotate_start(
    *,
    actor,
    label_class: LabelClass,
    mode: str = "automatic",
    version: DatasetVersion | None = None,
    queue: AnnotationQueue | None = None,
    params: dict | None = None,
) -> Job:
    """Queue a batch pre-annotation of a version's or a queue's images (reviewers and leads).

    ``label_class`` is the mask class the drafts get. Fails at once, with the reason, on a
    wrong class, mode or parameter, and in automatic mode when no SAM checkpoint is
    installed (saying which file to put where). The method (SAM or GrabCut) is fixed here,
    so the job runs what was asked for; SAM jobs go to the gpu queue.
    """
    if (version is None) == (queue is None):
        raise ApplicationError("Pre-annotate either a dataset version or a queue.")
    project = version.dataset.project if version is not None else queue.project
    require(actor, project, Capability.CONTRIBUTE)
    if label_class.project_id != project.pk:
        raise ApplicationError("That label class belongs to another project.")
    allowed = list(queue.label_classes.all()) if queue is not None else []
    if allowed and label_class not in allowed:
        raise ApplicationError(
            f"The queue “{queue.name}” takes only {', '.join(c.name for c in allowed)}; "
            f"pre-annotating into {label_class.name!r} would give its annotators drafts they "
            "cannot keep."
        )
    if label_class.kind != LabelClass.Kind.MASK:
        raise ApplicationError(
            f"{label_class.name!r} is a {label_class.kind} class; pre-annotation makes masks, "
            "so choose a mask class."
        )
    if mode not in MODES:
        raise ApplicationError("The mode is automatic or boxes_to_masks.")
    clean = _clean_params(mode, params, project)
    if mode == "automatic":
        try:
            sam_weights(verify=False)
        except ApplicationError as exc:
            raise _needs_sam_error(exc)
        method = "sam"
    else:
        method = clean.pop("method")
        if method == "auto":
            try:
                sam_weights(verify=False)
                method = "sam"
            except ApplicationError:
                method = "grabcut"
        elif method == "sam":
            sam_weights(verify=False)
    with transaction.atomic():
        job = job_create(
            project=project,
            kind=Job.Kind.PREANNOTATE,
            params={
                "mode": mode, "method": method, "label_class": label_class.pk,
                "version": version.pk if version is not None else None,
                "queue": queue.pk if queue is not None else None,
                "options": clean, "gpu": method == "sam",
            },
            created_by=actor,
        )  # fmt: skip
        job_enqueue(job)
    return job


def _image_ids(job: Job) -> list[int]:
    """The job's images in a stable order: by id for a version, by position for a queue."""
    if job.params.get("version"):
        version = DatasetVersion.objects.filter(
            pk=job.params["version"], dataset__project=job.project
        ).first()
        if version is None:
            raise ApplicationError("The dataset version was deleted.")
        return list(version.items.order_by("image_id").values_list("image_id", flat=True))
    queue = AnnotationQueue.objects.filter(pk=job.params["queue"], project=job.project).first()
    if queue is None:
        raise ApplicationError("The queue was deleted.")
    return list(queue.items.order_by("position").values_list("image_id", flat=True))


def _coco(rle: dict) -> dict:
    return {"size": rle["size"], "counts": rle["counts"].encode("ascii")}


def _overlaps(rle: dict, others: list[dict]) -> bool:
    """Whether the mask covers any of ``others`` (COCO RLE) with IoU above OVERLAP_IOU."""
    from pycocotools import mask as coco

    if not others:
        return False
    ious = coco.iou([_coco(rle)], [_coco(o) for o in others], [0] * len(others))
    return bool(np.asarray(ious).max() > OVERLAP_IOU)


class _Runner:
    """One run of a preannotate job: the model, once, and the drafts for one image at a time."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self.mode, self.method = job.params["mode"], job.params["method"]
        self.options = job.params.get("options", {})
        self.session = None
        self.detail = f"job {job.pk}: "
        if self.method == "sam":
            try:
                arch, path = sam_weights(verify=False)
                self.session = sam_session()
            except ApplicationError as exc:
                raise _needs_sam_error(exc) if self.mode == "automatic" else exc
            self.detail += f"SAM {arch} ({Path(path).name})"
        else:
            self.detail += "OpenCV GrabCut (no SAM checkpoint needed)"
        if self.mode == "automatic":
            o = self.options
            self.detail += (
                f" automatic, {o['points_per_side']} pts/side, iou≥{o['pred_iou_thresh']:g}, "
                f"stability≥{o['stability_score_thresh']:g}, min region {o['min_mask_region_area']}"
            )

    def proposals(self, image: Image, pixels: np.ndarray, failed: list[dict]) -> list[dict]:
        """Candidate drafts for one image, best first: {rle, confidence, detail}."""
        if self.mode == "automatic":
            from studio.ml.sam import automatic_masks

            o = self.options
            masks = automatic_masks(
                self.session.predictor.model, pixels, points_per_side=o["points_per_side"],
                pred_iou_thresh=o["pred_iou_thresh"], stability_score_thresh=o["stability_score_thresh"],
                min_mask_region_area=o["min_mask_region_area"],
            )  # fmt: skip
            return [
                {
                    "rle": m.rle,
                    "confidence": float(np.clip(m.predicted_iou, 0.0, 1.0)),
                    "detail": f"{self.detail}; stability {m.stability_score:.2f}",
                }
                for m in masks
            ]
        boxes = Annotation.objects.filter(image=image, kind=LabelClass.Kind.BOX, deleted=False)
        if self.options.get("box_class"):
            boxes = boxes.filter(label_class_id=self.options["box_class"])
        out = []
        for box in boxes.order_by("pk"):
            try:
                mask, score = self._box_mask(image, pixels, box.geometry["box"])
            except Exception as exc:  # noqa: BLE001 - one bad box is listed, the rest go on
                failed.append(_failure(image, f"box #{box.pk}: {type(exc).__name__}: {exc}"))
                continue
            if mask.any():
                out.append({"rle": geo.mask_from_array(mask), "confidence": score,
                            "detail": f"{self.detail} from box #{box.pk}"})  # fmt: skip
        return out

    def _box_mask(self, image: Image, pixels: np.ndarray, box) -> tuple[np.ndarray, float | None]:
        if self.session is not None:
            key = (image.pk, image.sha256)
            masks, scores = self.session.predict(
                key, None if key in self.session.cache else pixels, box=tuple(box), multimask=False
            )
            return masks[0], float(np.clip(scores[0], 0.0, 1.0))
        from studio.ml.grabcut import grabcut_mask

        return grabcut_mask(pixels, box=tuple(box)), None


def _failure(image: Image, reason: str) -> dict:
    return {"image": image.pk, "name": image.original_name, "reason": reason[:200]}


@register(Job.Kind.PREANNOTATE)
def preannotate_run(job: Job, ctx: JobContext) -> dict:
    """Write draft masks image by image; each image's drafts commit with the checkpoint."""
    label_class = LabelClass.objects.filter(
        pk=job.params["label_class"], project=job.project, kind=LabelClass.Kind.MASK
    ).first()
    if label_class is None:
        raise ApplicationError("The mask class was deleted or changed since the job was queued.")
    if job.created_by is None:
        raise ApplicationError("The user who started the job was deleted; start it again.")
    ids = _image_ids(job)
    total = len(ids)
    state = {"next": 0, "drafts": 0, "skipped_overlap": 0, "failed": [], **job.checkpoint}
    runner = _Runner(job) if state["next"] < total else None
    source = Annotation.Source.SAM if job.params["method"] == "sam" else Annotation.Source.GRABCUT
    images: dict[int, Image] = {}
    for position in range(state["next"], total):
        ctx.progress(position, total, f"Pre-annotating image {position + 1} of {total}")
        if (position - state["next"]) % CHUNK == 0:  # rows in chunks, not a whole version at once
            images = Image.objects.in_bulk(ids[position : position + CHUNK])
        image = images.get(ids[position])
        failed = list(state["failed"])
        made, skipped = _image_drafts(job, runner, image, label_class, failed)
        state = {
            **state,
            "next": position + 1,
            "drafts": state["drafts"] + len(made),
            "skipped_overlap": state["skipped_overlap"] + skipped,
            "failed": failed[:MAX_FAILURES_KEPT],
        }
        with transaction.atomic():
            for draft in made:
                annotation_create(
                    actor=job.created_by, image=image, label_class=label_class, geometry=draft["rle"],
                    source=source, source_detail=draft["detail"], confidence=draft["confidence"],
                )  # fmt: skip
            ctx.save_checkpoint(
                state, done=position + 1, total=total,
                message=f"Pre-annotated {position + 1} of {total} images ({state['drafts']} drafts)",
            )  # fmt: skip
    return {
        "mode": job.params["mode"],
        "method": "Segment Anything" if job.params["method"] == "sam" else "GrabCut (no SAM checkpoint)",
        "images": total,
        "drafts": state["drafts"],
        "skipped_overlap": state["skipped_overlap"],
        "failed": state["failed"],
    }  # fmt: skip


def _image_drafts(job, runner, image, label_class, failed) -> tuple[list[dict], int]:
    """Decode one image and return its new drafts; an unreadable image goes into ``failed``."""
    if image is None:  # deleted since the job was queued
        return [], 0
    if Annotation.objects.filter(image=image, source_detail__startswith=f"job {job.pk}:").exists():
        return [], 0  # this job already wrote here (a redelivery that got past the checkpoint)
    image.project = job.project  # one membership lookup for the whole job
    try:
        pixels = _pixels(image)
        if pixels.shape[:2] != (image.height, image.width):
            raise ValueError(f"decoded as {pixels.shape[1]}×{pixels.shape[0]}")
    except Exception as exc:  # noqa: BLE001 - an unreadable image is listed, not fatal
        failed.append(_failure(image, f"could not be decoded: {exc}"))
        return [], 0
    return _new_drafts(runner, image, pixels, label_class, failed)


def _new_drafts(runner, image, pixels, label_class, failed) -> tuple[list[dict], int]:
    """Return (drafts to write, proposals skipped because a live mask already covers them)."""
    existing = list(
        Annotation.objects.filter(
            image=image, label_class=label_class, kind=LabelClass.Kind.MASK, deleted=False
        ).values_list("geometry", flat=True)
    )
    limit = runner.options.get("max_masks") if runner.mode == "automatic" else None
    made, skipped = [], 0
    for proposal in runner.proposals(image, pixels, failed):
        if limit is not None and len(made) >= limit:
            break
        if _overlaps(proposal["rle"], existing):
            skipped += 1
            continue
        made.append(proposal)
        existing.append(proposal["rle"])  # this run's masks do not duplicate each other either
    return made, skipped
