"""Quality control: consensus between annotators, honeypots with known answers, statistics.

Masks are compared per label class: every annotation of a class on the image (mask,
polygon or box, rasterised with ``annotation.geometry.to_mask``; a tag covers the whole
image) is OR-ed into one mask per person, and two people's masks are compared by IoU.

- **Agreement** (consensus queues): when every replica of an image is submitted, for each
  class the mean IoU over pairs of annotators (a pair where neither used the class is
  skipped; one who did not use it scores 0 with the one who did), then the mean over
  classes. Stored in ``ConsensusResult``.
- **Merge**: a reviewer or lead turns a consensus image into one new *submitted* annotation
  per class and connected region: the pixels at least ceil(N/2) of the N annotators
  marked. The originals are soft-deleted with a ``supersede`` revision (restorable).
- **Honeypots**: a lead snapshots an image's accepted annotations as the gold answer. Each
  annotator gets each honeypot once; on submit their work is scored (mean per-class IoU
  with the gold; ``HONEYPOT_PASS`` or more counts as correct) and then soft-deleted with a
  ``honeypot`` revision, so the image's labels and exports stay the gold.

The statistics that read all this are in ``annotation/services/quality_stats.py``.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from itertools import combinations
from statistics import mean

import numpy as np
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from annotation import geometry as geo
from annotation.models import (
    Annotation,
    AnnotationQueue,
    ConsensusResult,
    Honeypot,
    LabelClass,
    QueueItem,
)
from annotation.services.labels import annotation_create, record_revision, snapshot
from studio.errors import ApplicationError, Conflict
from studio.models import Image, Project
from studio.permissions import Capability, require

HONEYPOT_PASS = 0.5  # mean IoU with the gold at or above which a honeypot counts as correct
COUNTED = (Annotation.Status.SUBMITTED, Annotation.Status.ACCEPTED)


# -- masks -------------------------------------------------------------------------------


def _mask(kind: str, geometry: dict, width: int, height: int) -> np.ndarray:
    if kind == LabelClass.Kind.TAG:
        return np.ones((height, width), bool)
    return geo.to_mask(geometry, kind, width, height)


def class_masks(shapes: Iterable[tuple[int, str, dict]], width: int, height: int) -> dict:
    """Return {label class id: the union of its shapes as a boolean [H, W] mask}."""
    masks: dict[int, np.ndarray] = {}
    for class_id, kind, geometry in shapes:
        mask = _mask(kind, geometry, width, height)
        masks[class_id] = masks[class_id] | mask if class_id in masks else mask
    return masks


def mask_iou(a: np.ndarray | None, b: np.ndarray | None) -> float | None:
    """IoU of two masks; a missing mask is empty; None when both are empty."""
    if a is None and b is None:
        return None
    if a is None or b is None:
        return 0.0
    union = np.logical_or(a, b).sum()
    return None if union == 0 else float(np.logical_and(a, b).sum() / union)


def _shapes(annotations: Iterable[Annotation]) -> list[tuple[int, str, dict]]:
    return [(a.label_class_id, a.kind, a.geometry) for a in annotations]


def _soft_delete(annotation: Annotation, *, action: str, actor) -> None:
    before = snapshot(annotation)
    annotation.deleted = True
    annotation.version += 1
    annotation.save(update_fields=["deleted", "version", "updated_at"])
    record_revision(annotation=annotation, action=action, actor=actor, before=before)


# -- which annotations a task shows --------------------------------------------------------


def task_annotations(*, item: QueueItem):
    """Return the annotations the task shows its annotator.

    On a consensus or honeypot task that is only the assignee's own work, so annotators
    never see each other's (or the gold); on a plain task, everything on the image.
    """
    rows = Annotation.objects.filter(image_id=item.image_id, deleted=False).order_by("id")
    if item.honeypot_id is not None or item.queue.annotators_per_image > 1:
        rows = rows.filter(author_id=item.assignee_id) if item.assignee_id else rows.none()
    return rows


# -- consensus ---------------------------------------------------------------------------


def _replicas(queue: AnnotationQueue, image: Image) -> list[QueueItem] | None:
    """The image's replica items when all are submitted by distinct people, else None."""
    items = list(
        QueueItem.objects.filter(queue=queue, image=image, honeypot__isnull=True).order_by(
            "replica"
        )
    )
    users = {i.assignee_id for i in items}
    complete = (
        all(i.status in (QueueItem.Status.SUBMITTED, QueueItem.Status.DONE) for i in items)
        and len(users) == len(items) == queue.annotators_per_image
        and None not in users
    )
    return items if complete else None


