"""Annotation queues: "next task" under a lease, submission, and review.

``queue_next`` hands each task to one annotator at a time. It locks the first free
item with ``SELECT ... FOR UPDATE SKIP LOCKED`` (PostgreSQL; SQLite serialises writers),
so two annotators asking at once never get the same task. A lease that runs out frees
the item for the next person. Rejected work goes back to its author.

Consensus: a queue with ``annotators_per_image`` N holds N items (replicas) per image, and
nobody is handed a second replica of an image they hold or have worked. Honeypots are
tasks made for one annotator when the queue reaches their position (see
``annotation/services/quality_control.py``); they are never passed on.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import Case, Exists, Q, Value, When
from django.utils import timezone

from annotation.models import (
    Annotation,
    AnnotationQueue,
    Honeypot,
    QueueItem,
    ReviewDecision,
    TaskSkip,
    TaskSubmission,
)
from annotation.services import leasing, quality_control
from annotation.services.labels import (
    annotations_submit,
    annotations_with_history,
    record_revision,
    require_annotator,
    snapshot,
    stale_annotation,
)
from studio.errors import ApplicationError, Forbidden
from studio.models import DatasetVersion, Image, Project
from studio.permissions import Capability, require, role_can


@transaction.atomic
def queue_create(
    *, actor, project: Project, name: str, image_ids: list[int] | None = None,
    version: DatasetVersion | None = None, assignees=(), instructions: str = "", lease_minutes: int = 30,
    annotators_per_image: int = 1, label_classes=(),
) -> AnnotationQueue:  # fmt: skip
    """Create a queue from a version's images or a list of images (a lead's action).

    With ``annotators_per_image`` N > 1 every image becomes N tasks for N different people.
    With ``label_classes`` its tasks offer and accept only those classes (none: all).
    """
    require(actor, project, Capability.MANAGE)
    if any(c.project_id != project.pk for c in label_classes):
        raise ApplicationError("Those label classes belong to another project.")
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
    if not 1 <= annotators_per_image <= 10:
        raise ApplicationError("Annotators per image is between 1 and 10.")
    roles = dict(project.memberships.values_list("user_id", "role"))
    if any(user.pk not in roles for user in assignees):
        raise ApplicationError("Assignees must be members of the project.")
    able = (
        {u.pk for u in assignees}
        if assignees
        else {pk for pk, role in roles.items() if role_can(role, Capability.ANNOTATE)}
    )
    if annotators_per_image > len(able):
        raise ApplicationError(
            f"{annotators_per_image} annotators per image needs at least that many people who "
            f"may annotate this queue; there are {len(able)}."
        )
    queue = AnnotationQueue.objects.create(
        project=project, name=(name or "").strip()[:200] or "Queue", version=version,
        instructions=instructions, lease_minutes=lease_minutes, created_by=actor,
        annotators_per_image=annotators_per_image,
    )  # fmt: skip
    queue.assignees.set(assignees)
    queue.label_classes.set(label_classes)
    QueueItem.objects.bulk_create(
        [
            QueueItem(queue=queue, image_id=i, position=n, replica=r)
            for n, i in enumerate(ids)
            for r in range(annotators_per_image)
        ]
    )
    return queue


@transaction.atomic
def queue_next(*, actor, queue: AnnotationQueue, not_image: int | None = None) -> QueueItem | None:
    """Return the actor's current task, or lease them the next free one; None when all are taken.

    A free task is a regular item nobody holds (or returned to the actor, or whose lease
    ran out) of an image the actor has no other replica of. Work returned to the actor
    comes first; images the actor skipped come last (after everything else they may take).
    A honeypot the actor has not had yet comes first once the next free task's position
    reaches the honeypot's. ``not_image`` (the image just skipped) is not offered at all.

    A call is three statements when it leases a task: the lock on the actor's membership,
    the read of what decides it, and the lease (see ``leasing``).
    """
    require_annotator(actor, queue.project)
    now = timezone.now()
    state = leasing.annotator_state(actor=actor, queue=queue, now=now, not_image=not_image)
    if state["assigned_any"] and not state["assigned_me"]:
        raise Forbidden("You are not assigned to this queue.")
    if state["mine"] is not None:
        mine = QueueItem.objects.get(pk=state["mine"])
        mine.queue = queue
        return mine
    free = leasing.free_items(actor=actor, queue=queue, now=now, not_image=not_image)
    if state["returned"] is not None:
        item = leasing.lease(free.filter(pk=state["returned"]), actor=actor, queue=queue, now=now)
        if item is not None:
            return item
    regular = free.exclude(Exists(leasing.skipped(actor=actor, queue=queue)))
    honeypot = None
    if state["honeypot"] is not None:
        honeypot = Honeypot.objects.get(pk=state["honeypot"])
        honeypot.queue = queue
        # The honeypot waits until the queue reaches its position.
        regular = regular.filter(position__lt=honeypot.position)
    first = regular.order_by("position", "replica", "id")
    item = leasing.lease(first, actor=actor, queue=queue, now=now)
    if item is not None:
        return item
    if honeypot is not None:
        return _honeypot_task(actor=actor, honeypot=honeypot, now=now)
    # Only images the actor skipped are left: theirs (returned) first, then in queue order.
    returned_first = Case(When(returned_to=actor, then=Value(0)), default=Value(1))
    left = free.order_by(returned_first, "position", "replica", "id")
    return leasing.lease(left, actor=actor, queue=queue, now=now)


def _honeypot_task(*, actor, honeypot: Honeypot, now) -> QueueItem:
    """Make the actor's task for a honeypot (once; a concurrent second call gets the same one)."""
    queue = honeypot.queue
    try:
        with transaction.atomic():
            return QueueItem.objects.create(
                queue=queue, image_id=honeypot.image_id, position=honeypot.position,
                honeypot=honeypot, status=QueueItem.Status.IN_PROGRESS, assignee=actor,
                leased_at=now, lease_expires_at=now + timedelta(minutes=queue.lease_minutes),
            )  # fmt: skip
    except IntegrityError:
        return QueueItem.objects.get(honeypot=honeypot, assignee=actor)


