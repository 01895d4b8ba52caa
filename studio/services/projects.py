"""Projects, members, objectives and the problem statement."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils.text import slugify

from studio.errors import (
    ApplicationError,
    ConfirmationRequired,
    Conflict,
    Forbidden,
    NotFound,
    validate_model,
)
from studio.models import (
    Approach,
    Dataset,
    DatasetVersion,
    Image,
    Job,
    Membership,
    Objective,
    ProblemStatement,
    Project,
    Role,
    SuccessCriterion,
)
from studio.permissions import Capability, require
from studio.storage import storage_delete_tree

OBJECTIVE_FIELDS = (
    "title",
    "kpi",
    "target_value",
    "unit",
    "direction",
    "deadline",
    "owner",
    "status",
)


def _unique_slug(name: str, requested: str | None) -> str:
    base = slugify(requested or name)[:70] or "project"
    if requested:
        if Project.objects.filter(slug=base).exists():
            raise Conflict(f"The URL name {base!r} is taken; choose another.")
        return base
    slug, n = base, 2
    while Project.objects.filter(slug=slug).exists():
        slug, n = f"{base}-{n}", n + 1
    return slug


@transaction.atomic
def project_create(
    *, owner, name: str, business_problem: str = "", slug: str | None = None
) -> Project:
    """Create a project with the owner as its lead."""
    name = (name or "").strip()
    if not name:
        raise ApplicationError("A project needs a name.")
    try:
        with transaction.atomic():
            project = Project.objects.create(
                name=name,
                slug=_unique_slug(name, slug),
                business_problem=business_problem or "",
                created_by=owner,
            )
    except IntegrityError:  # another request took the slug between the check and the insert
        raise Conflict("That project URL name was just taken; try again or choose another.")
    Membership.objects.create(project=project, user=owner, role=Role.LEAD)
    return project


@transaction.atomic
def project_update(
    *, actor, project: Project, name: str | None = None, business_problem: str | None = None
) -> Project:
    require(actor, project, Capability.MANAGE)
    if name is not None:
        if not name.strip():
            raise ApplicationError("A project needs a name.")
        project.name = name.strip()
    if business_problem is not None:
        project.business_problem = business_problem
    project.save()
    return project


@dataclass(frozen=True)
class ProjectRows:
    """What a stage app keeps in a project, registered from its AppConfig.ready().

    ``count(project)`` names and counts its rows for the delete confirmation;
    ``delete_first(project)``, if given, deletes rows that would otherwise protect others
    from the project's cascade.
    """

    count: Callable[[Project], dict[str, int]]
    delete_first: Callable[[Project], None] | None = None


# The stage apps' rows (the core never imports those apps), in registration order.
PROJECT_ROWS: list[ProjectRows] = []


def register_project_rows(rows: ProjectRows) -> None:
    """Count the app's rows in ``project_contents`` and run its ``delete_first`` on delete."""
    if rows not in PROJECT_ROWS:
        PROJECT_ROWS.append(rows)


@transaction.atomic
def project_contents(*, project: Project) -> dict[str, int]:
    """Count what deleting the project would remove (annotations deleted softly included)."""
    counts = {
        "datasets": Dataset.objects.filter(project=project).count(),
        "versions": DatasetVersion.objects.filter(dataset__project=project).count(),
        "images": Image.objects.filter(project=project).count(),
    }
    for rows in PROJECT_ROWS:
        counts.update(rows.count(project))
    counts["jobs"] = Job.objects.filter(project=project).count()
    return counts


@transaction.atomic
def project_delete(*, actor, project: Project, confirm: str | None = None) -> dict[str, int]:
    """Delete the project with everything in it, then its stored files once that commits.

    Nothing is lost by surprise: unless ``confirm`` is the project's slug, nothing is
    deleted and ``ConfirmationRequired`` says in numbers what would be. Returns the counts
    of what was deleted.
    """
    require(actor, project, Capability.MANAGE)
    counts = project_contents(project=project)
    if confirm != project.slug:
        held = ", ".join(f"{n:,} {name.replace('_', ' ')}" for name, n in counts.items() if n)
        raise ConfirmationRequired(
            f"Deleting project {project.name!r} removes {held or 'its settings'}, for good. "
            f"Send the DELETE again with ?confirm={project.slug} to go ahead.",
            details={"counts": counts, "confirm": project.slug},
        )
    for rows in PROJECT_ROWS:
        if rows.delete_first is not None:
            rows.delete_first(project)
    folder = f"projects/{project.pk}"
    project.delete()
    transaction.on_commit(lambda: storage_delete_tree(folder))
    return counts


def _lead_count(project: Project) -> int:
    return Membership.objects.filter(project=project, role=Role.LEAD).count()


@transaction.atomic
def member_add(*, actor, project: Project, username: str, role: str = Role.VIEWER) -> Membership:
    """Add an existing user to the project. Only a lead may; the user must exist.

    Without a role the member is a viewer, the least privileged role.
    """
    require(actor, project, Capability.MANAGE)
    if role not in Role.values:
        raise ApplicationError(f"Unknown role {role!r}; choose one of {', '.join(Role.values)}.")
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise NotFound(f"No user named {username!r}.")
    try:
        with transaction.atomic():
            return Membership.objects.create(project=project, user=user, role=role)
    except IntegrityError:
        raise Conflict(f"{username} is already a member of this project.")


def _lock_project(project: Project) -> None:
    """Serialise membership changes of one project (two leads demoting each other at once)."""
    Project.objects.select_for_update().filter(pk=project.pk).first()


