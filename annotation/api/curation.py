"""Curation API: embedding jobs and "more like this"."""

from __future__ import annotations

from django.urls import path, reverse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from annotation.models import (
    BackboneCheckpoint,
    Cluster,
    ClusterRun,
    DuplicateGroup,
    DuplicateMember,
)
from annotation.selectors import curation as curation_selectors
from annotation.services import checkpoints as checkpoint_services
from annotation.services import curation as curation_services
from annotation.services import embeddings as svc
from annotation.services.curation import CURATION_ACTIONS
from annotation.services.vectors import similar_images
from studio import selectors
from studio.api.base import ApiView, paginate, validated, validated_query
from studio.api.pagination import SeekPagination
from studio.api.parsers import JSON_ONLY
from studio.api.serializers import IdField, ImageSerializer, JobSerializer
from studio.errors import ApplicationError, NotFound
from studio.ml.backbones import BACKBONE_CHOICES, DEFAULT_BACKBONE, SPECS


class EmbedSerializer(serializers.Serializer):
    backbone = serializers.ChoiceField(choices=BACKBONE_CHOICES, default=DEFAULT_BACKBONE)
    checkpoint = IdField(required=False, help_text="Use this uploaded checkpoint instead.")


class CheckpointSerializer(serializers.ModelSerializer):
    class Meta:
        model = BackboneCheckpoint
        fields = ["id", "name", "architecture", "sha256", "byte_size", "created_at"]


class CheckpointUploadSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    architecture = serializers.ChoiceField(choices=BACKBONE_CHOICES)
    file = serializers.FileField(
        help_text="A torch state dict (weights only) of that architecture."
    )


class CheckpointListApi(ApiView):
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    @extend_schema(responses=CheckpointSerializer(many=True))
    def get(self, request, slug):
        return paginate(
            self,
            request,
            curation_selectors.checkpoint_list(user=request.user, project=self.project()),
            CheckpointSerializer,
        )

    @extend_schema(request={"multipart/form-data": CheckpointUploadSerializer}, responses={201: CheckpointSerializer},
                   description="Checked by loading it into the architecture before it is stored.")  # fmt: skip
    def post(self, request, slug):
        data = validated(CheckpointUploadSerializer, request.data)
        checkpoint = checkpoint_services.checkpoint_upload(
            actor=request.user, project=self.project(), name=data["name"],
            architecture=data["architecture"], upload=data["file"],
        )  # fmt: skip
        return Response(CheckpointSerializer(checkpoint).data, status=status.HTTP_201_CREATED)


class SimilarSerializer(serializers.Serializer):
    image = serializers.IntegerField()
    score = serializers.FloatField(help_text="Cosine similarity, 1 = identical.")
    thumbnail_url = serializers.CharField()


class EmbedVersionApi(ApiView):
    @extend_schema(request=EmbedSerializer, responses={202: JobSerializer},
                   description="Embed every image of the version; images already embedded "
                   "with the same backbone and weights are skipped.")  # fmt: skip
    def post(self, request, slug, pk, number):
        data = validated(EmbedSerializer, request.data)
        dataset = selectors.dataset_get(user=request.user, project=self.project(), dataset_id=pk)
        version = selectors.version_get(user=request.user, dataset=dataset, number=number)
        checkpoint = None
        if data.get("checkpoint"):
            checkpoint = curation_selectors.checkpoint_get(
                user=request.user, project=self.project(), checkpoint_id=data["checkpoint"]
            )
        job = svc.embedding_job_start(
            actor=request.user, version=version, backbone=data["backbone"], checkpoint=checkpoint
        )
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class SimilarQuerySerializer(serializers.Serializer):
    backbone = serializers.ChoiceField(
        choices=list(SPECS), required=False, help_text="Default: the project's latest space."
    )
    k = serializers.IntegerField(
        min_value=1, max_value=100, default=12, help_text="How many neighbours."
    )


