"""Queries, always scoped to the projects the user is a member of.

Views, serializers and templates never build querysets of their own: they call these.
A lookup outside the user's projects raises ``NotFound``, exactly like a missing id.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

from django.db import connection
from django.db.models import Count, F, OuterRef, Q, QuerySet, Subquery

from .errors import ApplicationError, Forbidden, NotFound
from .models import (
    Dataset,
    DatasetVersion,
    Image,
    IngestFile,
    Job,
    Membership,
    Objective,
    ProblemStatement,
    Project,
)
from .pagination import Total
from .permissions import EXPORT_JOB_KINDS, GRANTS, OWN_LABEL_JOB_KINDS, Capability, role_remember

METADATA_FILTER_PREFIX = "meta."


def project_list(*, user) -> QuerySet[Project]:
    """Return the projects the user belongs to, with the user's role as ``my_role``."""
    if not user.is_authenticated:
        return Project.objects.none()
    return (
        Project.objects.filter(memberships__user=user)
        .annotate(my_role=F("memberships__role"))
        .order_by("name")
    )


def project_get(*, user, slug: str) -> Project:
    """Return the project with this slug if the user is a member; NotFound otherwise."""
    project = project_list(user=user).filter(slug=slug).first()
    if project is None:
        raise NotFound("Project not found.")
    role_remember(user, project, project.my_role)  # the permission checks that follow ask it
    return project


def member_list(*, user, project: Project) -> QuerySet[Membership]:
    return (
        Membership.objects.filter(project=project, project__memberships__user=user)
        .select_related("user")
        .order_by("user__username")
    )


def member_get(*, user, project: Project, membership_id: int) -> Membership:
    membership = member_list(user=user, project=project).filter(pk=membership_id).first()
    if membership is None:
        raise NotFound("Member not found.")
    return membership


# What a member has made or holds in a project, per stage app (``fn(user=, project=,
# member=) -> {name: count}``), registered from the app's AppConfig.ready().
MEMBER_WORK: list[Callable[..., dict[str, int]]] = []


def register_member_work(fn: Callable[..., dict[str, int]]) -> None:
    """Have ``member_work`` include what ``fn`` counts."""
    if fn not in MEMBER_WORK:
        MEMBER_WORK.append(fn)


def member_work(*, user, project: Project, member) -> dict[str, int]:
    """Count what the member has in the project across the stage apps.

    Each registered counter scopes to the user: a non-member gets NotFound.
    """
    work: dict[str, int] = {}
    for fn in MEMBER_WORK:
        work.update(fn(user=user, project=project, member=member))
    return work


def objective_list(*, user, project: Project) -> QuerySet[Objective]:
    return Objective.objects.filter(
        project=project, project__memberships__user=user
    ).select_related("owner")


def objective_get(*, user, project: Project, objective_id: int) -> Objective:
    objective = objective_list(user=user, project=project).filter(pk=objective_id).first()
    if objective is None:
        raise NotFound("Objective not found.")
    return objective


def problem_statement_get(*, user, project: Project) -> ProblemStatement | None:
    """Return the project's problem statement with approaches and criteria, or None if unset."""
    return (
        ProblemStatement.objects.filter(project=project, project__memberships__user=user)
        .prefetch_related("approaches", "criteria")
        .first()
    )


def dataset_list(*, user, project: Project) -> QuerySet[Dataset]:
    """Return the project's datasets with ``latest_version`` (a number, or None).

    The working set's size is the stored ``image_count``: counting members here would
    read every member row of every dataset on each page.
    """
    latest = DatasetVersion.objects.filter(dataset=OuterRef("pk")).order_by("-number")
    return (
        Dataset.objects.filter(project=project, project__memberships__user=user)
        .annotate(latest_version=Subquery(latest.values("number")[:1]))
        .order_by("name")
    )


def dataset_get(*, user, project: Project, dataset_id: int) -> Dataset:
    dataset = dataset_list(user=user, project=project).filter(pk=dataset_id).first()
    if dataset is None:
        raise NotFound("Dataset not found.")
    return dataset


