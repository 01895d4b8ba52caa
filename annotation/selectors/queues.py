"""Queue and review queries: queues, their tasks, work returned to its author, honeypot
candidates, and what a reviewer sees of the work waiting for them.

Scoped to the projects the user belongs to.
"""

from __future__ import annotations

from django.db.models import Count, Prefetch, Q, QuerySet

from annotation.models import (
    Annotation,
    AnnotationQueue,
    ConsensusResult,
    Honeypot,
    QueueItem,
    ReviewDecision,
)
from studio import selectors as studio_selectors
from studio.errors import NotFound
from studio.models import Image, Project
from studio.permissions import Capability, can


def queue_list(*, user, project: Project) -> QuerySet[AnnotationQueue]:
    return (
        AnnotationQueue.objects.filter(project=project, project__memberships__user=user)
        .annotate(item_count=Count("items"))
        .prefetch_related("label_classes")
        .order_by("-created_at", "-id")
    )


def queue_get(*, user, project: Project, queue_id: int) -> AnnotationQueue:
    queue = queue_list(user=user, project=project).filter(pk=queue_id).first()
    if queue is None:
        raise NotFound("Queue not found.")
    return queue


def queue_item_get(*, user, project: Project, item_id: int) -> QueueItem:
    item = (
        QueueItem.objects.filter(
            pk=item_id, queue__project=project, queue__project__memberships__user=user
        )
        .select_related("queue__project", "image")
        .first()
    )
    if item is None:
        raise NotFound("Task not found.")
    return item


def returned_task_list(*, user, project: Project) -> list[dict]:
    """Return the user's tasks that a reviewer rejected back to them, with why.

    Each row: the item (its queue and image), and the latest rejection of the user's work
    on that image (``review``: reviewer, comment, when, the class in ``annotation``).
    """
    items = list(
        QueueItem.objects.filter(
            queue__project=project, queue__project__memberships__user=user, returned_to=user
        )
        .exclude(status__in=[QueueItem.Status.SUBMITTED, QueueItem.Status.DONE])
        .select_related("queue", "image")
        .order_by("queue_id", "position", "id")
    )
    reviews: dict[int, list[ReviewDecision]] = {}
    for review in (
        ReviewDecision.objects.filter(
            decision=ReviewDecision.Decision.REJECT,
            annotation__image_id__in=[i.image_id for i in items],
            annotation__author=user,
            annotation__deleted=False,
            annotation__status=Annotation.Status.REJECTED,
        )
        .select_related("reviewer", "annotation__label_class")
        .order_by("-created_at", "-id")
    ):
        reviews.setdefault(review.annotation.image_id, []).append(review)
    return [{"item": i, "reviews": reviews.get(i.image_id, [])} for i in items]


def rejected_work(*, user, item: QueueItem) -> list[tuple[Annotation, ReviewDecision | None]]:
    """Return the user's rejected annotations on the task's image, each with its latest
    rejection (the reviewer's comment), or None when none is kept.

    Two queries, however many there are: the rejections come in one prefetch, already
    filtered and ordered, so nothing is queried again per annotation.
    """
    rejections = ReviewDecision.objects.filter(decision=ReviewDecision.Decision.REJECT).order_by(
        "-created_at", "-id"
    )
    rejected = (
        Annotation.objects.filter(
            image_id=item.image_id,
            image__project__memberships__user=user,
            author=user,
            deleted=False,
            status=Annotation.Status.REJECTED,
        )
        .select_related("label_class")
        .prefetch_related(Prefetch("reviews", queryset=rejections, to_attr="rejections"))
    )
    return [(a, a.rejections[0] if a.rejections else None) for a in rejected]


def honeypot_candidates_by_queue(
    *, user, project: Project, queues: list[AnnotationQueue], limit: int = 60
) -> dict[int, list[Image]]:
    """Return queue id -> images that could become its honeypots: accepted work, not yet one.

    The images of the project with accepted annotations (the gold answer), minus the
    queue's honeypots and its tasks someone has started (``queue_add_honeypots`` refuses
    those). Reviewers and leads only: the list tells which answers are known. One query
    per queue (what it may take differs), none to check the role again.
    """
    if not can(user, project, Capability.REVIEW):
        return {}
    return {queue.pk: _honeypot_candidates(user, project, queue, limit) for queue in queues}


