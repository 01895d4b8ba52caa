"""Annotation queues: "next task" under a lease, submission, and review.

``queue_next`` hands each image to one annotator at a time. It locks the first free
item with ``SELECT ... FOR UPDATE SKIP LOCKED`` (PostgreSQL; SQLite serialises writers),
so two annotators asking at once never get the same image. A lease that runs out frees
the item for the next person. Rejected work goes back to its author.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from annotation.models import (
    Annotation,
    AnnotationQueue,
    QueueItem,
    ReviewDecision,
)
from annotation.services.labels import record_revision, require_annotator, snapshot
from studio.errors import ApplicationError, Forbidden
from studio.models import DatasetVersion, Image, Project
from studio.permissions import Capability, require


@transaction.atomic
def queue_create(
    *, actor, project: Project, name: str, image_ids: list[int] | None = None,
    version: DatasetVersion | None = None, assignees=(), instructions: str = "", lease_minutes: int = 30,
) -> AnnotationQueue:  # fmt: skip
    """Create a queue from a version's images or a list of images (a lead's action)."""
    require(actor, project, Capability.MANAGE)
    if version is not None:
        image_ids = list(version.items.order_by("image_id").values_list("image_id", flat=True))
    ids = list(
        Image.objects.filter(pk__in=image_ids or [], project=project)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    if not ids:
        raise ApplicationError("A queue needs images: choose a version or a selection.")
    if not 1 <= lease_minutes <= 24 * 60:
        raise ApplicationError("The lease is between 1 minute and 24 hours.")
    members = set(project.memberships.values_list("user_id", flat=True))
    if any(user.pk not in members for user in assignees):
        raise ApplicationError("Assignees must be members of the project.")
    queue = AnnotationQueue.objects.create(
        project=project, name=(name or "").strip()[:200] or "Queue", version=version,
        instructions=instructions, lease_minutes=lease_minutes, created_by=actor,
    )  # fmt: skip
    queue.assignees.set(assignees)
    QueueItem.objects.bulk_create(
        [QueueItem(queue=queue, image_id=i, position=n) for n, i in enumerate(ids)]
    )
    return queue


@transaction.atomic
def queue_next(*, actor, queue: AnnotationQueue) -> QueueItem | None:
    """Return the actor's current task, or lease them the next free one; None when all are taken."""
    require_annotator(actor, queue.project)
    if queue.assignees.exists() and not queue.assignees.filter(pk=actor.pk).exists():
        raise Forbidden("You are not assigned to this queue.")
    now = timezone.now()
    mine = QueueItem.objects.filter(
        queue=queue, assignee=actor, status=QueueItem.Status.IN_PROGRESS, lease_expires_at__gt=now
    ).first()
    if mine is not None:
        return mine
    free = (
        QueueItem.objects.select_for_update(skip_locked=True)
        .filter(queue=queue)
        .filter(
            Q(status=QueueItem.Status.TODO, returned_to__isnull=True)
            | Q(status=QueueItem.Status.TODO, returned_to=actor)
            | Q(status=QueueItem.Status.IN_PROGRESS, lease_expires_at__lte=now)
        )
        .order_by("position")
        .first()
    )
    if free is None:
        return None
    free.status = QueueItem.Status.IN_PROGRESS
    free.assignee = actor
    free.lease_expires_at = now + timedelta(minutes=queue.lease_minutes)
    free.save(update_fields=["status", "assignee", "lease_expires_at"])
    return free


@transaction.atomic
def queue_submit(*, actor, item: QueueItem) -> QueueItem:
    """Submit the task: the actor's drafts on the image become submitted, the item awaits review."""
    require_annotator(actor, item.queue.project)
    item = QueueItem.objects.select_for_update().get(pk=item.pk)
    if item.assignee_id != actor.pk or item.status != QueueItem.Status.IN_PROGRESS:
        raise ApplicationError("This task is not yours right now; ask for the next task.")
    drafts = Annotation.objects.filter(
        image_id=item.image_id, author=actor, status=Annotation.Status.DRAFT, deleted=False
    )
    for annotation in drafts:
        before = snapshot(annotation)
        annotation.status = Annotation.Status.SUBMITTED
        annotation.version += 1
        annotation.save(update_fields=["status", "version", "updated_at"])
        record_revision(annotation=annotation, action="update", actor=actor, before=before)
    item.status = QueueItem.Status.SUBMITTED
    item.lease_expires_at = None
    item.returned_to = None
    item.save(update_fields=["status", "lease_expires_at", "returned_to"])
    return item


@transaction.atomic
def annotation_review(
    *, actor, annotation: Annotation, decision: str, comment: str = ""
) -> ReviewDecision:
    """Accept or reject submitted work (reviewers and leads). Rejected work returns to its author."""
    role = require(actor, annotation.image.project, Capability.VIEW)
    if role not in ("lead", "reviewer"):
        raise Forbidden("Only reviewers and leads review annotations.")
    if decision not in ReviewDecision.Decision.values:
        raise ApplicationError("The decision is accept or reject.")
    if decision == "reject" and not comment.strip():
        raise ApplicationError("Say why it is rejected, so its author can fix it.")
    annotation = Annotation.objects.select_for_update().get(pk=annotation.pk)
    if annotation.deleted or annotation.status not in (
        Annotation.Status.SUBMITTED,
        Annotation.Status.ACCEPTED,
        Annotation.Status.REJECTED,
    ):
        raise ApplicationError("Only submitted work can be reviewed.")
    before = snapshot(annotation)
    annotation.status = (
        Annotation.Status.ACCEPTED if decision == "accept" else Annotation.Status.REJECTED
    )
    annotation.version += 1
    annotation.save(update_fields=["status", "version", "updated_at"])
    record_revision(annotation=annotation, action="review", actor=actor, before=before)
    review = ReviewDecision.objects.create(
        annotation=annotation, reviewer=actor, decision=decision, comment=comment.strip(),
        annotation_version=annotation.version,
    )  # fmt: skip
    items = QueueItem.objects.filter(
        image_id=annotation.image_id, queue__project=annotation.image.project
    )
    if decision == "reject":
        items.filter(status__in=[QueueItem.Status.SUBMITTED, QueueItem.Status.DONE]).update(
            status=QueueItem.Status.TODO,
            assignee=None,
            lease_expires_at=None,
            returned_to=annotation.author,
        )
    elif (
        not Annotation.objects.filter(image_id=annotation.image_id, deleted=False)
        .exclude(status=Annotation.Status.ACCEPTED)
        .exists()
    ):
        items.filter(status=QueueItem.Status.SUBMITTED).update(status=QueueItem.Status.DONE)
    return review