@transaction.atomic
def member_update_role(*, actor, membership: Membership, role: str) -> Membership:
    """Change a member's role. Nobody changes their own role; a project keeps one lead."""
    _lock_project(membership.project)
    require(actor, membership.project, Capability.MANAGE)
    if membership.user_id == actor.pk:
        raise Forbidden("You cannot change your own role; ask another lead.")
    if role not in Role.values:
        raise ApplicationError(f"Unknown role {role!r}; choose one of {', '.join(Role.values)}.")
    if membership.role == Role.LEAD and role != Role.LEAD and _lead_count(membership.project) <= 1:
        raise ApplicationError("A project must keep at least one lead.")
    membership.role = role
    membership.save(update_fields=["role"])
    return membership


@transaction.atomic
def member_remove(*, actor, membership: Membership) -> None:
    _lock_project(membership.project)
    require(actor, membership.project, Capability.MANAGE)
    if membership.user_id == actor.pk:
        raise Forbidden("You cannot remove yourself; ask another lead.")
    if membership.role == Role.LEAD and _lead_count(membership.project) <= 1:
        raise ApplicationError("A project must keep at least one lead.")
    membership.delete()


def _check_owner(project: Project, owner) -> None:
    if owner is not None and not Membership.objects.filter(project=project, user=owner).exists():
        raise ApplicationError("The objective's owner must be a member of the project.")


@transaction.atomic
def objective_create(*, actor, project: Project, **fields: Any) -> Objective:
    require(actor, project, Capability.MANAGE)
    unknown = set(fields) - set(OBJECTIVE_FIELDS)
    if unknown:
        raise ApplicationError(f"Unknown objective fields: {', '.join(sorted(unknown))}.")
    _check_owner(project, fields.get("owner"))
    return Objective.objects.create(project=project, **fields)


@transaction.atomic
def objective_update(*, actor, objective: Objective, **fields: Any) -> Objective:
    require(actor, objective.project, Capability.MANAGE)
    unknown = set(fields) - set(OBJECTIVE_FIELDS)
    if unknown:
        raise ApplicationError(f"Unknown objective fields: {', '.join(sorted(unknown))}.")
    if "owner" in fields:
        _check_owner(objective.project, fields["owner"])
    for key, value in fields.items():
        setattr(objective, key, value)
    objective.save()
    return objective


@transaction.atomic
def objective_delete(*, actor, objective: Objective) -> None:
    require(actor, objective.project, Capability.MANAGE)
    objective.delete()


@transaction.atomic
def problem_statement_set(
    *,
    actor,
    project: Project,
    task_type: str,
    description: str = "",
    serving_mode: str = ProblemStatement.ServingMode.REALTIME,
    latency_budget_ms: int | None = None,
    model_size_budget_mb: int | None = None,
    approaches: Iterable[Mapping[str, Any]] | None = None,
    criteria: Iterable[Mapping[str, Any]] | None = None,
) -> ProblemStatement:
    """Create or replace the project's problem statement.

    ``approaches`` and ``criteria``, when given, replace the existing rows as a whole;
    when None, the existing rows are kept.
    """
    require(actor, project, Capability.MANAGE)
    problem, _ = ProblemStatement.objects.update_or_create(
        project=project,
        defaults={
            "task_type": task_type,
            "description": description,
            "serving_mode": serving_mode,
            "latency_budget_ms": latency_budget_ms,
            "model_size_budget_mb": model_size_budget_mb,
        },
    )
    validate_model(problem, exclude=["project"])
    if approaches is not None:
        problem.approaches.all().delete()
        for row in approaches:
            approach = Approach(problem=problem, **row)
            validate_model(approach)
            approach.save()
    if criteria is not None:
        problem.criteria.all().delete()
        seen = set()
        for row in criteria:
            criterion = SuccessCriterion(problem=problem, **row)
            validate_model(criterion, validate_unique=False, validate_constraints=False)
            key = (criterion.metric, criterion.slice, criterion.comparison)
            if key in seen:
                raise ApplicationError(
                    f"Criterion {criterion} is listed twice; keep one per metric, slice and comparison."
                )
            seen.add(key)
            if criterion.slice and "=" not in criterion.slice:
                raise ApplicationError(
                    f"Slice {criterion.slice!r} must read field=value, e.g. lighting=dark."
                )
            criterion.save()
    return problem


@transaction.atomic
def criterion_add(
    *,
    actor,
    project: Project,
    metric: str,
    threshold: float,
    comparison: str = "gte",
    slice: str = "",
) -> SuccessCriterion:  # noqa: A002
    require(actor, project, Capability.MANAGE)
    problem = ProblemStatement.objects.filter(project=project).first()
    if problem is None:
        raise ApplicationError(
            "Set the problem statement (task type) before adding success criteria."
        )
    if slice and "=" not in slice:
        raise ApplicationError(f"Slice {slice!r} must read field=value, e.g. lighting=dark.")
    criterion = SuccessCriterion(
        problem=problem,
        metric=metric.strip(),
        threshold=threshold,
        comparison=comparison,
        slice=slice.strip(),
    )
    validate_model(criterion, validate_constraints=False, validate_unique=False)
    if SuccessCriterion.objects.filter(
        problem=problem, metric=criterion.metric, slice=criterion.slice, comparison=comparison
    ).exists():
        raise Conflict(f"There is already a criterion {criterion}.")
    criterion.save()
    return criterion


@transaction.atomic
def criterion_delete(*, actor, criterion: SuccessCriterion) -> None:
    require(actor, criterion.problem.project, Capability.MANAGE)
    criterion.delete()
