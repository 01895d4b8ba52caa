"""Label data: the project's label classes, annotations, their revisions and reviews."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from studio.models import Image, Project


class LabelClass(models.Model):
    """A class of the project's label schema."""

    class Kind(models.TextChoices):
        MASK = "mask", "Mask"
        POLYGON = "polygon", "Polygon"
        BOX = "box", "Box"
        TAG = "tag", "Tag"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="label_classes")
    name = models.CharField(max_length=100)
    colour = models.CharField(max_length=7, default="#3559e0", help_text="#rrggbb")
    kind = models.CharField(
        max_length=8, choices=Kind.choices, help_text="The geometry its annotations have."
    )
    attributes = models.JSONField(
        default=dict, blank=True, help_text='Allowed attribute values: {"occluded": ["yes", "no"]}.'
    )
    previous_names = models.JSONField(
        default=list, blank=True, help_text="Names it had before, oldest first."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="label_class_unique_name")
        ]

    def __str__(self) -> str:
        return self.name


class Annotation(models.Model):
    """One label on one image. ``version`` increases with every change (optimistic locking)."""

    class Source(models.TextChoices):
        HUMAN = "human", "Human"
        SAM = "sam", "Segment Anything"
        GRABCUT = "grabcut", "GrabCut"
        MODEL = "model", "Model"
        IMPORT = "import", "Import"

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        SUBMITTED = "submitted", "Submitted"
        ACCEPTED = "accepted", "Accepted"
        REJECTED = "rejected", "Rejected"

    image = models.ForeignKey(
        Image, on_delete=models.CASCADE, related_name="annotations", db_index=False
    )
    # RESTRICT, not PROTECT: a class in use cannot be deleted on its own, but deleting the
    # project (which cascades to both) must not fail on it.
    label_class = models.ForeignKey(
        LabelClass, on_delete=models.RESTRICT, related_name="annotations"
    )
    kind = models.CharField(max_length=8, choices=LabelClass.Kind.choices)
    geometry = models.JSONField(
        help_text="Canonical form: RLE for masks, vertices, or [x, y, w, h]."
    )
    area = models.FloatField()
    bbox = models.JSONField(help_text="[x, y, w, h], derived from the geometry.")
    attributes = models.JSONField(default=dict, blank=True)
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.HUMAN)
    source_detail = models.CharField(
        max_length=200, blank=True, help_text="e.g. the model version or SAM checkpoint."
    )
    confidence = models.FloatField(null=True, blank=True)
    is_crowd = models.BooleanField(
        default=False,
        help_text="A crowd region (COCO iscrowd=1): one shape over many objects, which "
        "evaluation treats as an ignore region rather than one instance.",
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    version = models.PositiveIntegerField(default=1)
    deleted = models.BooleanField(
        default=False, help_text="Deleted annotations keep their history and can be restored."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["image_id", "id"]
        # (image, status) serves lookups by image too, and the label_class foreign key has its
        # own index: fewer indexes to maintain on every write (imports write many rows).
        indexes = [
            models.Index(fields=["image", "status"]),
            # The review list: images with work waiting, in id order, without reading the
            # project's other annotations. Small, since reviewed work leaves it.
            models.Index(
                fields=["image"],
                condition=models.Q(status="submitted", deleted=False),
                name="annotation_waiting_review",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(confidence__isnull=True)
                | models.Q(confidence__gte=0, confidence__lte=1),
                name="annotation_confidence_range",
            )
        ]

    def __str__(self) -> str:
        return f"{self.label_class} on image {self.image_id}"


class AnnotationRevision(models.Model):
    """Every change to an annotation: who, when, and its state before and after."""

    annotation = models.ForeignKey(Annotation, on_delete=models.CASCADE, related_name="revisions")
    version = models.PositiveIntegerField(help_text="The annotation's version after this change.")
    action = models.CharField(max_length=10, help_text="create, update, delete or restore")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["annotation_id", "version", "id"]

    def __str__(self) -> str:
        return f"{self.action} v{self.version} of annotation {self.annotation_id}"


class ReviewDecision(models.Model):
    """A reviewer's accept or reject of an annotation, with the comment."""

    class Decision(models.TextChoices):
        ACCEPT = "accept", "Accept"
        REJECT = "reject", "Reject"

    annotation = models.ForeignKey(Annotation, on_delete=models.CASCADE, related_name="reviews")
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    decision = models.CharField(max_length=6, choices=Decision.choices)
    comment = models.TextField(blank=True)
    annotation_version = models.PositiveIntegerField(help_text="The version that was reviewed.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["annotation_id", "created_at", "id"]

    def __str__(self) -> str:
        return f"{self.decision} of annotation {self.annotation_id}"
