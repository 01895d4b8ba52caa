"""Jobs: every long action is a row here plus a Celery task that runs its service."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from .datasets import Image
from .projects import Project


class Job(models.Model):
    class Kind(models.TextChoices):
        INGEST = "ingest", "Ingest upload"
        EMBED = "embed", "Embed images"
        CLUSTER = "cluster", "Cluster images"
        ANALYZE = "analyze", "Quality, duplicates and outliers"
        PREANNOTATE = "preannotate", "Pre-annotate images"
        EXPORT = "export", "Export annotations"
        IMPORT = "import", "Import annotations"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    ACTIVE = (Status.QUEUED, Status.RUNNING)
    FINISHED = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="jobs")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0, help_text="0–100.")
    message = models.CharField(max_length=300, blank=True, help_text="What the job is doing now.")
    error = models.TextField(
        blank=True, help_text="Why the job failed, in words a user can act on."
    )
    params = models.JSONField(default=dict, blank=True, help_text="The job's inputs (ids, paths).")
    result = models.JSONField(default=dict, blank=True, help_text="Summary once finished.")
    checkpoint = models.JSONField(
        default=dict, blank=True, help_text="Where a redelivered job resumes from."
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    max_attempts = models.PositiveSmallIntegerField(default=3)
    cancel_requested = models.BooleanField(default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(
        null=True, blank=True, help_text="Last sign of life from the worker running it."
    )
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["project", "-created_at"]),
            models.Index(fields=["status", "heartbeat_at"]),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(progress__lte=100), name="job_progress_max")
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE


class IngestFile(models.Model):
    """The per-file outcome of an ingest job; written once per position, so resumes repeat nothing."""

    class Outcome(models.TextChoices):
        ACCEPTED = "accepted", "Accepted"
        DUPLICATE = "duplicate", "Duplicate"
        REJECTED = "rejected", "Rejected"

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="files")
    position = models.PositiveIntegerField(help_text="Order of the file within the upload.")
    name = models.CharField(
        max_length=500, help_text="Name as uploaded or path inside the archive."
    )
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    reason = models.CharField(max_length=300, blank=True)
    image = models.ForeignKey(
        Image, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["job_id", "position"]
        constraints = [
            models.UniqueConstraint(fields=["job", "position"], name="ingest_file_unique_position")
        ]
        indexes = [models.Index(fields=["job", "outcome"])]