def _work(image: Image, users: list[int]) -> dict[int, list[Annotation]]:
    rows = Annotation.objects.filter(
        image=image, author_id__in=users, deleted=False, status__in=COUNTED
    ).order_by("id")
    work: dict[int, list[Annotation]] = {u: [] for u in users}
    for a in rows:
        work[a.author_id].append(a)
    return work


def agreement(masks_by_user: dict[int, dict[int, np.ndarray]]) -> dict:
    """Per class, the mean pairwise IoU; per annotator, the mean of the pairs they are in."""
    users = list(masks_by_user)
    classes = sorted({c for masks in masks_by_user.values() for c in masks})
    per_class: dict[str, float] = {}
    mine: dict[int, list[float]] = defaultdict(list)
    for c in classes:
        ious = []
        for u, v in combinations(users, 2):
            value = mask_iou(masks_by_user[u].get(c), masks_by_user[v].get(c))
            if value is None:
                continue
            ious.append(value)
            mine[u].append(value)
            mine[v].append(value)
        if ious:
            per_class[str(c)] = mean(ious)
    return {
        "agreement": mean(per_class.values()) if per_class else None,
        "per_class": per_class,
        "per_annotator": {str(u): mean(mine[u]) for u in users if mine[u]},
    }


@transaction.atomic
def consensus_update(*, queue: AnnotationQueue, image: Image) -> ConsensusResult | None:
    """Compute the image's agreement once all its replicas are submitted; None until then.

    Called by ``queue_submit``; a replica resubmitted after a rejection recomputes it.
    """
    items = _replicas(queue, image)
    if items is None:
        return None
    users = [i.assignee_id for i in items]
    work = _work(image, users)
    masks = {u: class_masks(_shapes(work[u]), image.width, image.height) for u in users}
    result, _ = ConsensusResult.objects.update_or_create(
        queue=queue, image=image, defaults={"annotators": users, **agreement(masks)}
    )
    return result


def _regions(majority: np.ndarray, kind: str) -> list:
    """Split a majority mask into the geometries a class of ``kind`` stores."""
    import cv2

    if kind == LabelClass.Kind.MASK:
        return [geo.mask_from_array(majority)]
    pixels = majority.astype(np.uint8)
    if kind == LabelClass.Kind.BOX:
        count, _, stats, _ = cv2.connectedComponentsWithStats(pixels, connectivity=8)
        return [[int(x), int(y), int(w), int(h)] for x, y, w, h, _ in stats[1:count]]
    from scipy import ndimage

    # Each 8-connected region's pixel outline: it rasterises back to exactly the region's
    # pixels (contours through the boundary pixels' centres were half a pixel tighter, and
    # a one-pixel-wide region had no area at all). A polygon cannot hold a hole: holes
    # are filled.
    labelled, count = ndimage.label(pixels, structure=np.ones((3, 3)))
    regions = []
    for k in range(1, count + 1):
        loop = geo.mask_outline(ndimage.binary_fill_holes(labelled == k))
        if loop is not None:
            regions.append(loop)
    return regions