class SimilarImagesApi(ApiView):
    pagination_class = None  # a plain list: the schema must not say "paginated"

    @extend_schema(parameters=[SimilarQuerySerializer], responses=SimilarSerializer(many=True))
    def get(self, request, slug, pk):
        query = validated_query(SimilarQuerySerializer, request)
        project = self.project()
        image = selectors.image_get(user=request.user, project=project, image_id=pk)
        space = curation_selectors.embedding_space_get(
            user=request.user, project=project, backbone=query.get("backbone")
        )
        k = query["k"]
        found = similar_images(space=space, image=image, k=k)
        body = [
            {
                "image": i,
                "score": round(s, 4),
                "thumbnail_url": reverse("studio:image_file", args=[i, "thumb"]),
            }
            for i, s in found
        ]
        return Response(body)


class ClusterJobSerializer(serializers.Serializer):
    method = serializers.ChoiceField(choices=["kmeans", "hdbscan"], default="kmeans")
    # Bounded here so a number no job can use (10**30) never reaches the worker.
    k = serializers.IntegerField(required=False, allow_null=True, min_value=2, max_value=100_000,
                                 help_text="k-means clusters; omit to let Studio suggest k.")  # fmt: skip
    min_cluster_size = serializers.IntegerField(
        required=False, default=5, min_value=2, max_value=1_000_000
    )


class AnalyzeSerializer(serializers.Serializer):
    threshold = serializers.FloatField(default=0.85, min_value=0.5, max_value=1.0,
                                       help_text="Cosine similarity for near-duplicates.")  # fmt: skip


class ClusterSerializer(serializers.ModelSerializer):
    display_name = serializers.CharField(read_only=True)

    class Meta:
        model = Cluster
        fields = ["id", "label", "name", "display_name", "size", "representatives"]
        read_only_fields = ["id", "label", "size", "representatives"]


class ClusterRunSerializer(serializers.ModelSerializer):
    clusters = ClusterSerializer(many=True, read_only=True)
    backbone = serializers.CharField(source="space.backbone", read_only=True)

    class Meta:
        model = ClusterRun
        fields = ["id", "method", "k", "backbone", "job", "created_at", "clusters"]


class DuplicateMemberSerializer(serializers.ModelSerializer):
    name = serializers.CharField(source="image.original_name", read_only=True)

    class Meta:
        model = DuplicateMember
        fields = ["id", "image", "name", "keep", "chosen", "similarity"]


API_GROUP_MEMBERS = 100  # members listed per group; member_count says how many it has


class DuplicateGroupSerializer(serializers.ModelSerializer):
    members = DuplicateMemberSerializer(
        many=True, read_only=True, source="shown",
        help_text=f"The kept copy first, then the most similar: at most {API_GROUP_MEMBERS}.",
    )  # fmt: skip
    member_count = serializers.IntegerField(
        read_only=True, help_text="How many copies the group holds, listed or not."
    )

    class Meta:
        model = DuplicateGroup
        fields = ["id", "threshold", "member_count", "members"]


class MapSerializer(serializers.Serializer):
    points = serializers.ListField(
        child=serializers.ListField(child=serializers.FloatField()),
        help_text="[[image id, x, y], ...]",
    )
    clusters = serializers.DictField(
        child=serializers.IntegerField(), help_text="image id → cluster label"
    )


class CurateSerializer(serializers.Serializer):
    action = serializers.ChoiceField(choices=list(CURATION_ACTIONS))
    image_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**63 - 1), required=False, default=list,
        max_length=200_000, help_text="The selection (e.g. from a lasso on the map).",
    )  # fmt: skip
    cluster = IdField(required=False, help_text="Select a cluster's members instead.")
    filter = serializers.DictField(
        child=serializers.CharField(allow_blank=True),
        required=False,
        help_text="Select by filter on the version: meta.<field>, quality.<metric>_min/_max, "
        "split, cluster.",
    )
    version = IdField(required=False, help_text="Version number (filters, drop_duplicates, queue).")
    note = serializers.CharField(required=False, allow_blank=True, default="")
    field = serializers.CharField(required=False, allow_blank=True, default="")
    value = serializers.CharField(required=False, allow_blank=True, default="")
    queue_name = serializers.CharField(required=False, allow_blank=True, default="")
    confirm = serializers.BooleanField(
        default=False,
        help_text="keep_only, exclude and drop_duplicates change nothing without it: the "
        "answer is then a preview (applied false) of what the next version would hold.",
    )
    expect = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=64,
        help_text="The preview's expect: refuse (409) if the result would differ from it.",
    )  # fmt: skip


