"""Input and output serializers of the REST API; they validate and shape, never query."""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from studio.converters import MAX_ID
from studio.models import (
    Approach,
    Dataset,
    DatasetVersion,
    Image,
    IngestFile,
    Job,
    Membership,
    Objective,
    ProblemStatement,
    Project,
    Role,
    SuccessCriterion,
)


class IdField(serializers.IntegerField):
    """A database id or version number: 1 to 2**63 - 1, what a 64-bit column holds.

    A larger number cannot name a row; refused here, it never reaches the database.
    """

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(**kwargs)


class UserSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    username = serializers.CharField(read_only=True)


class ProjectSerializer(serializers.ModelSerializer):
    my_role = serializers.CharField(read_only=True, help_text="The caller's role in the project.")

    class Meta:
        model = Project
        fields = [
            "id",
            "slug",
            "name",
            "business_problem",
            "metadata_fields",
            "my_role",
            "created_at",
        ]
        read_only_fields = ["id", "slug", "metadata_fields", "created_at"]


class ProjectCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    slug = serializers.SlugField(max_length=70, required=False)
    business_problem = serializers.CharField(required=False, allow_blank=True, default="")


class ProjectUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False)
    business_problem = serializers.CharField(required=False, allow_blank=True)


class MembershipSerializer(serializers.ModelSerializer):
    user = UserSerializer(read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "user", "role", "created_at"]


class MemberAddSerializer(serializers.Serializer):
    username = serializers.CharField()
    role = serializers.ChoiceField(
        choices=Role.choices,
        default=Role.VIEWER,
        help_text="Viewer when omitted: the least privileged role.",
    )


class MemberRoleSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=Role.choices)


class ObjectiveSerializer(serializers.ModelSerializer):
    # A plain id: resolved among the project's members by the view, so an unknown user and
    # a non-member get the same answer and ids of other users cannot be probed.
    owner = IdField(
        source="owner_id", allow_null=True, required=False, help_text="User id of a project member."
    )

    class Meta:
        model = Objective
        fields = [
            "id",
            "title",
            "kpi",
            "target_value",
            "unit",
            "direction",
            "deadline",
            "owner",
            "status",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]


class ApproachSerializer(serializers.ModelSerializer):
    class Meta:
        model = Approach
        fields = ["name", "notes", "priority", "status"]


class CriterionSerializer(serializers.ModelSerializer):
    class Meta:
        model = SuccessCriterion
        fields = ["metric", "threshold", "comparison", "slice"]
        validators = []  # uniqueness is checked by the service across the whole list


class ProblemStatementSerializer(serializers.ModelSerializer):
    approaches = ApproachSerializer(many=True, required=False)
    criteria = CriterionSerializer(many=True, required=False)

    class Meta:
        model = ProblemStatement
        fields = [
            "task_type",
            "description",
            "serving_mode",
            "latency_budget_ms",
            "model_size_budget_mb",
            "approaches",
            "criteria",
            "updated_at",
        ]
        read_only_fields = ["updated_at"]


class DatasetSerializer(serializers.ModelSerializer):
    image_count = serializers.IntegerField(
        read_only=True, help_text="How many images the working set holds."
    )
    latest_version = serializers.SerializerMethodField()

    class Meta:
        model = Dataset
        fields = ["id", "name", "description", "image_count", "latest_version", "created_at"]
        read_only_fields = ["id", "created_at"]

    def get_latest_version(self, obj: Dataset) -> int | None:
        return getattr(obj, "latest_version", None)


class DatasetVersionSerializer(serializers.ModelSerializer):
    class Meta:
        model = DatasetVersion
        fields = ["number", "manifest_hash", "image_count", "note", "source_job", "created_at"]


class ManifestEntrySerializer(serializers.Serializer):
    image = serializers.IntegerField()
    sha256 = serializers.CharField()
    split = serializers.ChoiceField(choices=["train", "val", "test"])


