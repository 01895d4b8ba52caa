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
    ANNOTATE = "annotate"  # make and change annotations, take queue tasks, import
    REVIEW = "review"  # accept or reject work, merge consensus, see honeypots and who did what


GRANTS: dict[Capability, frozenset[str]] = {
    Capability.VIEW: frozenset(Role.values),
    Capability.CONTRIBUTE: frozenset({Role.LEAD, Role.REVIEWER}),
    Capability.MANAGE: frozenset({Role.LEAD}),
    Capability.SEE_ALL_LABELS: frozenset({Role.LEAD, Role.REVIEWER, Role.VIEWER}),
    Capability.ANNOTATE: frozenset({Role.LEAD, Role.REVIEWER, Role.ANNOTATOR}),
    Capability.REVIEW: frozenset({Role.LEAD, Role.REVIEWER}),
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


def role_can(role: str | None, capability: Capability) -> bool:
    """Return whether a role (None: not a member) carries the capability."""
    return role is not None and role in GRANTS[capability]


def can(user, project: Project, capability: Capability) -> bool:
    """Return whether the user's role in the project carries the capability."""
    return role_can(role_of(user, project), capability)


def require(user, project: Project, capability: Capability, refusal: str | None = None) -> str:
    """Return the user's role, or raise NotFound (non-member) / Forbidden (lacking the grant).

    ``refusal`` is the Forbidden message when the action has a better one to give than
    the generic "your role does not allow this".
    """
    role = role_of(user, project)
    if role is None:
        raise NotFound("Project not found.")
    if role not in GRANTS[capability]:
        raise Forbidden(refusal or f"Your role ({role}) does not allow this; ask a project lead.")
    return role