class VersionApi(ApiView):
    def version(self):
        dataset = selectors.dataset_get(
            user=self.request.user, project=self.project(), dataset_id=self.kwargs["pk"]
        )
        return selectors.version_get(
            user=self.request.user, dataset=dataset, number=self.kwargs["number"]
        )


class ClusterVersionApi(VersionApi):
    @extend_schema(request=ClusterJobSerializer, responses={202: JobSerializer})
    def post(self, request, slug, pk, number):
        data = validated(ClusterJobSerializer, request.data)
        job = curation_services.cluster_job_start(
            actor=request.user, version=self.version(), **data
        )
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class AnalyzeVersionApi(VersionApi):
    @extend_schema(request=AnalyzeSerializer, responses={202: JobSerializer},
                   description="Quality metrics for every image; with embeddings also "
                   "near-duplicate groups, outlier and uniqueness scores and the 2-D map.")  # fmt: skip
    def post(self, request, slug, pk, number):
        data = validated(AnalyzeSerializer, request.data)
        job = curation_services.analyze_job_start(
            actor=request.user, version=self.version(), **data
        )
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class ClustersApi(VersionApi):
    @extend_schema(responses=ClusterRunSerializer)
    def get(self, request, slug, pk, number):
        run = curation_selectors.cluster_run_latest(user=request.user, version=self.version())
        if run is None:
            raise NotFound("This version has not been clustered yet.")
        return Response(ClusterRunSerializer(run).data)


class ClusterDetailApi(ApiView):
    @extend_schema(request=ClusterSerializer, responses=ClusterSerializer)
    def patch(self, request, slug, cluster_id):
        cluster = curation_selectors.cluster_get(
            user=request.user, project=self.project(), cluster_id=cluster_id
        )
        name = validated(ClusterSerializer, request.data, partial=True).get("name", "")
        return Response(
            ClusterSerializer(
                curation_services.cluster_rename(actor=request.user, cluster=cluster, name=name)
            ).data
        )


class DuplicatesApi(VersionApi):
    pagination_class = SeekPagination  # groups grow with the version: seek by id

    @extend_schema(responses=DuplicateGroupSerializer(many=True))
    def get(self, request, slug, pk, number):
        groups = curation_selectors.duplicate_groups(
            user=request.user, version=self.version(), members=API_GROUP_MEMBERS
        )
        return paginate(self, request, groups, DuplicateGroupSerializer)


class DuplicateKeepApi(ApiView):
    @extend_schema(request=None, responses=DuplicateMemberSerializer)
    def post(self, request, slug, member_id):
        member = curation_selectors.duplicate_member_get(
            user=request.user, project=self.project(), member_id=member_id
        )
        return Response(
            DuplicateMemberSerializer(
                curation_services.duplicate_keep(actor=request.user, member=member)
            ).data
        )


class OutlierSerializer(serializers.Serializer):
    image = ImageSerializer()
    outlier_score = serializers.FloatField()
    uniqueness = serializers.FloatField()


class OutliersQuerySerializer(serializers.Serializer):
    limit = serializers.IntegerField(min_value=1, max_value=500, default=48)