@transaction.atomic
def consensus_merge(*, actor, queue: AnnotationQueue, image: Image) -> list[Annotation]:
    """Add the majority vote of a consensus image's annotators as new submitted annotations.

    Per class a pixel is kept when at least ceil(N/2) of the N annotators marked it (a tag
    when that many tagged the image). Mask classes get one mask; box and polygon classes
    one box or polygon per connected region. The originals are soft-deleted with a
    ``supersede`` revision, never edited. Reviewers and leads only; once per image.
    """
    require(
        actor, queue.project, Capability.REVIEW, "Only reviewers and leads merge consensus work."
    )
    if queue.annotators_per_image < 2:
        raise ApplicationError("This queue has one annotator per image: there is nothing to merge.")
    result = ConsensusResult.objects.select_for_update().filter(queue=queue, image=image).first()
    items = _replicas(queue, image)
    if result is None or items is None:
        raise ApplicationError(
            f"Not all {queue.annotators_per_image} annotators have submitted this image yet."
        )
    if result.merged_at is not None:
        raise Conflict("This image was merged already; review or edit the merged annotations.")
    users = [i.assignee_id for i in items]
    work = _work(image, users)
    masks = {u: class_masks(_shapes(work[u]), image.width, image.height) for u in users}
    need = math.ceil(len(users) / 2)
    names = ", ".join(
        sorted(get_user_model().objects.filter(pk__in=users).values_list("username", flat=True))
    )
    detail = f"consensus of {names} (≥{need} of {len(users)})"
    classes = LabelClass.objects.in_bulk({c for m in masks.values() for c in m})
    merged = []
    for class_id, label_class in sorted(classes.items()):
        votes = sum(m[class_id].astype(np.uint16) for m in masks.values() if class_id in m)
        majority = votes >= need
        if not majority.any():
            continue
        if label_class.kind == LabelClass.Kind.TAG:
            geometries = [None]
        else:
            geometries = _regions(majority, label_class.kind)
        for geometry in geometries:
            try:
                merged.append(
                    annotation_create(
                        actor=actor,
                        image=image,
                        label_class=label_class,
                        geometry=geometry,
                        source_detail=detail,
                        status=Annotation.Status.SUBMITTED,
                    )  # fmt: skip
                )
            except ApplicationError:
                continue  # a sliver no polygon can hold; the mask classes keep every pixel
    for rows in work.values():
        for annotation in rows:
            _soft_delete(annotation, action="supersede", actor=actor)
    result.merged_at = timezone.now()
    result.merged_by = actor
    result.save(update_fields=["merged_at", "merged_by"])
    return merged


def consensus_list(*, user, queue: AnnotationQueue):
    """Return the queue's consensus results (reviewers and leads)."""
    require_reviewer(user, queue.project)
    return ConsensusResult.objects.filter(queue=queue).select_related("image").order_by("image_id")


# -- honeypots ---------------------------------------------------------------------------


def require_reviewer(user, project: Project) -> str:
    return require(
        user,
        project,
        Capability.REVIEW,
        "Only reviewers and leads see consensus and honeypot details.",
    )


def _spread(queue: AnnotationQueue) -> None:
    """Space the queue's honeypots evenly between its regular positions."""
    last = QueueItem.objects.filter(queue=queue, honeypot__isnull=True).aggregate(
        m=Max("position")
    )["m"]
    span = 0 if last is None else last + 1
    honeypots = list(Honeypot.objects.filter(queue=queue).order_by("id"))
    for n, honeypot in enumerate(honeypots):
        honeypot.position = (n + 1) * span // (len(honeypots) + 1)
    Honeypot.objects.bulk_update(honeypots, ["position"])


