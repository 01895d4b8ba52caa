"""Datasets, their immutable versions, and images stored once per content hash."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from .projects import Project


class Split(models.TextChoices):
    TRAIN = "train", "Train"
    VAL = "val", "Validation"
    TEST = "test", "Test"


class Image(models.Model):
    """One stored image; the same bytes uploaded twice to a project are one row."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="images")
    sha256 = models.CharField(max_length=64, help_text="Hex SHA-256 of the original bytes.")
    file = models.FileField(max_length=255, help_text="Original bytes, under a server-chosen name.")
    thumbnail = models.FileField(max_length=255, help_text="JPEG thumbnail.")
    original_name = models.CharField(
        max_length=255, help_text="File name as uploaded (display and metadata matching only)."
    )
    format = models.CharField(max_length=8, help_text="Decoded format: JPEG, PNG, WEBP, TIFF, BMP.")
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    byte_size = models.PositiveBigIntegerField()
    captured_at = models.DateTimeField(
        null=True, blank=True, help_text="EXIF DateTimeOriginal, when the file carries one."
    )
    metadata = models.JSONField(
        default=dict, blank=True, help_text="User metadata; its fields become evaluation slices."
    )
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "sha256"], name="image_unique_content")
        ]
        indexes = [models.Index(fields=["project", "original_name"])]
        ordering = ["id"]

    def __str__(self) -> str:
        return self.original_name


class Dataset(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="datasets")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    images = models.ManyToManyField(
        Image, through="DatasetImage", related_name="datasets", help_text="The working set."
    )
    image_count = models.PositiveIntegerField(
        default=0,
        help_text="How many images the working set holds; kept by the services that change it, "
        "so no page counts a million rows to show it.",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="dataset_unique_name")
        ]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class DatasetImage(models.Model):
    """An image in a dataset's working set (what the next version will snapshot)."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="members")
    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="+")
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["dataset", "image"], name="dataset_image_unique")
        ]


class DatasetVersion(models.Model):
    """An immutable snapshot: its manifest (image ids, hashes, splits) and that manifest's hash.

    Rows are written once by ``dataset_version_create``; editing a dataset makes a new one.
    """

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField(help_text="1, 2, 3… within the dataset.")
    manifest_hash = models.CharField(
        max_length=64, help_text="SHA-256 of the canonical manifest (sorted image hashes + splits)."
    )
    image_count = models.PositiveIntegerField()
    note = models.CharField(max_length=300, blank=True)
    source_job = models.OneToOneField(
        "studio.Job",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="created_version",
        help_text="The job that created this version, so a retried job never makes two.",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["dataset", "number"], name="version_unique_number")
        ]
        ordering = ["dataset_id", "-number"]

    def __str__(self) -> str:
        return f"{self.dataset} v{self.number}"


class DatasetVersionItem(models.Model):
    version = models.ForeignKey(DatasetVersion, on_delete=models.CASCADE, related_name="items")
    image = models.ForeignKey(
        Image,
        on_delete=models.RESTRICT,
        related_name="+",
        help_text="An image in a version cannot be deleted alone, only with its project.",
    )
    split = models.CharField(max_length=5, choices=Split.choices)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["version", "image"], name="version_item_unique")
        ]
        indexes = [models.Index(fields=["version", "split"])]