class OutliersApi(VersionApi):
    pagination_class = None  # a plain list: the schema must not say "paginated"

    @extend_schema(parameters=[OutliersQuerySerializer], responses=OutlierSerializer(many=True))
    def get(self, request, slug, pk, number):
        limit = validated_query(OutliersQuerySerializer, request)["limit"]
        rows = curation_selectors.outliers(user=request.user, version=self.version(), limit=limit)
        return Response(OutlierSerializer(rows, many=True).data)


class MapApi(VersionApi):
    @extend_schema(
        description="The version's 2-D embedding map and the latest clustering's label per image id.",
        responses=MapSerializer,
    )
    def get(self, request, slug, pk, number):
        version = self.version()
        emap = curation_selectors.embedding_map(user=request.user, version=version)
        if emap is None:
            raise NotFound("No map yet: embed the version, then analyze it.")
        run = curation_selectors.cluster_run_latest(user=request.user, version=version)
        labels = {}
        if run is not None:
            label_of = {c.pk: c.label for c in run.clusters.all()}
            members = curation_selectors.image_clusters(user=request.user, run=run)
            labels = {image: label_of[cluster] for image, cluster in members.items()}
        return Response({"points": emap.points, "clusters": labels})


class CurateApi(ApiView):
    parser_classes = JSON_ONLY  # nested bodies: see studio/api/parsers.py

    @extend_schema(request=CurateSerializer, responses={200: dict},
                   description="Act on a selection. The actions that make a smaller version "
                   "(keep_only, exclude, drop_duplicates) answer with a preview in numbers "
                   "(applied false, message, removed, images_after, expect) until called "
                   "again with confirm true.")  # fmt: skip
    def post(self, request, slug, pk):
        project = self.project()
        data = validated(CurateSerializer, request.data)
        dataset = selectors.dataset_get(user=request.user, project=project, dataset_id=pk)
        version = None
        if data.get("version"):
            version = selectors.version_get(
                user=request.user, dataset=dataset, number=data["version"]
            )
        ids = data["image_ids"]
        if data.get("filter"):
            if version is None:
                raise ApplicationError("A filter selects within a version: give its number.")
            ids = curation_services.selection_from_filter(
                user=request.user, project=project, version=version, params=data["filter"]
            )
        if data.get("cluster"):
            cluster = curation_selectors.cluster_get(
                user=request.user, project=project, cluster_id=data["cluster"]
            )
            ids = list(cluster.members.values_list("image_id", flat=True))
        result = curation_services.curation_apply(
            actor=request.user, dataset=dataset, image_ids=ids, action=data["action"], note=data["note"],
            field=data["field"], value=data["value"], queue_name=data["queue_name"], version=version,
            confirm=data["confirm"], expect=data["expect"],
        )  # fmt: skip
        return Response(result)


P = "projects/<slug:slug>/"
V = P + "datasets/<id:pk>/versions/<id:number>/"
urlpatterns = [
    path(V + "cluster/", ClusterVersionApi.as_view(), name="version-cluster"),
    path(V + "analyze/", AnalyzeVersionApi.as_view(), name="version-analyze"),
    path(V + "clusters/", ClustersApi.as_view(), name="version-clusters"),
    path(V + "duplicates/", DuplicatesApi.as_view(), name="version-duplicates"),
    path(V + "outliers/", OutliersApi.as_view(), name="version-outliers"),
    path(V + "map/", MapApi.as_view(), name="version-map"),
    path(P + "clusters/<id:cluster_id>/", ClusterDetailApi.as_view(), name="cluster-detail"),
    path(P + "duplicates/<id:member_id>/keep/", DuplicateKeepApi.as_view(), name="duplicate-keep"),
    path(P + "datasets/<id:pk>/curate/", CurateApi.as_view(), name="dataset-curate"),
    path(P + "checkpoints/", CheckpointListApi.as_view(), name="checkpoint-list"),
    path(
        P + "datasets/<id:pk>/versions/<id:number>/embed/",
        EmbedVersionApi.as_view(),
        name="version-embed",
    ),
    path(P + "images/<id:pk>/similar/", SimilarImagesApi.as_view(), name="image-similar"),
]