@transaction.atomic
def queue_add_honeypots(*, actor, queue: AnnotationQueue, image_ids: list[int]) -> list[Honeypot]:
    """Mark images as honeypots of the queue, their accepted annotations as the gold answer.

    On a queue limited to some classes, only the accepted annotations of those classes. Refused for an image with no accepted annotation, or one that is a task of this queue
    someone has started (an untouched task of it is taken out of the queue). Marking an
    image twice changes nothing. A lead's action.
    """
    require(actor, queue.project, Capability.MANAGE)
    ids = list(dict.fromkeys(image_ids or []))
    if not ids:
        raise ApplicationError("Choose the images to use as honeypots.")
    images = Image.objects.filter(pk__in=ids, project=queue.project).in_bulk()
    missing = [i for i in ids if i not in images]
    if missing:
        raise ApplicationError(
            f"Not images of this project: {', '.join(map(str, missing))}.", details=missing
        )
    known = set(Honeypot.objects.filter(queue=queue).values_list("image_id", flat=True))
    # A queue limited to some classes can only ask for those: the gold holds only them.
    classes = list(queue.label_classes.values_list("pk", flat=True))
    added = []
    for image_id in ids:
        if image_id in known:
            continue
        image = images[image_id]
        accepted = Annotation.objects.filter(
            image=image, status=Annotation.Status.ACCEPTED, deleted=False
        ).order_by("id")
        gold = list(accepted.filter(label_class__in=classes) if classes else accepted)
        if not gold:
            of = " of the classes this queue takes" if classes else ""
            raise ApplicationError(
                f"{image.original_name} has no accepted annotations{of}: a honeypot needs a "
                "known answer.",
                details={"image": image_id},
            )
        tasks = QueueItem.objects.filter(queue=queue, image=image, honeypot__isnull=True)
        if tasks.exclude(
            status=QueueItem.Status.TODO, assignee__isnull=True, returned_to__isnull=True
        ).exists():
            raise ApplicationError(
                f"{image.original_name} is a task of this queue that someone has started; "
                "it cannot become a honeypot.",
                details={"image": image_id},
            )
        tasks.delete()
        added.append(
            Honeypot.objects.create(
                queue=queue,
                image=image,
                position=0,
                created_by=actor,
                gold=[
                    {"label_class": a.label_class_id, "kind": a.kind, "geometry": a.geometry}
                    for a in gold
                ],
            )  # fmt: skip
        )
    _spread(queue)
    for honeypot in added:
        honeypot.refresh_from_db(fields=["position"])
    return added


def honeypot_list(*, user, queue: AnnotationQueue):
    """Return the queue's honeypots (reviewers and leads: annotators must not learn them)."""
    require_reviewer(user, queue.project)
    return Honeypot.objects.filter(queue=queue).select_related("image").order_by("position", "id")


def honeypot_score(*, actor, item: QueueItem, annotations: list[Annotation]) -> float:
    """Score a honeypot task's submitted work against the gold and take it out of the labels.

    Must be called by ``queue_submit`` while it holds the item's lock. The score is the mean
    over classes (in the gold or the work) of the IoU of the work's union with the gold's.
    The work is soft-deleted with a ``honeypot`` revision: the gold stays the image's labels.
    """
    image = item.image
    gold = class_masks(
        [(g["label_class"], g["kind"], g["geometry"]) for g in item.honeypot.gold],
        image.width,
        image.height,
    )
    work = class_masks(_shapes(annotations), image.width, image.height)
    scores = [mask_iou(gold.get(c), work.get(c)) for c in set(gold) | set(work)]
    scores = [s for s in scores if s is not None]
    for annotation in annotations:
        _soft_delete(annotation, action="honeypot", actor=actor)
    return mean(scores) if scores else 0.0


def honeypot_discard(*, actor, item: QueueItem) -> int:
    """Take the actor's unsubmitted work on a honeypot task out of the labels; return how many.

    Must be called while holding the item's lock (``queue_skip``). Like a scored answer,
    the drafts are soft-deleted with a ``honeypot`` revision, so the image keeps its gold.
    """
    drafts = Annotation.objects.filter(
        image_id=item.image_id, author=actor, deleted=False, status=Annotation.Status.DRAFT
    )
    count = 0
    for annotation in drafts:
        _soft_delete(annotation, action="honeypot", actor=actor)
        count += 1
    return count
