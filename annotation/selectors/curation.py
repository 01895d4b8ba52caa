"""Curation queries: embeddings, clusters, duplicates, outliers and backbone
checkpoints, scoped to the projects the user belongs to."""

from __future__ import annotations

from django.db.models import Count, OuterRef, Prefetch, QuerySet, Subquery

from annotation.models import (
    BackboneCheckpoint,
    Cluster,
    ClusterMember,
    ClusterRun,
    DuplicateGroup,
    DuplicateMember,
    EmbeddingMap,
    EmbeddingSpace,
    ImageQuality,
    QualityHistograms,
    VersionImageScore,
)
from studio import selectors as studio_selectors
from studio.errors import NotFound
from studio.models import DatasetVersion, Job, Project


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


def duplicate_groups(
    *, user, version: DatasetVersion, members: int | None = None
) -> QuerySet[DuplicateGroup]:
    """Return the version's near-duplicate groups with ``member_count`` and ``shown``.

    ``shown`` holds the group's members, the kept copy first then the most similar,
    at most ``members`` of them (all when None): a burst of a thousand near-identical
    frames is one group, and a page lists a few of it and says how many more.
    """
    shown = DuplicateMember.objects.select_related("image").order_by("-keep", "-similarity", "id")
    count = (
        DuplicateMember.objects.filter(group=OuterRef("pk"))
        .order_by()
        .values("group")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return (
        DuplicateGroup.objects.filter(
            version=version, version__dataset__project__memberships__user=user
        )
        .annotate(member_count=Subquery(count))
        .prefetch_related(
            Prefetch("members", queryset=shown[:members] if members else shown, to_attr="shown")
        )
        .order_by("id")
    )


def quality_histograms(*, user, version: DatasetVersion) -> dict:
    """Return the version's binned quality metrics from its last analysis ({} before one)."""
    found = QualityHistograms.objects.filter(
        version=version, version__dataset__project__memberships__user=user
    ).first()
    return found.bins if found is not None else {}


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


def checkpoint_list(*, user, project: Project) -> QuerySet[BackboneCheckpoint]:
    return BackboneCheckpoint.objects.filter(
        project=project, project__memberships__user=user
    ).order_by("name")


def checkpoint_get(*, user, project: Project, checkpoint_id: int) -> BackboneCheckpoint:
    checkpoint = checkpoint_list(user=user, project=project).filter(pk=checkpoint_id).first()
    if checkpoint is None:
        raise NotFound("Checkpoint not found.")
    return checkpoint


def metric_values(
    *, user, version: DatasetVersion, metric: str, image_ids=None
) -> dict[int, float]:
    """Return image id -> value of a pixel metric, or of a score the version's analysis
    computed (``studio.selectors.VERSION_SCORES``), for the version's images or some."""
    if metric in studio_selectors.VERSION_SCORES:
        rows = VersionImageScore.objects.filter(
            version=version, version__dataset__project__memberships__user=user
        )
    else:
        rows = ImageQuality.objects.filter(
            image_id__in=version.items.values("image_id"),
            image__project__memberships__user=user,
        )
    if image_ids is not None:
        rows = rows.filter(image_id__in=image_ids)
    return dict(rows.values_list("image_id", metric))


def image_clusters(*, user, run: ClusterRun) -> dict[int, int]:
    """Return image id -> the id of its cluster in the clustering run."""
    return dict(
        ClusterMember.objects.filter(
            cluster__run=run, cluster__run__version__dataset__project__memberships__user=user
        )
        .order_by("image_id")
        .values_list("image_id", "cluster_id")
    )
