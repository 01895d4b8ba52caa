"""Queue and review queries: queues, their tasks, work returned to its author, honeypot
candidates, and what a reviewer sees of the work waiting for them.

Scoped to the projects the user belongs to.
"""

from __future__ import annotations

from django.db.models import Count, Exists, OuterRef, Prefetch, QuerySet, Subquery

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


def queue_list(*, user, project: Project, counts: bool = False) -> QuerySet[AnnotationQueue]:
    """Return the project's queues, newest first; ``counts`` adds ``item_count``.

    Counting reads every item of every queue, so only the callers that show the number
    (the API's list) ask for it.
    """
    queues = (
        AnnotationQueue.objects.filter(project=project, project__memberships__user=user)
        .prefetch_related("label_classes")
        .order_by("-created_at", "-id")
    )
    return queues.annotate(item_count=Count("items")) if counts else queues


def queue_get(*, user, project: Project, queue_id: int) -> AnnotationQueue:
    """Return the queue, without counting its items or reading its classes: "next task"
    reads it on every call."""
    queue = AnnotationQueue.objects.filter(
        pk=queue_id, project=project, project__memberships__user=user
    ).first()
    if queue is None:
        raise NotFound("Queue not found.")
    queue.project = project  # the caller's object (and its role cache), not a second read
    return queue


def queue_item_get(*, user, project: Project, item_id: int) -> QueueItem:
    item = (
        QueueItem.objects.filter(
            pk=item_id, queue__project=project, queue__project__memberships__user=user
        )
        .select_related("queue", "image")
        .first()
    )
    if item is None:
        raise NotFound("Task not found.")
    item.queue.project = item.image.project = project  # the caller's, with its role cache
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


def honeypot_candidate_list(
    *, user, project: Project, queue: AnnotationQueue, limit: int = 60
) -> list[Image]:
    """Return images that could become the queue's honeypots: accepted work, not yet one.

    The images of the project with accepted annotations (the gold answer), minus the
    queue's honeypots and its tasks someone has started (``queue_add_honeypots`` refuses
    those). Reviewers and leads only: the list tells which answers are known.
    """
    if not can(user, project, Capability.REVIEW):
        return []
    started = QueueItem.objects.filter(queue=queue, honeypot__isnull=True).exclude(
        status=QueueItem.Status.TODO, assignee__isnull=True, returned_to__isnull=True
    )
    gold = Annotation.objects.filter(
        image=OuterRef("pk"), status=Annotation.Status.ACCEPTED, deleted=False
    )
    classes = [c.pk for c in queue.label_classes.all()]  # prefetched by queue_list
    if classes:  # its gold holds only the classes the queue takes
        gold = gold.filter(label_class__in=classes)
    # EXISTS per image in id order, not a join grouped over every accepted annotation:
    # the first ``limit`` candidates are found without reading the rest.
    return list(
        Image.objects.filter(Exists(gold), project=project, project__memberships__user=user)
        .exclude(Exists(Honeypot.objects.filter(queue=queue, image=OuterRef("pk"))))
        .exclude(Exists(started.filter(image=OuterRef("pk"))))
        .annotate(
            accepted=Subquery(gold.order_by().values("image").annotate(n=Count("pk")).values("n"))
        )
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
    # EXISTS and a per-row count, not a join grouped by image: a page (or "the next image")
    # then reads its own rows in id order and stops, however many wait for review.
    waiting = Annotation.objects.filter(
        image=OuterRef("pk"), status=Annotation.Status.SUBMITTED, deleted=False
    )
    images = studio_selectors.image_list(user=user, project=project).filter(Exists(waiting))
    if queue_id:
        images = images.filter(
            Exists(
                QueueItem.objects.filter(
                    queue_id=queue_id, queue__project=project, image=OuterRef("pk")
                )
            )
        )
    count = waiting.order_by().values("image").annotate(n=Count("pk")).values("n")
    return images.annotate(submitted=Subquery(count)).order_by("pk")


def review_image_count(*, user, project: Project, queue_id: int | None, cap: int) -> int:
    """Count the images waiting for review, up to ``cap + 1`` (more than cap: "cap+").

    Counted from the annotations' side (the partial index ``annotation_waiting_review``
    holds just the submitted ones), not by testing every image of the project.
    """
    waiting = Annotation.objects.filter(
        status=Annotation.Status.SUBMITTED,
        deleted=False,
        image__project=project,
        image__project__memberships__user=user,
    )
    if queue_id:
        waiting = waiting.filter(
            Exists(
                QueueItem.objects.filter(
                    queue_id=queue_id, queue__project=project, image=OuterRef("image_id")
                )
            )
        )
    images = waiting.order_by("image_id").values("image_id").distinct()
    return images[: cap + 1].count()


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
