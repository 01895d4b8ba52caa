"""REST API views: thin, each calls one selector or service.

Every URL below ``projects/<slug>/`` resolves the project through the caller's
memberships first, so another project's objects answer 404 on every verb.
"""

from __future__ import annotations

from django.core.files.storage import default_storage
from django.http import FileResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response

from studio import selectors
from studio.api.base import ApiView, paginate, validated, validated_query
from studio.api.parsers import JSON_ONLY
from studio.errors import ApplicationError, NotFound
from studio.models import Objective
from studio.services import datasets as dataset_services
from studio.services import ingest as ingest_services
from studio.services import jobs as job_services
from studio.services import projects as project_services
from studio.uploads import CONTENT_TYPES

from . import serializers as s
from .pagination import SeekPagination


class ProjectListApi(ApiView):
    @extend_schema(responses=s.ProjectSerializer(many=True))
    def get(self, request):
        return paginate(
            self, request, selectors.project_list(user=request.user), s.ProjectSerializer
        )

    @extend_schema(request=s.ProjectCreateSerializer, responses={201: s.ProjectSerializer})
    def post(self, request):
        data = validated(s.ProjectCreateSerializer, request.data)
        project = project_services.project_create(owner=request.user, **data)
        project = selectors.project_get(user=request.user, slug=project.slug)
        return Response(s.ProjectSerializer(project).data, status=status.HTTP_201_CREATED)


