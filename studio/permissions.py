"""What each project role may do, and which jobs each may see.

A user who is not a member of a project cannot learn that it exists: every lookup that
fails membership raises ``NotFound``. A member lacking a capability gets ``Forbidden``.
"""

from __future__ import annotations

from enum import StrEnum

from .errors import Forbidden, NotFound
from .models import Membership, Project, Role


class Capability(StrEnum):
    VIEW = "view"  # read everything in the project
    CONTRIBUTE = "contribute"  # datasets, uploads, metadata, versions, cancel jobs
    MANAGE = "manage"  # project settings, members, objectives, problem statement
    # Every label of the project, whoever made it: honeypot answers and every replica of a
    # consensus image. Exports hold exactly that, so this is also the right to export.
    SEE_ALL_LABELS = "see_all_labels"


GRANTS: dict[Capability, frozenset[str]] = {
    Capability.VIEW: frozenset(Role.values),
    Capability.CONTRIBUTE: frozenset({Role.LEAD, Role.REVIEWER}),
    Capability.MANAGE: frozenset({Role.LEAD}),
    Capability.SEE_ALL_LABELS: frozenset({Role.LEAD, Role.REVIEWER, Role.VIEWER}),
}

# Jobs whose result (or archive) is made of labels, and who else may see them. An export
# holds every label of a version: only members who may see all labels see one, whoever
# started it. An import's report and a pre-annotation's counts describe labels too: a
# member who may not see every label sees only the ones they started.
EXPORT_JOB_KINDS = frozenset({"export"})
OWN_LABEL_JOB_KINDS = frozenset({"import", "preannotate"})


def role_of(user, project: Project) -> str | None:
    """Return the user's role in the project, or None for a non-member."""
    if not user.is_authenticated:
        return None
    cached = getattr(project, "_role_cache", {})
    if user.pk not in cached:
        cached[user.pk] = (
            Membership.objects.filter(project=project, user=user)
            .values_list("role", flat=True)
            .first()
        )
        project._role_cache = cached
    return cached[user.pk]


def role_remember(user, project: Project, role: str | None) -> None:
    """Record the user's role in this project object, read along with it (``project_get``
    annotates it), so that ``role_of`` needs no query of its own for the request."""
    if user.is_authenticated:
        cached = getattr(project, "_role_cache", {})
        cached[user.pk] = role
        project._role_cache = cached


def can(user, project: Project, capability: Capability) -> bool:
    """Return whether the user's role in the project carries the capability."""
    role = role_of(user, project)
    return role is not None and role in GRANTS[capability]


def require(user, project: Project, capability: Capability) -> str:
    """Return the user's role, or raise NotFound (non-member) / Forbidden (lacking the grant)."""
    role = role_of(user, project)
    if role is None:
        raise NotFound("Project not found.")
    if role not in GRANTS[capability]:
        raise Forbidden(f"Your role ({role}) does not allow this; ask a project lead.")
    return role
