"""Curation data: embeddings of images by a backbone, stored compactly in shards; clusters,
quality metrics, duplicates, outliers, the 2-D map, and fine-tuned backbone checkpoints."""

from __future__ import annotations

from django.conf import settings
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


class ClusterRun(models.Model):
    """One clustering of a dataset version's embeddings; its clusters become slices."""

    class Method(models.TextChoices):
        KMEANS = "kmeans", "k-means"
        HDBSCAN = "hdbscan", "HDBSCAN (density)"

    version = models.ForeignKey(
        "studio.DatasetVersion", on_delete=models.CASCADE, related_name="cluster_runs"
    )
    space = models.ForeignKey(EmbeddingSpace, on_delete=models.CASCADE, related_name="cluster_runs")
    method = models.CharField(max_length=10, choices=Method.choices)
    k = models.PositiveIntegerField(
        null=True, blank=True, help_text="Clusters asked for (k-means)."
    )
    params = models.JSONField(default=dict, blank=True)
    job = models.OneToOneField(
        "studio.Job", on_delete=models.SET_NULL, null=True, blank=True, related_name="cluster_run"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.get_method_display()} on {self.version}"


class Cluster(models.Model):
    run = models.ForeignKey(ClusterRun, on_delete=models.CASCADE, related_name="clusters")
    label = models.IntegerField(help_text="Cluster number; -1 is HDBSCAN's unclustered bucket.")
    name = models.CharField(max_length=100, blank=True, help_text="A name people give it.")
    size = models.PositiveIntegerField()
    representatives = models.JSONField(
        default=list, help_text="Image ids nearest the centroid, best first."
    )

    class Meta:
        ordering = ["run_id", "label"]
        constraints = [
            models.UniqueConstraint(fields=["run", "label"], name="cluster_unique_label")
        ]

    def __str__(self) -> str:
        return self.display_name

    @property
    def display_name(self) -> str:
        if self.name:
            return self.name
        return "Unclustered" if self.label < 0 else f"Cluster {self.label + 1}"


class ClusterMember(models.Model):
    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="members")
    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="cluster_memberships")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["cluster", "image"], name="cluster_member_unique")
        ]


class ImageQuality(models.Model):
    """Per-image pixel metrics; each one is a filter and a (binned) evaluation slice."""

    image = models.OneToOneField(Image, on_delete=models.CASCADE, related_name="quality")
    brightness = models.FloatField(help_text="Mean luma, 0–255.")
    contrast = models.FloatField(help_text="Standard deviation of luma.")
    sharpness = models.FloatField(help_text="Variance of the Laplacian of luma (low = blurry).")
    colourfulness = models.FloatField(help_text="Hasler–Süsstrunk colourfulness.")
    aspect_ratio = models.FloatField(help_text="Width / height.")
    megapixels = models.FloatField()
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"quality of image {self.image_id}"


class DuplicateGroup(models.Model):
    """Images of a version whose embeddings are near-identical; one is kept, the rest dropped."""

    version = models.ForeignKey(
        "studio.DatasetVersion", on_delete=models.CASCADE, related_name="duplicate_groups"
    )
    space = models.ForeignKey(EmbeddingSpace, on_delete=models.CASCADE, related_name="+")
    threshold = models.FloatField(
        help_text="Cosine similarity at or above which images are grouped."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["version_id", "id"]

    def __str__(self) -> str:
        return f"duplicate group {self.pk} in {self.version}"


class DuplicateMember(models.Model):
    group = models.ForeignKey(DuplicateGroup, on_delete=models.CASCADE, related_name="members")
    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="+")
    keep = models.BooleanField(
        default=False, help_text="The copy that stays; the others may be dropped."
    )
    similarity = models.FloatField(help_text="Cosine similarity to the kept image.")
    chosen = models.BooleanField(
        default=False,
        help_text="A person chose this copy to keep; analysing again keeps it first.",
    )

    class Meta:
        ordering = ["group_id", "-keep", "-similarity"]
        constraints = [
            models.UniqueConstraint(fields=["group", "image"], name="duplicate_member_unique")
        ]


class EmbeddingMap(models.Model):
    """2-D coordinates of a version's images for the embedding map."""

    version = models.ForeignKey(
        "studio.DatasetVersion", on_delete=models.CASCADE, related_name="maps"
    )
    space = models.ForeignKey(EmbeddingSpace, on_delete=models.CASCADE, related_name="+")
    points = models.JSONField(help_text="[[image_id, x, y], ...]")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["version", "space"], name="map_unique")]

    def __str__(self) -> str:
        return f"map of {self.version}"


class BackboneCheckpoint(models.Model):
    """A user's weights for one of the backbone architectures, checked before it is stored."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="checkpoints")
    name = models.CharField(
        max_length=100, help_text="A name people recognise, e.g. 'ResNet-50 fine-tuned on parcels'."
    )
    architecture = models.CharField(
        max_length=40, help_text="One of the backbone names, e.g. resnet50."
    )
    file = models.FileField(max_length=255)
    sha256 = models.CharField(max_length=64)
    byte_size = models.PositiveBigIntegerField()
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["project", "sha256"], name="checkpoint_unique_content"),
            models.UniqueConstraint(fields=["project", "name"], name="checkpoint_unique_name"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.architecture})"


class VersionImageScore(models.Model):
    """Scores that depend on the other images of a version, so they belong to (version, image)."""

    version = models.ForeignKey(
        "studio.DatasetVersion", on_delete=models.CASCADE, related_name="image_scores"
    )
    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="version_scores")
    space = models.ForeignKey(EmbeddingSpace, on_delete=models.CASCADE, related_name="+")
    uniqueness = models.FloatField(help_text="1 − cosine similarity to the nearest other image.")
    outlier_score = models.FloatField(help_text="Mean cosine distance to the 5 nearest images.")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["version", "image"], name="version_score_unique")
        ]
        indexes = [models.Index(fields=["version", "-outlier_score"])]

    def __str__(self) -> str:
        return f"scores of image {self.image_id} in {self.version}"


class QualityHistograms(models.Model):
    """A version's quality metrics binned when it is analysed, for the Curate page's charts.

    Versions are immutable and analysis writes every row these count, so the bins stay
    true until the next analysis; drawing them from every image's row on each page view
    read a million rows per metric.
    """

    version = models.OneToOneField(
        "studio.DatasetVersion", on_delete=models.CASCADE, related_name="quality_histograms"
    )
    bins = models.JSONField(
        default=dict,
        help_text='{metric: {"start": x0, "width": w, "counts": [n, ...]}}; a metric no image '
        "of the version has is absent.",
    )
    computed_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"quality histograms of {self.version}"