class ProjectDetailApi(ApiView):
    @extend_schema(responses=s.ProjectSerializer)
    def get(self, request, slug):
        return Response(s.ProjectSerializer(self.project()).data)

    @extend_schema(request=s.ProjectUpdateSerializer, responses=s.ProjectSerializer)
    def patch(self, request, slug):
        data = validated(s.ProjectUpdateSerializer, request.data)
        project = project_services.project_update(
            actor=request.user, project=self.project(), **data
        )
        return Response(s.ProjectSerializer(project).data)

    @extend_schema(
        parameters=[s.ProjectDeleteQuerySerializer],
        responses={204: None},
        description="Delete the project and everything in it. Without `confirm`, nothing is "
        "deleted: the answer is 409 `confirmation_required`, whose details count what would "
        "be removed.",
    )
    def delete(self, request, slug):
        query = validated_query(s.ProjectDeleteQuerySerializer, request)
        project_services.project_delete(
            actor=request.user, project=self.project(), confirm=query.get("confirm")
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class MemberListApi(ApiView):
    @extend_schema(responses=s.MembershipSerializer(many=True))
    def get(self, request, slug):
        members = selectors.member_list(user=request.user, project=self.project())
        return paginate(self, request, members, s.MembershipSerializer)

    @extend_schema(request=s.MemberAddSerializer, responses={201: s.MembershipSerializer})
    def post(self, request, slug):
        data = validated(s.MemberAddSerializer, request.data)
        member = project_services.member_add(actor=request.user, project=self.project(), **data)
        return Response(s.MembershipSerializer(member).data, status=status.HTTP_201_CREATED)


class MemberDetailApi(ApiView):
    def member(self):
        return selectors.member_get(
            user=self.request.user, project=self.project(), membership_id=self.kwargs["pk"]
        )

    @extend_schema(responses=s.MembershipSerializer)
    def get(self, request, slug, pk):
        return Response(s.MembershipSerializer(self.member()).data)

    @extend_schema(request=s.MemberRoleSerializer, responses=s.MembershipSerializer)
    def patch(self, request, slug, pk):
        data = validated(s.MemberRoleSerializer, request.data)
        member = project_services.member_update_role(
            actor=request.user, membership=self.member(), **data
        )
        return Response(s.MembershipSerializer(member).data)

    @extend_schema(responses={204: None})
    def delete(self, request, slug, pk):
        project_services.member_remove(actor=request.user, membership=self.member())
        return Response(status=status.HTTP_204_NO_CONTENT)


def _objective_fields(request, project, data: dict) -> dict:
    """Turn the validated ``owner_id`` into a member user (or a clear error)."""
    fields = dict(data)
    if "owner_id" in fields:
        owner_id = fields.pop("owner_id")
        fields["owner"] = None
        if owner_id is not None:
            member = (
                selectors.member_list(user=request.user, project=project)
                .filter(user_id=owner_id)
                .first()
            )
            if member is None:
                raise ApplicationError("The objective's owner must be a member of the project.")
            fields["owner"] = member.user
    return fields


class ObjectiveListApi(ApiView):
    @extend_schema(responses=s.ObjectiveSerializer(many=True))
    def get(self, request, slug):
        objectives = selectors.objective_list(user=request.user, project=self.project())
        return paginate(self, request, objectives, s.ObjectiveSerializer)

    @extend_schema(request=s.ObjectiveSerializer, responses={201: s.ObjectiveSerializer})
    def post(self, request, slug):
        data = validated(s.ObjectiveSerializer, request.data)
        data = _objective_fields(request, self.project(), data)
        objective = project_services.objective_create(
            actor=request.user, project=self.project(), **data
        )
        return Response(s.ObjectiveSerializer(objective).data, status=status.HTTP_201_CREATED)


class ObjectiveDetailApi(ApiView):
    def objective(self) -> Objective:
        return selectors.objective_get(
            user=self.request.user, project=self.project(), objective_id=self.kwargs["pk"]
        )

    @extend_schema(responses=s.ObjectiveSerializer)
    def get(self, request, slug, pk):
        return Response(s.ObjectiveSerializer(self.objective()).data)

    @extend_schema(request=s.ObjectiveSerializer, responses=s.ObjectiveSerializer)
    def patch(self, request, slug, pk):
        objective = self.objective()
        data = validated(s.ObjectiveSerializer, request.data, partial=True)
        data = _objective_fields(request, self.project(), data)
        objective = project_services.objective_update(
            actor=request.user, objective=objective, **data
        )
        return Response(s.ObjectiveSerializer(objective).data)

    @extend_schema(responses={204: None})
    def delete(self, request, slug, pk):
        project_services.objective_delete(actor=request.user, objective=self.objective())
        return Response(status=status.HTTP_204_NO_CONTENT)


class ProblemStatementApi(ApiView):
    parser_classes = JSON_ONLY  # nested bodies: see studio/api/parsers.py

    @extend_schema(responses=s.ProblemStatementSerializer)
    def get(self, request, slug):
        problem = selectors.problem_statement_get(user=request.user, project=self.project())
        if problem is None:
            raise NotFound("This project has no problem statement yet; PUT one.")
        return Response(s.ProblemStatementSerializer(problem).data)

    @extend_schema(request=s.ProblemStatementSerializer, responses=s.ProblemStatementSerializer)
    def put(self, request, slug):
        data = validated(s.ProblemStatementSerializer, request.data)
        problem = project_services.problem_statement_set(
            actor=request.user, project=self.project(), **data
        )
        problem = selectors.problem_statement_get(user=request.user, project=self.project())
        return Response(s.ProblemStatementSerializer(problem).data)


class DatasetListApi(ApiView):
    @extend_schema(responses=s.DatasetSerializer(many=True))
    def get(self, request, slug):
        datasets = selectors.dataset_list(user=request.user, project=self.project())
        return paginate(self, request, datasets, s.DatasetSerializer)

    @extend_schema(request=s.DatasetSerializer, responses={201: s.DatasetSerializer})
    def post(self, request, slug):
        data = validated(s.DatasetSerializer, request.data)
        dataset = dataset_services.dataset_create(
            actor=request.user, project=self.project(), **data
        )
        dataset = selectors.dataset_get(
            user=request.user, project=self.project(), dataset_id=dataset.pk
        )
        return Response(s.DatasetSerializer(dataset).data, status=status.HTTP_201_CREATED)


class DatasetDetailApi(ApiView):
    @extend_schema(responses=s.DatasetSerializer)
    def get(self, request, slug, pk):
        dataset = selectors.dataset_get(user=request.user, project=self.project(), dataset_id=pk)
        return Response(s.DatasetSerializer(dataset).data)


class VersionListApi(ApiView):
    def dataset(self):
        return selectors.dataset_get(
            user=self.request.user, project=self.project(), dataset_id=self.kwargs["pk"]
        )

    @extend_schema(responses=s.DatasetVersionSerializer(many=True))
    def get(self, request, slug, pk):
        versions = selectors.version_list(user=request.user, dataset=self.dataset())
        return paginate(self, request, versions, s.DatasetVersionSerializer)

    @extend_schema(
        request=s.VersionCreateSerializer,
        responses={201: s.DatasetVersionSerializer, 200: s.DatasetVersionSerializer},
        description="Snapshot the dataset's working set. Answers 200 with the latest version "
        "when nothing changed since it.",
    )
    def post(self, request, slug, pk):
        data = validated(s.VersionCreateSerializer, request.data)
        version, created = dataset_services.dataset_version_snapshot(
            actor=request.user, dataset=self.dataset(), **data
        )
        code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        return Response(s.DatasetVersionSerializer(version).data, status=code)


class VersionDetailApi(ApiView):
    @extend_schema(
        description="The version's manifest: image ids, content hashes and splits.",
        responses=s.VersionManifestSerializer,
    )
    def get(self, request, slug, pk, number):
        dataset = selectors.dataset_get(user=request.user, project=self.project(), dataset_id=pk)
        version = selectors.version_get(user=request.user, dataset=dataset, number=number)
        body = s.DatasetVersionSerializer(version).data
        body["manifest"] = dataset_services.version_manifest(version)["images"]
        return Response(body)


class VersionRestoreApi(ApiView):
    @extend_schema(
        request=s.ConfirmSerializer,
        responses={200: dict},
        description="Undo: make a new version holding exactly this version's images. Without "
        "confirm the answer is a preview (applied false) saying in numbers what the new "
        "version would hold; with confirm true it is made (applied true, version).",
    )
    def post(self, request, slug, pk, number):
        data = validated(s.ConfirmSerializer, request.data)
        dataset = selectors.dataset_get(user=request.user, project=self.project(), dataset_id=pk)
        version = selectors.version_get(user=request.user, dataset=dataset, number=number)
        return Response(
            dataset_services.dataset_version_restore(actor=request.user, version=version, **data)
        )


IMAGE_FILTERS = [
    s.ImageQuerySerializer,
    OpenApiParameter(
        "quality.<metric>_min",
        float,
        description="Lower bound on a quality metric (also _max): "
        "brightness, contrast, sharpness, colourfulness, aspect_ratio, megapixels, uniqueness, outlier_score.",
    ),
    OpenApiParameter(
        "meta.<field>",
        str,
        description="Metadata equality filter; the field must be one of "
        "the project's metadata_fields.",
    ),
]


class ImageListApi(ApiView):
    pagination_class = SeekPagination  # a million images: seek by id, count to a cap

    @extend_schema(parameters=IMAGE_FILTERS, responses=s.ImageSerializer(many=True))
    def get(self, request, slug):
        project = self.project()
        query = validated_query(s.ImageQuerySerializer, request)
        params = request.query_params
        dataset = version = None
        if query.get("version") and not query.get("dataset"):
            raise ApplicationError("version selects within a dataset: give dataset too.")
        if query.get("split") and not query.get("version"):
            raise ApplicationError("split selects within a version: give dataset and version.")
        if query.get("dataset"):
            dataset = selectors.dataset_get(
                user=request.user, project=project, dataset_id=query["dataset"]
            )
            if query.get("version"):
                version = selectors.version_get(
                    user=request.user, dataset=dataset, number=query["version"]
                )
        metadata = selectors.metadata_filters_from_params(project=project, params=params)
        quality = selectors.quality_filters_from_params(params)
        images = selectors.image_list(
            user=request.user,
            project=project,
            dataset=dataset,
            version=version,
            split=query.get("split"),
            metadata=metadata,
            quality=quality,
            cluster_id=query.get("cluster"),
        ).select_related("quality")
        filtered = bool(query.get("split") or metadata or quality or query.get("cluster"))
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(
            images,
            request,
            view=self,
            total=selectors.image_total(dataset=dataset, version=version, filtered=filtered),
        )
        return paginator.get_paginated_response(s.ImageSerializer(page, many=True).data)


class ImageDetailApi(ApiView):
    @extend_schema(responses=s.ImageSerializer)
    def get(self, request, slug, pk):
        image = selectors.image_get(user=request.user, project=self.project(), image_id=pk)
        return Response(s.ImageSerializer(image).data)


class ImageMetadataApi(ApiView):
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        request={"multipart/form-data": s.MetadataUploadSerializer},
        responses={200: dict},
        description="Merge metadata into images by uploaded file name. All or nothing.",
    )
    def post(self, request, slug):
        data = validated(s.MetadataUploadSerializer, request.data)
        project = self.project()
        dataset = None
        if data.get("dataset"):
            dataset = selectors.dataset_get(
                user=request.user, project=project, dataset_id=data["dataset"]
            )
        upload = data["file"]
        report = dataset_services.image_metadata_bulk_set(
            actor=request.user,
            project=project,
            dataset=dataset,
            content=upload.read(dataset_services.MAX_METADATA_BYTES + 1),
            filename=upload.name or "",
        )
        return Response(report)