@transaction.atomic
def queue_skip(*, actor, item: QueueItem) -> TaskSkip:
    """Pass the actor's task on without submitting it: release the lease and record the skip.

    The item goes back to the queue as it was (work returned to the actor stays theirs);
    ``queue_next`` offers the actor every other task before an image they skipped, so it
    goes to other annotators first. Drafts the actor left on the image stay theirs. A
    skipped honeypot task is closed unscored (a honeypot is offered to each annotator
    once) and the actor's drafts on it are discarded, so the image keeps its gold.
    """
    require_annotator(actor, item.queue.project)
    item = QueueItem.objects.select_for_update().select_related("queue").get(pk=item.pk)
    if item.assignee_id != actor.pk or item.status != QueueItem.Status.IN_PROGRESS:
        raise ApplicationError("This task is not yours right now; ask for the next task.")
    skip = TaskSkip.objects.create(
        queue=item.queue, item=item, image_id=item.image_id, annotator=actor
    )
    if item.honeypot_id is not None:
        quality_control.honeypot_discard(actor=actor, item=item)
        item.status = QueueItem.Status.DONE
        item.lease_expires_at = None
        item.save(update_fields=["status", "lease_expires_at"])
        return skip
    item.status = QueueItem.Status.TODO
    item.assignee = None
    item.leased_at = None
    item.lease_expires_at = None
    item.save(update_fields=["status", "assignee", "leased_at", "lease_expires_at"])
    return skip


