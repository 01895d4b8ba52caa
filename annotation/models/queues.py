"""Queue data: annotation queues, their tasks (one image each, leased to one annotator),
honeypots, skips, submissions and consensus results."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from studio.models import Image, Project


class AnnotationQueue(models.Model):
    """Images sent to annotation from a curation selection (the annotation stage works them)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="annotation_queues")
    name = models.CharField(max_length=200)
    version = models.ForeignKey(
        "studio.DatasetVersion", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    instructions = models.TextField(blank=True)
    assignees = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="annotation_queues",
        help_text="Who may take tasks; empty means every annotator of the project.",
    )  # fmt: skip
    lease_minutes = models.PositiveIntegerField(
        default=30, help_text="How long a task stays with an annotator before others may take it."
    )
    annotators_per_image = models.PositiveSmallIntegerField(
        default=1,
        help_text="Consensus: how many different annotators label each image (1 to 10).",
    )
    label_classes = models.ManyToManyField(
        "LabelClass", blank=True, related_name="queues",
        help_text="The classes its tasks offer and accept; empty means every class of the project.",
    )  # fmt: skip
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(annotators_per_image__gte=1, annotators_per_image__lte=10),
                name="queue_annotators_per_image_range",
            )
        ]

    def __str__(self) -> str:
        return self.name


class Honeypot(models.Model):
    """An image with a known answer, mixed into a queue to score each annotator once."""

    queue = models.ForeignKey(AnnotationQueue, on_delete=models.CASCADE, related_name="honeypots")
    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="+")
    gold = models.JSONField(
        help_text="The accepted annotations when it was marked: [{label_class, kind, geometry}]."
    )
    position = models.PositiveIntegerField(
        help_text="Handed out once the queue's next free task reaches this position."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["queue_id", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["queue", "image"], name="honeypot_unique_image")
        ]

    def __str__(self) -> str:
        return f"honeypot image {self.image_id} in {self.queue}"


class QueueItem(models.Model):
    """One image of a queue: handed to one annotator at a time under a lease."""

    class Status(models.TextChoices):
        TODO = "todo", "To do"
        IN_PROGRESS = "in_progress", "In progress"
        SUBMITTED = "submitted", "Submitted"
        DONE = "done", "Done"

    queue = models.ForeignKey(AnnotationQueue, on_delete=models.CASCADE, related_name="items")
    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="+")
    position = models.PositiveIntegerField()
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.TODO)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    returned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        help_text="Rejected work goes back to its author: only they may take it next.",
    )  # fmt: skip
    replica = models.PositiveSmallIntegerField(
        default=0, help_text="Which of the queue's annotators_per_image copies of the image."
    )
    honeypot = models.ForeignKey(
        Honeypot, on_delete=models.CASCADE, null=True, blank=True, related_name="items",
        help_text="Set on a honeypot task: made for one annotator (its assignee) and never passed on.",
    )  # fmt: skip
    leased_at = models.DateTimeField(
        null=True, blank=True, help_text="When the current assignee took it."
    )

    class Meta:
        ordering = ["queue_id", "position", "replica", "id"]
        indexes = [
            models.Index(fields=["queue", "status", "position"]),
            # "Next task" walks the open regular items in queue order and stops at the first
            # free one, instead of sorting every free item; done work leaves the index.
            models.Index(
                fields=["queue", "position", "replica", "id"],
                condition=models.Q(honeypot__isnull=True, status__in=["todo", "in_progress"]),
                name="queue_item_open_order",
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["queue", "image", "replica"],
                condition=models.Q(honeypot__isnull=True),
                name="queue_item_unique_replica",
            ),
            models.UniqueConstraint(
                fields=["honeypot", "assignee"],
                condition=models.Q(honeypot__isnull=False),
                name="queue_item_honeypot_once",
            ),
        ]


class TaskSkip(models.Model):
    """An annotator passed a task on without submitting it: the queue offers it to others first."""

    queue = models.ForeignKey(AnnotationQueue, on_delete=models.CASCADE, related_name="skips")
    item = models.ForeignKey(QueueItem, on_delete=models.CASCADE, related_name="skips")
    image = models.ForeignKey(
        Image, on_delete=models.CASCADE, related_name="+", help_text="The item's image (kept for lookups)."
    )  # fmt: skip
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["queue_id", "created_at", "id"]
        indexes = [models.Index(fields=["queue", "annotator"])]

    def __str__(self) -> str:
        return f"skip of task {self.item_id} by user {self.annotator_id}"


class TaskSubmission(models.Model):
    """One submission of a task: the log behind throughput and honeypot accuracy."""

    queue = models.ForeignKey(AnnotationQueue, on_delete=models.CASCADE, related_name="submissions")
    item = models.ForeignKey(QueueItem, on_delete=models.CASCADE, related_name="submissions")
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    leased_at = models.DateTimeField(null=True, blank=True)
    submitted_at = models.DateTimeField()
    honeypot_score = models.FloatField(
        null=True, blank=True, help_text="Honeypot tasks: mean per-class mask IoU against the gold."
    )

    class Meta:
        ordering = ["queue_id", "submitted_at", "id"]
        indexes = [models.Index(fields=["queue", "annotator"])]

    def __str__(self) -> str:
        return f"submission of task {self.item_id}"


class ConsensusResult(models.Model):
    """Agreement between the annotators of one image of a consensus queue, and its merge."""

    queue = models.ForeignKey(AnnotationQueue, on_delete=models.CASCADE, related_name="consensus")
    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="+")
    annotators = models.JSONField(help_text="User ids of the annotators compared.")
    agreement = models.FloatField(
        null=True, blank=True,
        help_text="Mean over classes of the mean pairwise mask IoU; null when nobody labelled anything.",
    )  # fmt: skip
    per_class = models.JSONField(default=dict, help_text="{label class id: mean pairwise IoU}.")
    per_annotator = models.JSONField(
        default=dict, help_text="{user id: mean IoU of their masks with each other annotator's}."
    )
    computed_at = models.DateTimeField(auto_now=True)
    merged_at = models.DateTimeField(null=True, blank=True)
    merged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["queue_id", "image_id"]
        constraints = [
            models.UniqueConstraint(fields=["queue", "image"], name="consensus_unique_image")
        ]

    def __str__(self) -> str:
        return f"consensus on image {self.image_id} in {self.queue}"
