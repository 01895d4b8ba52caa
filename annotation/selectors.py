"""Curation queries, scoped to the projects the user belongs to."""

from __future__ import annotations

import math

from django.db.models import Count, Prefetch, Q, QuerySet

from annotation.models import (
    Annotation,
    AnnotationQueue,
    AnnotationRevision,
    BackboneCheckpoint,
    Cluster,
    ClusterRun,
    ConsensusResult,
    DuplicateGroup,
    DuplicateMember,
    EmbeddingMap,
    EmbeddingSpace,
    Honeypot,
    LabelClass,
    QueueItem,
    ReviewDecision,
    VersionImageScore,
)
from studio import selectors as studio_selectors
from studio.errors import ApplicationError, NotFound
from studio.models import DatasetVersion, Image, Job, Project
from studio.permissions import Capability, can, role_of


def embedding_space_list(*, user, project: Project) -> QuerySet[EmbeddingSpace]:
    return EmbeddingSpace.objects.filter(project=project, project__memberships__user=user).order_by(
        "backbone", "-created_at"
    )


def embedding_space_get(*, user, project: Project, backbone: str | None = None) -> EmbeddingSpace:
    """Return the newest space of the backbone (any backbone when None), or NotFound."""
    spaces = embedding_space_list(user=user, project=project).order_by("-created_at")
    if backbone:
        spaces = spaces.filter(backbone=backbone)
    space = spaces.first()
    if space is None:
        raise NotFound("No embeddings yet: embed a dataset version first.")
    return space


VERSION_SCORES = ("uniqueness", "outlier_score")
QUALITY_METRICS = (
    "brightness", "contrast", "sharpness", "colourfulness", "aspect_ratio", "megapixels",
    "uniqueness", "outlier_score",
)  # fmt: skip


def cluster_run_latest(*, user, version: DatasetVersion) -> ClusterRun | None:
    """Return the version's newest clustering with its clusters, or None."""
    return (
        ClusterRun.objects.filter(
            version=version, version__dataset__project__memberships__user=user
        )
        .prefetch_related("clusters")
        .order_by("-created_at", "-id")
        .first()
    )


def cluster_get(*, user, project: Project, cluster_id: int) -> Cluster:
    cluster = (
        Cluster.objects.filter(
            pk=cluster_id,
            run__version__dataset__project=project,
            run__version__dataset__project__memberships__user=user,
        )
        .select_related("run__version__dataset__project")
        .first()
    )
    if cluster is None:
        raise NotFound("Cluster not found.")
    return cluster


def duplicate_groups(*, user, version: DatasetVersion) -> QuerySet[DuplicateGroup]:
    return (
        DuplicateGroup.objects.filter(
            version=version, version__dataset__project__memberships__user=user
        )
        .prefetch_related(
            Prefetch("members", queryset=DuplicateMember.objects.select_related("image"))
        )
        .order_by("id")
    )


def duplicate_drop_count(*, user, version: DatasetVersion) -> int:
    """Count the copies dropping duplicates would leave out (members not kept)."""
    return DuplicateMember.objects.filter(
        group__version=version,
        group__version__dataset__project__memberships__user=user,
        keep=False,
    ).count()


def duplicate_member_get(*, user, project: Project, member_id: int) -> DuplicateMember:
    member = (
        DuplicateMember.objects.filter(
            pk=member_id,
            group__version__dataset__project=project,
            group__version__dataset__project__memberships__user=user,
        )
        .select_related("group__version__dataset__project")
        .first()
    )
    if member is None:
        raise NotFound("Duplicate not found.")
    return member


def outliers(*, user, version: DatasetVersion, limit: int = 48) -> QuerySet[VersionImageScore]:
    """Return the version's image scores by descending outlier score, with their images."""
    return (
        VersionImageScore.objects.filter(
            version=version, version__dataset__project__memberships__user=user
        )
        .select_related("image__quality")
        .order_by("-outlier_score", "image_id")[:limit]
    )


