"""Label schema and annotation API: thin views over annotation/services/labels.py.

Queues and review are in annotation/api/queues.py, drafts from a model in
annotation/api/preannotate.py.
"""

from __future__ import annotations

from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.response import Response

from annotation.models import Annotation, AnnotationRevision, LabelClass
from annotation.selectors import labels as label_selectors
from annotation.selectors import queues as queue_selectors
from annotation.services import labels as svc
from annotation.services import quality_control
from studio import selectors
from studio.api.base import ApiView, paginate, validated, validated_query
from studio.api.parsers import JSON_ONLY
from studio.api.serializers import IdField
from studio.errors import ApplicationError


class LabelClassSerializer(serializers.ModelSerializer):
    class Meta:
        model = LabelClass
        fields = ["id", "name", "kind", "colour", "attributes", "previous_names", "created_at"]
        read_only_fields = ["id", "previous_names", "created_at"]


class AnnotationSerializer(serializers.ModelSerializer):
    geometry = serializers.SerializerMethodField(
        help_text="Polygon vertices (a multi-part polygon: a list of parts, each its "
        "vertices), [x, y, w, h] or COCO RLE."
    )

    class Meta:
        model = Annotation
        fields = ["id", "image", "label_class", "kind", "geometry", "area", "bbox", "attributes", "source",
                  "source_detail", "confidence", "is_crowd", "status", "author", "version", "deleted",
                  "updated_at"]  # fmt: skip

    @extend_schema_field(OpenApiTypes.ANY)
    def get_geometry(self, obj: Annotation) -> object:
        return svc.client_geometry(obj)


class AnnotationCreateSerializer(serializers.Serializer):
    label_class = IdField()
    geometry = serializers.JSONField(
        required=False, allow_null=True, default=None,
        help_text="A polygon is [x1, y1, x2, y2, ...] or [[x, y], ...]; a multi-part one is a "
        "list of parts, [[x1, y1, ...], [x1, y1, ...]], every part kept. None only for a tag.",
    )  # fmt: skip
    is_crowd = serializers.BooleanField(
        default=False, help_text="A crowd region (COCO iscrowd): evaluation ignores it."
    )
    attributes = serializers.DictField(child=serializers.CharField(), required=False, default=dict)
    status = serializers.ChoiceField(choices=["draft", "submitted"], default="draft")
    confidence = serializers.FloatField(required=False, allow_null=True, min_value=0, max_value=1)


class AnnotationUpdateSerializer(serializers.Serializer):
    version = IdField(help_text="The version you loaded; a stale one answers 409.")
    label_class = IdField(required=False)
    geometry = serializers.JSONField(required=False, allow_null=True)
    attributes = serializers.DictField(child=serializers.CharField(), required=False)
    status = serializers.ChoiceField(choices=["draft", "submitted"], required=False)
    confidence = serializers.FloatField(required=False, allow_null=True, min_value=0, max_value=1)


class RevisionSerializer(serializers.ModelSerializer):
    class Meta:
        model = AnnotationRevision
        fields = ["id", "version", "action", "author", "before", "after", "created_at"]


class LabelClassListApi(ApiView):
    @extend_schema(responses=LabelClassSerializer(many=True))
    def get(self, request, slug):
        return paginate(
            self,
            request,
            label_selectors.label_class_list(user=request.user, project=self.project()),
            LabelClassSerializer,
        )

    @extend_schema(request=LabelClassSerializer, responses={201: LabelClassSerializer})
    def post(self, request, slug):
        data = validated(LabelClassSerializer, request.data)
        label_class = svc.label_class_create(actor=request.user, project=self.project(), **data)
        return Response(LabelClassSerializer(label_class).data, status=status.HTTP_201_CREATED)


class LabelClassDetailApi(ApiView):
    def label_class(self):
        return label_selectors.label_class_get(
            user=self.request.user, project=self.project(), label_class_id=self.kwargs["pk"]
        )

    @extend_schema(request=LabelClassSerializer, responses=LabelClassSerializer)
    def patch(self, request, slug, pk):
        data = validated(LabelClassSerializer, request.data, partial=True)
        data.pop("kind", None)  # a class's geometry kind is fixed once annotations may exist
        return Response(
            LabelClassSerializer(
                svc.label_class_update(actor=request.user, label_class=self.label_class(), **data)
            ).data
        )

    @extend_schema(responses={204: None})
    def delete(self, request, slug, pk):
        svc.label_class_delete(actor=request.user, label_class=self.label_class())
        return Response(status=status.HTTP_204_NO_CONTENT)


class ImageAnnotationsQuerySerializer(serializers.Serializer):
    task = IdField(required=False, help_text=(
        "A queue task of yours on this image: only what the task shows (on consensus and "
        "honeypot tasks, your own work)."))  # fmt: skip


class AnnotationDeleteQuerySerializer(serializers.Serializer):
    version = IdField(help_text="The version you loaded; a stale one answers 409.")