class VersionManifestSerializer(DatasetVersionSerializer):
    manifest = ManifestEntrySerializer(many=True)

    class Meta(DatasetVersionSerializer.Meta):
        fields = [*DatasetVersionSerializer.Meta.fields, "manifest"]


class VersionCreateSerializer(serializers.Serializer):
    note = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")


class ConfirmSerializer(serializers.Serializer):
    """The confirmation every action that may leave images out of the next version takes."""

    confirm = serializers.BooleanField(
        default=False, help_text="Without it nothing changes: the answer is a preview."
    )
    expect = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=64,
        help_text="The preview's expect: refuse (409) if the result would differ from it.",
    )  # fmt: skip


class QualitySerializer(serializers.Serializer):
    brightness = serializers.FloatField()
    contrast = serializers.FloatField()
    sharpness = serializers.FloatField()
    colourfulness = serializers.FloatField()
    aspect_ratio = serializers.FloatField()
    megapixels = serializers.FloatField()


class ImageSerializer(serializers.ModelSerializer):
    quality = serializers.SerializerMethodField()
    file_url = serializers.SerializerMethodField()
    thumbnail_url = serializers.SerializerMethodField()

    class Meta:
        model = Image
        fields = [
            "id",
            "original_name",
            "sha256",
            "format",
            "width",
            "height",
            "byte_size",
            "captured_at",
            "metadata",
            "quality",
            "file_url",
            "thumbnail_url",
            "created_at",
        ]

    @extend_schema_field(QualitySerializer(allow_null=True))
    def get_quality(self, obj: Image) -> dict | None:
        quality = getattr(obj, "quality", None)
        return QualitySerializer(quality).data if quality is not None else None

    def get_file_url(self, obj: Image) -> str:
        return reverse("studio:image_file", args=[obj.pk, "original"])

    def get_thumbnail_url(self, obj: Image) -> str:
        return reverse("studio:image_file", args=[obj.pk, "thumb"])


class MetadataUploadSerializer(serializers.Serializer):
    file = serializers.FileField(
        help_text="CSV with a file_name column, or JSON keyed by file name."
    )
    dataset = IdField(required=False, help_text="Limit matching to one dataset.")


class UploadSerializer(serializers.Serializer):
    dataset = IdField(help_text="Dataset receiving the images.")
    files = serializers.ListField(
        child=serializers.FileField(allow_empty_file=True),
        allow_empty=False,
        help_text="Images and/or zip archives of images.",
    )


class JobSerializer(serializers.ModelSerializer):
    project = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = Job
        fields = [
            "id",
            "project",
            "kind",
            "status",
            "progress",
            "message",
            "error",
            "result",
            "attempts",
            "max_attempts",
            "cancel_requested",
            "created_at",
            "started_at",
            "finished_at",
        ]


class IngestFileSerializer(serializers.ModelSerializer):
    class Meta:
        model = IngestFile
        fields = ["position", "name", "outcome", "reason", "image"]


# --- query parameters: validated by views through ``_query``, documented from the same class


class ImageQuerySerializer(serializers.Serializer):
    dataset = IdField(required=False, help_text="Only images in this dataset's working set.")
    version = IdField(required=False, help_text="With dataset: only images in this version.")
    split = serializers.ChoiceField(
        choices=["train", "val", "test"], required=False, help_text="With version."
    )
    cluster = IdField(required=False, help_text="Only members of this cluster.")


class JobQuerySerializer(serializers.Serializer):
    project = serializers.SlugField(required=False, help_text="Project slug.")


class JobFilesQuerySerializer(serializers.Serializer):
    outcome = serializers.ChoiceField(choices=IngestFile.Outcome.choices, required=False)


class ProjectDeleteQuerySerializer(serializers.Serializer):
    confirm = serializers.CharField(
        required=False, help_text="The project's slug: confirms the deletion of everything in it."
    )