def version_list(*, user, dataset: Dataset) -> QuerySet[DatasetVersion]:
    return DatasetVersion.objects.filter(
        dataset=dataset, dataset__project__memberships__user=user
    ).select_related("created_by")


def version_get(*, user, dataset: Dataset, number: int) -> DatasetVersion:
    version = version_list(user=user, dataset=dataset).filter(number=number).first()
    if version is None:
        raise NotFound("Dataset version not found.")
    return version


def metadata_filters_from_params(*, project: Project, params: Mapping[str, str]) -> dict[str, str]:
    """Pick ``meta.<field>=<value>`` pairs from query parameters, allowing only known fields."""
    filters = {}
    allowed = set(project.metadata_fields or [])
    for key, value in params.items():
        if not key.startswith(METADATA_FILTER_PREFIX) or value in ("", None):
            continue
        field = key[len(METADATA_FILTER_PREFIX) :]
        if field not in allowed:
            raise ApplicationError(
                f"Cannot filter on metadata field {field!r}.",
                details={"allowed": sorted(allowed)},
            )
        filters[field] = value
    return filters


def _metadata_equals(field: str, value) -> Q:
    # On PostgreSQL, containment (``@>``) is what the GIN index on metadata answers; for a
    # scalar value it matches exactly what key equality does. SQLite has no containment.
    if connection.vendor == "postgresql":
        return Q(metadata__contains={field: value})
    return Q(**{f"metadata__{field}": value})


def _metadata_q(field: str, value: str) -> Q:
    # Metadata set from CSV is text and from JSON may be a number or boolean: match either.
    q = _metadata_equals(field, value)
    for cast in (int, float):
        try:
            number = cast(value)
        except ValueError:
            continue
        # An integer no 64-bit column or JSON number holds matches nothing (and would not bind).
        if math.isfinite(number) and -(2**63) <= number < 2**63:
            q |= _metadata_equals(field, number)
    if value.lower() in ("true", "false"):
        q |= _metadata_equals(field, value.lower() == "true")
    return q


def image_list(
    *,
    user,
    project: Project,
    dataset: Dataset | None = None,
    version: DatasetVersion | None = None,
    split: str | None = None,
    metadata: Mapping[str, str] | None = None,
    quality: Mapping[str, float] | None = None,
    cluster_id: int | None = None,
) -> QuerySet[Image]:
    """Return images of a project, optionally within a dataset or version, filtered by
    metadata, quality-metric bounds (``quality__sharpness__lte``...) or a cluster."""
    qs = Image.objects.filter(project=project, project__memberships__user=user)
    if version is not None:
        items = version.items.filter(split=split) if split else version.items.all()
        qs = qs.filter(pk__in=items.values("image_id"))
    elif dataset is not None:
        qs = qs.filter(pk__in=dataset.members.values("image_id"))
    for field, value in (metadata or {}).items():
        qs = qs.filter(_metadata_q(field, value))
    if quality:
        per_version = {k: v for k, v in quality.items() if k.startswith("version_scores__")}
        if per_version:
            if version is None:
                raise ApplicationError(
                    "uniqueness and outlier_score filters need a dataset version."
                )
            # One filter() call, so the bounds and the version apply to the same score row.
            qs = qs.filter(version_scores__version=version, **per_version)
        qs = qs.filter(**{k: v for k, v in quality.items() if k not in per_version})
    if cluster_id is not None:
        qs = qs.filter(cluster_memberships__cluster_id=cluster_id)
    return qs.order_by("id")


def image_total(
    *, dataset: Dataset | None, version: DatasetVersion | None, filtered: bool
) -> Total | None:
    """Return how many images an unfiltered dataset or version holds, from the stored count.

    None when a filter narrows the set: the caller counts it (``capped_count``).
    """
    if filtered or dataset is None:
        return None
    return Total(version.image_count if version is not None else dataset.image_count)


def image_get(*, user, project: Project, image_id: int) -> Image:
    image = image_list(user=user, project=project).filter(pk=image_id).first()
    if image is None:
        raise NotFound("Image not found.")
    image.project = project  # the caller's object (and its role cache), not a second read
    return image