class ImageAnnotationsApi(ApiView):
    parser_classes = JSON_ONLY  # nested bodies: see studio/api/parsers.py

    pagination_class = None  # a plain list: the schema must not say "paginated"

    @extend_schema(
        parameters=[ImageAnnotationsQuerySerializer], responses=AnnotationSerializer(many=True)
    )
    def get(self, request, slug, pk):
        query = validated_query(ImageAnnotationsQuerySerializer, request)
        project = self.project()
        image = selectors.image_get(user=request.user, project=project, image_id=pk)
        rows = label_selectors.annotation_list(user=request.user, project=project, image=image)
        if query.get("task"):
            item_id = query["task"]
            item = queue_selectors.queue_item_get(
                user=request.user, project=project, item_id=item_id
            )
            if item.image_id != image.pk or item.assignee_id != request.user.pk:
                raise ApplicationError("That task is not yours on this image.")
            shown = quality_control.task_annotations(item=item).values("pk")
            rows = rows.filter(pk__in=shown)
        return Response(AnnotationSerializer(rows, many=True).data)

    @extend_schema(request=AnnotationCreateSerializer, responses={201: AnnotationSerializer})
    def post(self, request, slug, pk):
        project = self.project()
        image = selectors.image_get(user=request.user, project=project, image_id=pk)
        data = validated(AnnotationCreateSerializer, request.data)
        label_class = label_selectors.label_class_get(
            user=request.user, project=project, label_class_id=data.pop("label_class")
        )
        annotation = svc.annotation_create(
            actor=request.user, image=image, label_class=label_class, **data
        )
        return Response(AnnotationSerializer(annotation).data, status=status.HTTP_201_CREATED)


class AnnotationDetailApi(ApiView):
    parser_classes = JSON_ONLY  # nested bodies: see studio/api/parsers.py

    def annotation(self):
        return label_selectors.annotation_get(
            user=self.request.user, project=self.project(), annotation_id=self.kwargs["pk"]
        )

    @extend_schema(responses=AnnotationSerializer)
    def get(self, request, slug, pk):
        return Response(AnnotationSerializer(self.annotation()).data)

    @extend_schema(request=AnnotationUpdateSerializer, responses={200: AnnotationSerializer, 409: None},
                   description="Answers 409 with the current state when `version` is stale.")  # fmt: skip
    def patch(self, request, slug, pk):
        data = validated(AnnotationUpdateSerializer, request.data)
        expected = data.pop("version")
        if "label_class" in data:
            data["label_class"] = label_selectors.label_class_get(
                user=request.user, project=self.project(), label_class_id=data["label_class"]
            )
        annotation = svc.annotation_update(
            actor=request.user, annotation=self.annotation(), expected_version=expected, **data
        )
        return Response(AnnotationSerializer(annotation).data)

    @extend_schema(
        parameters=[AnnotationDeleteQuerySerializer],
        responses={200: AnnotationSerializer, 409: None},
    )
    def delete(self, request, slug, pk):
        expected = validated_query(AnnotationDeleteQuerySerializer, request)["version"]
        annotation = svc.annotation_delete(
            actor=request.user, annotation=self.annotation(), expected_version=expected
        )
        return Response(AnnotationSerializer(annotation).data)


class AnnotationHistoryApi(ApiView):
    pagination_class = None  # a plain list: the schema must not say "paginated"

    @extend_schema(responses=RevisionSerializer(many=True))
    def get(self, request, slug, pk):
        annotation = label_selectors.annotation_get(
            user=request.user, project=self.project(), annotation_id=pk
        )
        return Response(RevisionSerializer(svc.annotation_history(annotation), many=True).data)


class AnnotationRestoreApi(ApiView):
    @extend_schema(request=None, responses=AnnotationSerializer)
    def post(self, request, slug, pk, revision_id):
        annotation = label_selectors.annotation_get(
            user=request.user, project=self.project(), annotation_id=pk
        )
        revision = label_selectors.revision_get(
            user=request.user, annotation=annotation, revision_id=revision_id
        )
        return Response(
            AnnotationSerializer(svc.annotation_restore(actor=request.user, revision=revision)).data
        )


P = "projects/<slug:slug>/"
urlpatterns = [
    path(P + "label-classes/", LabelClassListApi.as_view(), name="label-class-list"),
    path(P + "label-classes/<id:pk>/", LabelClassDetailApi.as_view(), name="label-class-detail"),
    path(
        P + "images/<id:pk>/annotations/", ImageAnnotationsApi.as_view(), name="image-annotations"
    ),
    path(P + "annotations/<id:pk>/", AnnotationDetailApi.as_view(), name="annotation-detail"),
    path(
        P + "annotations/<id:pk>/history/",
        AnnotationHistoryApi.as_view(),
        name="annotation-history",
    ),
    path(
        P + "annotations/<id:pk>/history/<id:revision_id>/restore/",
        AnnotationRestoreApi.as_view(),
        name="annotation-restore",
    ),
]
