"""Curation queries, scoped to the projects the user belongs to."""

from __future__ import annotations

from django.db.models import QuerySet

from annotation.models import EmbeddingSpace
from studio.errors import NotFound
from studio.models import Project


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
