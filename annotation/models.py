"""Curation data: embeddings of images by a backbone, stored compactly in shards."""

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
        indexes = [models.Index(fields=["image", "status"])]
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