def _honeypot_candidates(user, project: Project, queue: AnnotationQueue, limit: int) -> list[Image]:
    started = QueueItem.objects.filter(queue=queue, honeypot__isnull=True).exclude(
        status=QueueItem.Status.TODO, assignee__isnull=True, returned_to__isnull=True
    )
    accepted = Q(annotations__status=Annotation.Status.ACCEPTED, annotations__deleted=False)
    classes = [c.pk for c in queue.label_classes.all()]  # prefetched by queue_list
    if classes:  # its gold holds only the classes the queue takes
        accepted &= Q(annotations__label_class__in=classes)
    return list(
        Image.objects.filter(accepted, project=project, project__memberships__user=user)
        .exclude(pk__in=Honeypot.objects.filter(queue=queue).values("image_id"))
        .exclude(pk__in=started.values("image_id"))
        .annotate(accepted=Count("annotations", distinct=True))
        .order_by("pk")[:limit]
    )


def submitted_by(*, user, project: Project, image_ids: list[int]) -> dict[int, list[dict]]:
    """Return, per image, who made its work waiting for review (reviewers and leads).

    Each entry: ``author`` (a username, or None), ``source`` (its label: Human, Segment
    Anything, GrabCut, Model, Import) and ``count``, most annotations first.
    """
    if not can(user, project, Capability.REVIEW):
        return {}
    sources = dict(Annotation.Source.choices)
    rows = (
        Annotation.objects.filter(
            image__project=project,
            image_id__in=image_ids,
            status=Annotation.Status.SUBMITTED,
            deleted=False,
        )
        .values("image_id", "author__username", "source")
        .annotate(n=Count("id"))
        .order_by("image_id", "-n", "author__username", "source")
    )
    found: dict[int, list[dict]] = {}
    for row in rows:
        found.setdefault(row["image_id"], []).append(
            {
                "author": row["author__username"],
                "source": sources.get(row["source"], row["source"]),
                "machine": row["source"] != Annotation.Source.HUMAN,
                "count": row["n"],
            }
        )
    return found


def consensus_by_image(
    *, user, project: Project, image_ids: list[int]
) -> dict[int, ConsensusResult]:
    """Return each image's consensus result (agreement, whether merged), reviewers and leads."""
    if not can(user, project, Capability.REVIEW):
        return {}
    return {
        r.image_id: r
        for r in ConsensusResult.objects.filter(
            queue__project=project, image_id__in=image_ids
        ).order_by("computed_at")
    }


def queue_status_counts(*, user, queues: list[AnnotationQueue]) -> dict[tuple[int, str], int]:
    """Return (queue id, status) -> number of the queues' tasks, honeypots left out."""
    return {
        (row["queue_id"], row["status"]): row["n"]
        for row in QueueItem.objects.filter(
            queue__in=queues, queue__project__memberships__user=user, honeypot__isnull=True
        )
        .values("queue_id", "status")
        .annotate(n=Count("id"))
    }


def honeypots_by_queue(
    *, user, project: Project, queues: list[AnnotationQueue]
) -> dict[int, list[Honeypot]]:
    """Return queue id -> its honeypots with their images, in one query (reviewers and
    leads; nobody else may learn which images they are)."""
    found: dict[int, list[Honeypot]] = {}
    if not queues or not can(user, project, Capability.REVIEW):
        return found
    for honeypot in (
        Honeypot.objects.filter(
            queue__in=queues, queue__project=project, queue__project__memberships__user=user
        )
        .select_related("image")
        .order_by("queue_id", "position", "id")
    ):
        found.setdefault(honeypot.queue_id, []).append(honeypot)
    return found


def review_image_list(*, user, project: Project, queue_id: int | None = None) -> QuerySet[Image]:
    """Return the images with submitted work waiting for review, by id, with ``submitted``
    (how many annotations wait), optionally only the images of one queue."""
    images = studio_selectors.image_list(user=user, project=project).filter(
        annotations__status=Annotation.Status.SUBMITTED, annotations__deleted=False
    )
    if queue_id:
        images = images.filter(
            pk__in=QueueItem.objects.filter(queue_id=queue_id, queue__project=project).values(
                "image_id"
            )
        )
    return images.annotate(
        submitted=Count(
            "annotations",
            filter=Q(annotations__status=Annotation.Status.SUBMITTED, annotations__deleted=False),
            distinct=True,
        )
    ).order_by("pk")


def consensus_unmerged_get(*, user, project: Project, image: Image) -> ConsensusResult | None:
    """Return the image's consensus result whose replicas are not merged yet, or None."""
    return (
        ConsensusResult.objects.filter(
            queue__project=project,
            queue__project__memberships__user=user,
            image=image,
            merged_at__isnull=True,
        )
        .select_related("queue")
        .first()
    )
