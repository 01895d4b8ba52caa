"""Label schema and annotation queries: classes, annotations and their revisions.

Scoped to the projects the user belongs to; annotators never see honeypot answers or
the other replicas of a consensus image (``annotation_list``).
"""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet

from annotation.models import Annotation, AnnotationRevision, Honeypot, LabelClass, QueueItem
from studio.errors import NotFound
from studio.models import Image, Project
from studio.permissions import Capability, can, role_of


def label_class_list(*, user, project: Project) -> QuerySet[LabelClass]:
    return LabelClass.objects.filter(project=project, project__memberships__user=user).order_by(
        "name"
    )


def label_class_get(*, user, project: Project, label_class_id: int) -> LabelClass:
    label_class = label_class_list(user=user, project=project).filter(pk=label_class_id).first()
    if label_class is None:
        raise NotFound("Label class not found.")
    return label_class


def label_class_usage(*, user, label_class: LabelClass) -> dict[str, int]:
    """Count what holds on to a class: live annotations, deleted ones kept for restoring,
    and queues limited to it among others."""
    counts = Annotation.objects.filter(
        label_class=label_class, label_class__project__memberships__user=user
    ).aggregate(
        live=Count("pk", filter=Q(deleted=False)), deleted=Count("pk", filter=Q(deleted=True))
    )
    queues = label_class.queues.filter(project__memberships__user=user).count()
    return {"live": counts["live"] or 0, "deleted": counts["deleted"] or 0, "queues": queues}


def member_work(*, user, project: Project, member) -> dict[str, int]:
    """Count what a member has in the project: annotations they made, images they hold now."""
    from django.utils import timezone

    if role_of(user, project) is None:
        raise NotFound("Project not found.")
    return {
        "annotations": Annotation.objects.filter(
            image__project=project, author=member, deleted=False
        ).count(),
        "held": QueueItem.objects.filter(
            queue__project=project, assignee=member, lease_expires_at__gt=timezone.now()
        ).count(),
    }


def annotation_list(
    *, user, project: Project, image: Image | None = None, include_deleted: bool = False
) -> QuerySet[Annotation]:
    qs = Annotation.objects.filter(
        image__project=project, image__project__memberships__user=user
    ).select_related("label_class")
    if image is not None:
        qs = qs.filter(image=image)
    if not can(user, project, Capability.SEE_ALL_LABELS):
        # Honeypot answers and the other replicas of a consensus image stay hidden from
        # annotators everywhere (image pages, lists, detail, history, exports): they see
        # their own work on those images, nothing else.
        blind = Q(
            image_id__in=Honeypot.objects.filter(queue__project=project).values("image_id")
        ) | Q(
            image_id__in=QueueItem.objects.filter(
                queue__project=project, queue__annotators_per_image__gt=1
            ).values("image_id")
        )
        qs = qs.exclude(blind & ~Q(author=user))
    if not include_deleted:
        qs = qs.filter(deleted=False)
    return qs.order_by("id")


def annotation_get(*, user, project: Project, annotation_id: int) -> Annotation:
    annotation = (
        annotation_list(user=user, project=project, include_deleted=True)
        .select_related("image")
        .filter(pk=annotation_id)
        .first()
    )
    if annotation is None:
        raise NotFound("Annotation not found.")
    return annotation


def revision_get(*, user, annotation: Annotation, revision_id: int) -> AnnotationRevision:
    revision = AnnotationRevision.objects.filter(
        pk=revision_id, annotation=annotation, annotation__image__project__memberships__user=user
    ).first()
    if revision is None:
        raise NotFound("Revision not found.")
    return revision