CURATION_KINDS = (Job.Kind.EMBED, Job.Kind.ANALYZE, Job.Kind.CLUSTER)


def curation_jobs_active(*, user, version: DatasetVersion) -> list[Job]:
    """Return the version's embed, analyze and cluster jobs still queued or running.

    The Curate page names them, so its empty sections say "being computed" instead of
    "run this first" while the work is under way.
    """
    return list(
        studio_selectors.job_list(user=user, project=version.dataset.project)
        .filter(kind__in=CURATION_KINDS, status__in=Job.ACTIVE, params__version=version.pk)
        .order_by("created_at", "id")
    )


def embedding_map(*, user, version: DatasetVersion) -> EmbeddingMap | None:
    return (
        EmbeddingMap.objects.filter(
            version=version, version__dataset__project__memberships__user=user
        )
        .order_by("-created_at")
        .first()
    )


def quality_filters_from_params(params) -> dict[str, float]:
    """Pick ``quality.<metric>_min`` / ``_max`` bounds from query parameters.

    Pixel metrics filter on ``quality__<metric>``; uniqueness and outlier_score belong to a
    version and filter on ``version_scores__<metric>`` (the caller passes the version).
    """
    bounds = {}
    for key, value in params.items():
        if not key.startswith("quality.") or value in ("", None):
            continue
        name = key[len("quality.") :]
        metric, _, side = name.rpartition("_")
        if metric not in QUALITY_METRICS or side not in ("min", "max"):
            raise ApplicationError(
                f"Unknown quality filter {key!r}; use quality.<metric>_min or _max with one of "
                + ", ".join(QUALITY_METRICS)
                + "."
            )
        try:
            number = float(value)
        except ValueError:
            raise ApplicationError(f"{key} must be a number.")
        if not math.isfinite(number):
            raise ApplicationError(f"{key} must be a finite number.")
        relation = "version_scores" if metric in VERSION_SCORES else "quality"
        bounds[f"{relation}__{metric}__{'gte' if side == 'min' else 'lte'}"] = number
    return bounds


def checkpoint_list(*, user, project: Project) -> QuerySet[BackboneCheckpoint]:
    return BackboneCheckpoint.objects.filter(
        project=project, project__memberships__user=user
    ).order_by("name")


def checkpoint_get(*, user, project: Project, checkpoint_id: int) -> BackboneCheckpoint:
    checkpoint = checkpoint_list(user=user, project=project).filter(pk=checkpoint_id).first()
    if checkpoint is None:
        raise NotFound("Checkpoint not found.")
    return checkpoint


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


def queue_list(*, user, project: Project) -> QuerySet[AnnotationQueue]:
    return (
        AnnotationQueue.objects.filter(project=project, project__memberships__user=user)
        .annotate(item_count=Count("items"))
        .prefetch_related("label_classes")
        .order_by("-created_at", "-id")
    )


def queue_get(*, user, project: Project, queue_id: int) -> AnnotationQueue:
    """Return the queue, without counting its items (``queue_list`` does, for lists): "next
    task" reads it on every call."""
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


def honeypot_candidate_list(*, user, queue: AnnotationQueue, limit: int = 60) -> list[Image]:
    """Return images that could become honeypots of the queue: accepted work, not yet one.

    The images of the queue's project with accepted annotations (the gold answer), minus
    the queue's honeypots and its tasks someone has started (``queue_add_honeypots``
    refuses those). Reviewers and leads only: the list tells which answers are known.
    """
    if role_of(user, queue.project) not in ("lead", "reviewer"):
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
    if role_of(user, project) not in ("lead", "reviewer"):
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
    if role_of(user, project) not in ("lead", "reviewer"):
        return {}
    return {
        r.image_id: r
        for r in ConsensusResult.objects.filter(
            queue__project=project, image_id__in=image_ids
        ).order_by("computed_at")
    }
