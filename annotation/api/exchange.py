"""Export and import API: thin views over annotation/services/export.py and imports.py."""

from __future__ import annotations

from django.core.files.storage import default_storage
from django.http import FileResponse
from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response

from annotation.formats import registry
from annotation.models import Annotation
from annotation.services import export, imports
from studio import selectors
from studio.api.base import ApiView, validated
from studio.api.schema import ErrorSerializer
from studio.api.serializers import JobSerializer

FORMATS = ["coco", "yolo", "voc", "labelstudio", "cvat"]


class ExportSerializer(serializers.Serializer):
    format = serializers.ChoiceField(choices=FORMATS)
    statuses = serializers.ListField(
        child=serializers.ChoiceField(choices=Annotation.Status.values),
        required=False,
        allow_empty=False,
        help_text="Only annotations with these statuses (default: all), e.g. ['accepted'].",
    )


class ImportSerializer(serializers.Serializer):
    format = serializers.ChoiceField(choices=FORMATS)
    file = serializers.FileField(help_text="The annotation file, or a zip of it (and masks).")
    status = serializers.ChoiceField(choices=["draft", "submitted"], default="submitted")
    create_classes = serializers.BooleanField(
        default=False, help_text="Add classes the file names that the schema lacks (leads only)."
    )
    dry_run = serializers.BooleanField(
        default=False, help_text="Check every record and report; write nothing."
    )
    mode = serializers.ChoiceField(
        choices=["skip", "replace", "append"], default="skip",
        help_text="What to do with shapes the version already holds: skip those already "
        "there (default), replace the annotations of the images the file labels (leads "
        "only), or append everything.",
    )  # fmt: skip


class _VersionView(ApiView):
    def version(self):
        dataset = selectors.dataset_get(
            user=self.request.user, project=self.project(), dataset_id=self.kwargs["pk"]
        )
        return selectors.version_get(
            user=self.request.user, dataset=dataset, number=self.kwargs["number"]
        )


class ExportApi(_VersionView):
    @extend_schema(request=ExportSerializer, responses={202: JobSerializer},
                   description="Start an export job; download its archive from jobs/{id}/download/.")  # fmt: skip
    def post(self, request, slug, pk, number):
        data = validated(ExportSerializer, request.data)
        job = export.export_start(
            actor=request.user, version=self.version(), fmt=data["format"],
            statuses=data.get("statuses"),
        )  # fmt: skip
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class ImportApi(_VersionView):
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(request={"multipart/form-data": ImportSerializer}, responses={202: JobSerializer},
                   description="Start an import job; its result holds the per-record report.")  # fmt: skip
    def post(self, request, slug, pk, number):
        version = self.version()
        data = validated(ImportSerializer, request.data)
        job = imports.import_start(
            actor=request.user, version=version, fmt=data["format"], upload=data["file"],
            status=data["status"], create_classes=data["create_classes"], dry_run=data["dry_run"],
            mode=data["mode"],
        )  # fmt: skip
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class ExportDownloadApi(ApiView):
    @extend_schema(responses={(200, "application/zip"): bytes, 410: ErrorSerializer})
    def get(self, request, pk):
        job = selectors.job_get(user=request.user, job_id=pk)
        name, filename = export.export_archive(user=request.user, job=job)
        return FileResponse(
            default_storage.open(name, "rb"), as_attachment=True, filename=filename,
            content_type="application/zip",
        )  # fmt: skip


class FormatSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="What export and import take as `format`.")
    label = serializers.CharField()
    holds = serializers.CharField(help_text="What the format can hold; the rest is reported.")


class FormatListApi(ApiView):
    pagination_class = None  # a plain list: the schema must not say "paginated"

    @extend_schema(responses=FormatSerializer(many=True))
    def get(self, request):
        return Response(
            [{"name": f.name, "label": f.label, "holds": f.holds} for f in registry().values()]
        )


V = "projects/<slug:slug>/datasets/<id:pk>/versions/<id:number>/"
urlpatterns = [
    path("formats/", FormatListApi.as_view(), name="format-list"),
    path(V + "export/", ExportApi.as_view(), name="version-export"),
    path(V + "import/", ImportApi.as_view(), name="version-import"),
    path("jobs/<id:pk>/download/", ExportDownloadApi.as_view(), name="job-download"),
]
