"""Curation data: embeddings of images by a backbone, stored compactly in shards."""

from __future__ import annotations

from django.db import models

from studio.models import Image, Project


class EmbeddingSpace(models.Model):
    """All embeddings of one project's images by one backbone with one set of weights."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="embedding_spaces")
    backbone = models.CharField(max_length=40, help_text="Backbone name, e.g. efficientnet_lite0.")
    weights = models.CharField(
        max_length=64, help_text="SHA-256 of the weights file the vectors were computed with."
    )
    dim = models.PositiveIntegerField(help_text="Vector length.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "backbone", "weights"], name="space_unique")
        ]
        ordering = ["project_id", "backbone"]

    def __str__(self) -> str:
        return f"{self.backbone} ({self.weights[:8]}) in {self.project}"


class EmbeddingShard(models.Model):
    """One float32 matrix file [count, dim] on the storage backend."""

    space = models.ForeignKey(EmbeddingSpace, on_delete=models.CASCADE, related_name="shards")
    file = models.FileField(max_length=255, help_text=".npy file of float32 vectors.")
    count = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.file.name


class ImageEmbedding(models.Model):
    """Where an image's vector lives: one row per image and space, never per number."""

    space = models.ForeignKey(EmbeddingSpace, on_delete=models.CASCADE, related_name="vectors")
    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="embeddings")
    shard = models.ForeignKey(EmbeddingShard, on_delete=models.CASCADE, related_name="rows")
    row = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["space", "image"], name="image_embedding_unique")
        ]
        indexes = [models.Index(fields=["shard", "row"])]

    def __str__(self) -> str:
        return f"image {self.image_id} in {self.space}"