class UploadApi(ApiView):
    parser_classes = [MultiPartParser]

    @extend_schema(
        request={"multipart/form-data": s.UploadSerializer},
        responses={202: s.JobSerializer},
        description="Upload images or zip archives into a dataset; answers with the ingest job.",
    )
    def post(self, request, slug):
        project = self.project()
        files = request.FILES.getlist("files")
        data = validated(
            s.UploadSerializer, {"dataset": request.data.get("dataset"), "files": files}
        )
        dataset = selectors.dataset_get(
            user=request.user, project=project, dataset_id=data["dataset"]
        )
        job = ingest_services.upload_create(
            actor=request.user, project=project, dataset=dataset, files=files
        )
        return Response(s.JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class JobListApi(ApiView):
    @extend_schema(parameters=[s.JobQuerySerializer], responses=s.JobSerializer(many=True))
    def get(self, request):
        project = None
        query = validated_query(s.JobQuerySerializer, request)
        if query.get("project"):
            project = selectors.project_get(user=request.user, slug=query["project"])
        return paginate(
            self, request, selectors.job_list(user=request.user, project=project), s.JobSerializer
        )


class JobDetailApi(ApiView):
    @extend_schema(responses=s.JobSerializer)
    def get(self, request, pk):
        return Response(s.JobSerializer(selectors.job_get(user=request.user, job_id=pk)).data)


class JobCancelApi(ApiView):
    @extend_schema(request=None, responses=s.JobSerializer)
    def post(self, request, pk):
        job = job_services.job_cancel(
            actor=request.user, job=selectors.job_get(user=request.user, job_id=pk)
        )
        return Response(s.JobSerializer(job).data)


class JobRetryApi(ApiView):
    @extend_schema(request=None, responses=s.JobSerializer)
    def post(self, request, pk):
        job = job_services.job_retry(
            actor=request.user, job=selectors.job_get(user=request.user, job_id=pk)
        )
        return Response(s.JobSerializer(job).data)


class JobFilesApi(ApiView):
    @extend_schema(
        parameters=[s.JobFilesQuerySerializer], responses=s.IngestFileSerializer(many=True)
    )
    def get(self, request, pk):
        query = validated_query(s.JobFilesQuerySerializer, request)
        job = selectors.job_get(user=request.user, job_id=pk)
        files = selectors.ingest_file_list(user=request.user, job=job, outcome=query.get("outcome"))
        return paginate(self, request, files, s.IngestFileSerializer)


class ImageFileApi(ApiView):
    """Serve an image's bytes to project members only, never sniffed as anything else."""

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "kind", str, OpenApiParameter.PATH, enum=["original", "thumb"],
                description="'original' (the uploaded bytes) or 'thumb' (a JPEG thumbnail).",
            )
        ],
        responses={(200, "image/*"): bytes},
    )  # fmt: skip
    def get(self, request, pk, kind):
        image = selectors.image_get_any_project(user=request.user, image_id=pk)
        if kind == "original":
            name, content_type = image.file.name, CONTENT_TYPES[image.format]
        elif kind == "thumb":
            name, content_type = image.thumbnail.name, "image/jpeg"
        else:
            raise NotFound("Unknown file kind; use 'original' or 'thumb'.")
        response = FileResponse(default_storage.open(name, "rb"), content_type=content_type)
        response["X-Content-Type-Options"] = "nosniff"
        response["Content-Security-Policy"] = "default-src 'none'; sandbox"
        response["Cache-Control"] = "private, max-age=86400"
        return response