@transaction.atomic
def queue_submit(*, actor, item: QueueItem) -> QueueItem:
    """Submit the task: the actor's drafts on the image become submitted, the item awaits review.

    Every submission is logged (``TaskSubmission``) for the statistics. A honeypot task is
    scored against its gold at once and closed; when the last replica of a consensus image
    comes in, the annotators' agreement is computed. The item is closed first, by a
    conditional UPDATE that also takes its lock: a second submission of it (a double click,
    a retry after a timeout) finds it closed and changes nothing.
    """
    require_annotator(actor, item.queue.project)
    closed = QueueItem.Status.SUBMITTED if item.honeypot_id is None else QueueItem.Status.DONE
    taken = QueueItem.objects.filter(
        pk=item.pk, assignee=actor, status=QueueItem.Status.IN_PROGRESS
    ).update(status=closed, lease_expires_at=None, returned_to=None)
    if not taken:
        raise ApplicationError("This task is not yours right now; ask for the next task.")
    # The annotator's drafts, and their rejected work (fixed, or kept as it is and sent
    # back). On a plain task also the machine drafts they left in place (batch pre-annotation
    # made by whoever started the job): submitting is vouching for them. Consensus and
    # honeypot tasks show only the annotator's own work, so only that is submitted.
    mine = Q(author=actor, status__in=[Annotation.Status.DRAFT, Annotation.Status.REJECTED])
    if item.honeypot_id is None and item.queue.annotators_per_image == 1:
        mine |= Q(status=Annotation.Status.DRAFT) & ~Q(source=Annotation.Source.HUMAN)
    drafts = annotations_with_history(
        Annotation.objects.filter(mine, image_id=item.image_id, deleted=False)
    )
    submitted = annotations_submit(actor=actor, annotations=drafts)
    submission = TaskSubmission(
        queue=item.queue, item=item, annotator=actor, leased_at=item.leased_at,
        submitted_at=timezone.now(),
    )  # fmt: skip
    item.status, item.lease_expires_at, item.returned_to = closed, None, None
    if item.honeypot_id is not None:
        submission.honeypot_score = quality_control.honeypot_score(
            actor=actor, item=item, annotations=submitted
        )
    submission.save()
    if item.honeypot_id is None and item.queue.annotators_per_image > 1:
        quality_control.consensus_update(queue=item.queue, image=item.image)
    return item


@transaction.atomic
def annotation_review(
    *, actor, annotation: Annotation, decision: str, comment: str = "",
    expected_version: int | None = None,
) -> ReviewDecision:  # fmt: skip
    """Accept or reject submitted work (reviewers and leads). Rejected work returns to its author.

    With ``expected_version`` (the canvas sends it) a decision on an annotation that changed
    since the reviewer loaded it — edited, or decided by a colleague — is refused with the
    current state (StaleAnnotation, a 409) instead of overturning what happened meanwhile.
    """
    require(
        actor,
        annotation.image.project,
        Capability.REVIEW,
        "Only reviewers and leads review annotations.",
    )
    if decision not in ReviewDecision.Decision.values:
        raise ApplicationError("The decision is accept or reject.")
    if decision == "reject" and not comment.strip():
        raise ApplicationError("Say why it is rejected, so its author can fix it.")
    annotation = Annotation.objects.select_for_update().get(pk=annotation.pk)
    if expected_version is not None and annotation.version != expected_version:
        raise stale_annotation(annotation, expected_version)
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
    # Honeypot tasks are closed when scored, so reviews never move them.
    items = QueueItem.objects.filter(
        image_id=annotation.image_id, queue__project=annotation.image.project, honeypot__isnull=True
    )
    if decision == "reject":
        # On a consensus image each replica is its author's: only theirs goes back.
        items.filter(Q(queue__annotators_per_image=1) | Q(assignee_id=annotation.author_id)).filter(
            status__in=[QueueItem.Status.SUBMITTED, QueueItem.Status.DONE]
        ).update(
            status=QueueItem.Status.TODO,
            assignee=None,
            lease_expires_at=None,
            returned_to=annotation.author,
        )
    elif (
        # Work waiting for a decision keeps the task open; stray drafts (nobody submitted
        # them) do not.
        not Annotation.objects.filter(
            image_id=annotation.image_id,
            deleted=False,
            status__in=[Annotation.Status.SUBMITTED, Annotation.Status.REJECTED],
        ).exists()
    ):
        items.filter(status=QueueItem.Status.SUBMITTED).update(status=QueueItem.Status.DONE)
    return review
