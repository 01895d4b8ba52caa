"""What each project role may do.

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


GRANTS: dict[Capability, frozenset[str]] = {
    Capability.VIEW: frozenset(Role.values),
    Capability.CONTRIBUTE: frozenset({Role.LEAD, Role.REVIEWER}),
    Capability.MANAGE: frozenset({Role.LEAD}),
}


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


def can(user, project: Project, capability: Capability) -> bool:
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
