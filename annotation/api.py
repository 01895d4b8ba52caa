"""Curation API: embedding jobs and "more like this"."""

from __future__ import annotations

from django.urls import path, reverse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from annotation import selectors as curation
from annotation.services import embeddings as svc
from studio import selectors
from studio.api.serializers import JobSerializer
from studio.api.views import ApiView, _validated
from studio.ml.backbones import DEFAULT_BACKBONE, SPECS


class EmbedSerializer(serializers.Serializer):
    backbone = serializers.ChoiceField(choices=list(SPECS), default=DEFAULT_BACKBONE)


class SimilarSerializer(serializers.Serializer):
    image = serializers.IntegerField()
    score = serializers.FloatField(help_text="Cosine similarity, 1 = identical.")
    thumbnail_url = serializers.CharField()


class EmbedVersionApi(ApiView):
    @extend_schema(request=EmbedSerializer, responses={202: JobSerializer},
                   description="Embed every image of the version; images already embedded "
                   "with the same backbone and weights are skipped.")  # fmt: skip
    def post(self, request, slug, pk, number):
        data = _validated(EmbedSerializer, request.data)
        dataset = selectors.dataset_get(user=request.user, project=self.project(), dataset_id=pk)
        version = selectors.version_get(user=request.user, dataset=dataset, number=number)
        job = svc.embedding_job_start(
            actor=request.user, version=version, backbone=data["backbone"]
        )
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class SimilarImagesApi(ApiView):
    @extend_schema(
        parameters=[
            OpenApiParameter("backbone", str, enum=list(SPECS)),
            OpenApiParameter("k", int, description="How many neighbours (1–100, default 12)."),
        ],
        responses=SimilarSerializer(many=True),
    )
    def get(self, request, slug, pk):
        project = self.project()
        image = selectors.image_get(user=request.user, project=project, image_id=pk)
        space = curation.embedding_space_get(
            user=request.user, project=project, backbone=request.query_params.get("backbone")
        )
        try:
            k = max(1, min(100, int(request.query_params.get("k", 12))))
        except ValueError:
            k = 12
        found = svc.similar_images(space=space, image=image, k=k)
        body = [
            {
                "image": i,
                "score": round(s, 4),
                "thumbnail_url": reverse("studio:image_file", args=[i, "thumb"]),
            }
            for i, s in found
        ]
        return Response(body)


P = "projects/<slug:slug>/"
urlpatterns = [
    path(
        P + "datasets/<int:pk>/versions/<int:number>/embed/",
        EmbedVersionApi.as_view(),
        name="version-embed",
    ),
    path(P + "images/<int:pk>/similar/", SimilarImagesApi.as_view(), name="image-similar"),
]
