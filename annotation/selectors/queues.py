"""Queue and review queries: queues, their tasks, work returned to its author, honeypot
candidates, and what a reviewer sees of the work waiting for them.

Scoped to the projects the user belongs to.
"""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet

from annotation.models import (
    Annotation,
    AnnotationQueue,
    ConsensusResult,
    Honeypot,
    QueueItem,
    ReviewDecision,
)
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


def honeypot_candidate_list(*, user, queue: AnnotationQueue, limit: int = 60) -> list[Image]:
    """Return images that could become honeypots of the queue: accepted work, not yet one.

    The images of the queue's project with accepted annotations (the gold answer), minus
    the queue's honeypots and its tasks someone has started (``queue_add_honeypots``
    refuses those). Reviewers and leads only: the list tells which answers are known.
    """
    if not can(user, queue.project, Capability.REVIEW):
        return []
    started = QueueItem.objects.filter(queue=queue, honeypot__isnull=True).exclude(
        status=QueueItem.Status.TODO, assignee__isnull=True, returned_to__isnull=True
    )
    accepted = Q(annotations__status=Annotation.Status.ACCEPTED, annotations__deleted=False)
    classes = list(queue.label_classes.values_list("pk", flat=True))
    if classes:  # its gold holds only the classes the queue takes
        accepted &= Q(annotations__label_class__in=classes)
    return list(
        Image.objects.filter(accepted, project=queue.project)
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
