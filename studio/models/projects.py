"""Projects, memberships, business objectives and the ML problem statement."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class Role(models.TextChoices):
    LEAD = "lead", "Lead"
    REVIEWER = "reviewer", "Reviewer"
    ANNOTATOR = "annotator", "Annotator"
    VIEWER = "viewer", "Viewer"


class Project(models.Model):
    name = models.CharField(max_length=200, help_text="Human-readable project name.")
    slug = models.SlugField(
        max_length=80, unique=True, help_text="URL identifier, unique across Studio."
    )
    business_problem = models.TextField(
        blank=True, help_text="The business problem this project exists to solve, in plain words."
    )
    metadata_fields = models.JSONField(
        default=list,
        blank=True,
        help_text="Image metadata keys users may filter and slice on (the filter allowlist).",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="Membership", related_name="projects"
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=16, choices=Role.choices, help_text="What the user may do.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "user"], name="membership_unique_user"),
            models.CheckConstraint(
                condition=Q(role__in=[r.value for r in Role]), name="membership_role_valid"
            ),
        ]
        ordering = ["project_id", "user__username"]

    def __str__(self) -> str:
        return f"{self.user} in {self.project} as {self.role}"


class Objective(models.Model):
    class Direction(models.TextChoices):
        HIGHER = "higher", "Higher is better"
        LOWER = "lower", "Lower is better"

    class Status(models.TextChoices):
        ON_TRACK = "on_track", "On track"
        AT_RISK = "at_risk", "At risk"
        MET = "met", "Met"
        MISSED = "missed", "Missed"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="objectives")
    title = models.CharField(max_length=200, help_text="The business goal in one line.")
    kpi = models.CharField(max_length=200, help_text="The key performance indicator measured.")
    target_value = models.FloatField(help_text="The KPI value that counts as success.")
    unit = models.CharField(max_length=40, blank=True, help_text="Unit of the KPI, e.g. % or ms.")
    direction = models.CharField(max_length=8, choices=Direction.choices, default=Direction.HIGHER)
    deadline = models.DateField(null=True, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="Project member accountable for the objective.",
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ON_TRACK)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["deadline", "id"]
        indexes = [models.Index(fields=["project", "status"])]

    def __str__(self) -> str:
        return self.title


class TaskType(models.TextChoices):
    CLASSIFICATION = "classification", "Classification"
    DETECTION = "detection", "Object detection"
    INSTANCE_SEGMENTATION = "instance_segmentation", "Instance segmentation"
    SEMANTIC_SEGMENTATION = "semantic_segmentation", "Semantic segmentation"


class ProblemStatement(models.Model):
    class ServingMode(models.TextChoices):
        REALTIME = "realtime", "Real-time"
        BATCH = "batch", "Batch"

    project = models.OneToOneField(
        Project, on_delete=models.CASCADE, related_name="problem_statement"
    )
    task_type = models.CharField(max_length=32, choices=TaskType.choices)
    description = models.TextField(blank=True, help_text="The ML problem in words.")
    serving_mode = models.CharField(
        max_length=10, choices=ServingMode.choices, default=ServingMode.REALTIME
    )
    latency_budget_ms = models.PositiveIntegerField(
        null=True, blank=True, help_text="Maximum acceptable prediction latency."
    )
    model_size_budget_mb = models.PositiveIntegerField(
        null=True, blank=True, help_text="Maximum acceptable model size."
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.project}: {self.get_task_type_display()}"


class Approach(models.Model):
    class Status(models.TextChoices):
        PROPOSED = "proposed", "Proposed"
        CHOSEN = "chosen", "Chosen"
        REJECTED = "rejected", "Rejected"

    problem = models.ForeignKey(
        ProblemStatement, on_delete=models.CASCADE, related_name="approaches"
    )
    name = models.CharField(max_length=200)
    notes = models.TextField(blank=True)
    priority = models.PositiveSmallIntegerField(default=1, help_text="1 is the highest priority.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PROPOSED)

    class Meta:
        ordering = ["priority", "id"]

    def __str__(self) -> str:
        return self.name


class SuccessCriterion(models.Model):
    """One threshold a model must meet: later issues gate promotion on these rows."""

    class Comparison(models.TextChoices):
        GTE = "gte", "≥"
        GT = "gt", ">"
        LTE = "lte", "≤"
        LT = "lt", "<"

    problem = models.ForeignKey(ProblemStatement, on_delete=models.CASCADE, related_name="criteria")
    metric = models.CharField(max_length=64, help_text="Metric name, e.g. mAP50, mIoU, accuracy.")
    threshold = models.FloatField()
    comparison = models.CharField(max_length=4, choices=Comparison.choices, default=Comparison.GTE)
    slice = models.CharField(
        max_length=200,
        blank=True,
        help_text="Optional data slice as field=value (e.g. lighting=dark); empty means all data.",
    )

    class Meta:
        ordering = ["metric", "slice", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["problem", "metric", "slice", "comparison"], name="criterion_unique"
            )
        ]

    def __str__(self) -> str:
        where = f" on {self.slice}" if self.slice else ""
        return f"{self.metric} {self.get_comparison_display()} {self.threshold:g}{where}"

    def is_met(self, value: float) -> bool:
        """Return whether a measured value satisfies this criterion."""
        return {
            "gte": value >= self.threshold,
            "gt": value > self.threshold,
            "lte": value <= self.threshold,
            "lt": value < self.threshold,
        }[self.comparison]