def image_get_any_project(*, user, image_id: int) -> Image:
    """Return an image from any of the user's projects (used by the authorised file view)."""
    image = Image.objects.filter(pk=image_id, project__memberships__user=user).first()
    if image is None:
        raise NotFound("Image not found.")
    return image


def _hidden_jobs(user) -> Q:
    """Match the jobs the user's role may not see (see ``permissions.EXPORT_JOB_KINDS``)."""
    blind = Membership.objects.filter(user=user).exclude(role__in=GRANTS[Capability.SEE_ALL_LABELS])
    in_blind_project = Q(project_id__in=blind.values("project_id"))
    others = Q(kind__in=OWN_LABEL_JOB_KINDS) & ~Q(created_by=user)
    return in_blind_project & (Q(kind__in=EXPORT_JOB_KINDS) | others)


def job_list(*, user, project: Project | None = None) -> QuerySet[Job]:
    """Return the jobs of the user's projects that the user's role may see, newest first.

    A member who may not see every label (an annotator) sees no export, and only the
    imports and pre-annotations they started: their results are made of labels.
    """
    if not user.is_authenticated:
        return Job.objects.none()
    qs = (
        Job.objects.filter(project__memberships__user=user)
        .exclude(_hidden_jobs(user))
        .select_related("project", "created_by")
    )
    if project is not None:
        qs = qs.filter(project=project)
    return qs.order_by("-created_at", "-id")


def job_get(*, user, job_id: int) -> Job:
    """Return a job the user may see; Forbidden for one their role may not, else NotFound."""
    job = job_list(user=user).filter(pk=job_id).first()
    if job is None:
        if Job.objects.filter(pk=job_id, project__memberships__user=user).exists():
            raise Forbidden(
                "Your role cannot see this job: its result holds labels (an export holds every "
                "label, honeypot answers included). Ask a reviewer or a lead."
            )
        raise NotFound("Job not found.")
    return job


def job_list_by_ids(*, user, ids: list[int]) -> dict[int, Job]:
    """Return the caller's jobs among ``ids`` (a chain's follow-ups), keyed by id."""
    return {job.pk: job for job in job_list(user=user).filter(pk__in=ids)} if ids else {}


def ingest_file_list(*, user, job: Job, outcome: str | None = None) -> QuerySet[IngestFile]:
    qs = IngestFile.objects.filter(job=job, job__project__memberships__user=user)
    if outcome:
        qs = qs.filter(outcome=outcome)
    return qs.order_by("position")


def ingest_summary(*, job: Job) -> dict[str, int]:
    """Return counts of per-file outcomes for a job the caller already holds."""
    counts = dict(
        IngestFile.objects.filter(job=job).values_list("outcome").annotate(n=Count("id")).order_by()
    )
    return {outcome: counts.get(outcome, 0) for outcome in IngestFile.Outcome.values}


def version_of_job(*, user, job: Job) -> DatasetVersion | None:
    """Return the dataset version a curation job worked on, if it names one the user may see."""
    version_id = (job.params or {}).get("version")
    if not version_id:
        return None
    return (
        DatasetVersion.objects.filter(pk=version_id, dataset__project__memberships__user=user)
        .select_related("dataset")
        .first()
    )


def project_version_list(*, user, project: Project) -> QuerySet[DatasetVersion]:
    """Return every version of every dataset of the project, with its dataset."""
    return DatasetVersion.objects.filter(
        dataset__project=project, dataset__project__memberships__user=user
    ).select_related("dataset")


# Quality filters on images: the pixel metrics (ImageQuality, computed by studio/ml/quality.py)
# and a version's scores, reached through the relations the curation models add to Image.
VERSION_SCORES = ("uniqueness", "outlier_score")
QUALITY_METRICS = (
    "brightness", "contrast", "sharpness", "colourfulness", "aspect_ratio", "megapixels",
    "uniqueness", "outlier_score",
)  # fmt: skip


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
