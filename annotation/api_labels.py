"""Label schema and annotation API: thin views over annotation/services/labels.py."""

from __future__ import annotations

from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.response import Response

from annotation import selectors as curation
from annotation.models import Annotation, AnnotationQueue, AnnotationRevision, LabelClass, QueueItem
from annotation.services import labels as svc
from annotation.services import preannotation, quality_control
from annotation.services import queues as queue_services
from studio import selectors
from studio.api.parsers import JSON_ONLY
from studio.api.serializers import IdField
from studio.api.views import ApiView, _paginate, _query, _validated
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
        return _paginate(
            self,
            request,
            curation.label_class_list(user=request.user, project=self.project()),
            LabelClassSerializer,
        )

    @extend_schema(request=LabelClassSerializer, responses={201: LabelClassSerializer})
    def post(self, request, slug):
        data = _validated(LabelClassSerializer, request.data)
        label_class = svc.label_class_create(actor=request.user, project=self.project(), **data)
        return Response(LabelClassSerializer(label_class).data, status=status.HTTP_201_CREATED)


class LabelClassDetailApi(ApiView):
    def label_class(self):
        return curation.label_class_get(
            user=self.request.user, project=self.project(), label_class_id=self.kwargs["pk"]
        )

    @extend_schema(request=LabelClassSerializer, responses=LabelClassSerializer)
    def patch(self, request, slug, pk):
        data = _validated(LabelClassSerializer, request.data, partial=True)
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
        query = _query(ImageAnnotationsQuerySerializer, request)
        project = self.project()
        image = selectors.image_get(user=request.user, project=project, image_id=pk)
        rows = curation.annotation_list(user=request.user, project=project, image=image)
        if query.get("task"):
            item_id = query["task"]
            item = curation.queue_item_get(user=request.user, project=project, item_id=item_id)
            if item.image_id != image.pk or item.assignee_id != request.user.pk:
                raise ApplicationError("That task is not yours on this image.")
            shown = quality_control.task_annotations(item=item).values("pk")
            rows = rows.filter(pk__in=shown)
        return Response(AnnotationSerializer(rows, many=True).data)

    @extend_schema(request=AnnotationCreateSerializer, responses={201: AnnotationSerializer})
    def post(self, request, slug, pk):
        project = self.project()
        image = selectors.image_get(user=request.user, project=project, image_id=pk)
        data = _validated(AnnotationCreateSerializer, request.data)
        label_class = curation.label_class_get(
            user=request.user, project=project, label_class_id=data.pop("label_class")
        )
        annotation = svc.annotation_create(
            actor=request.user, image=image, label_class=label_class, **data
        )
        return Response(AnnotationSerializer(annotation).data, status=status.HTTP_201_CREATED)


class AnnotationDetailApi(ApiView):
    parser_classes = JSON_ONLY  # nested bodies: see studio/api/parsers.py

    def annotation(self):
        return curation.annotation_get(
            user=self.request.user, project=self.project(), annotation_id=self.kwargs["pk"]
        )

    @extend_schema(responses=AnnotationSerializer)
    def get(self, request, slug, pk):
        return Response(AnnotationSerializer(self.annotation()).data)

    @extend_schema(request=AnnotationUpdateSerializer, responses={200: AnnotationSerializer, 409: None},
                   description="Answers 409 with the current state when `version` is stale.")  # fmt: skip
    def patch(self, request, slug, pk):
        data = _validated(AnnotationUpdateSerializer, request.data)
        expected = data.pop("version")
        if "label_class" in data:
            data["label_class"] = curation.label_class_get(
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
        expected = _query(AnnotationDeleteQuerySerializer, request)["version"]
        annotation = svc.annotation_delete(
            actor=request.user, annotation=self.annotation(), expected_version=expected
        )
        return Response(AnnotationSerializer(annotation).data)


class AnnotationHistoryApi(ApiView):
    pagination_class = None  # a plain list: the schema must not say "paginated"

    @extend_schema(responses=RevisionSerializer(many=True))
    def get(self, request, slug, pk):
        annotation = curation.annotation_get(
            user=request.user, project=self.project(), annotation_id=pk
        )
        return Response(RevisionSerializer(svc.annotation_history(annotation), many=True).data)


class AnnotationRestoreApi(ApiView):
    @extend_schema(request=None, responses=AnnotationSerializer)
    def post(self, request, slug, pk, revision_id):
        annotation = curation.annotation_get(
            user=request.user, project=self.project(), annotation_id=pk
        )
        revision = curation.revision_get(
            user=request.user, annotation=annotation, revision_id=revision_id
        )
        return Response(
            AnnotationSerializer(svc.annotation_restore(actor=request.user, revision=revision)).data
        )


class QueueSerializer(serializers.ModelSerializer):
    items = serializers.SerializerMethodField()

    class Meta:
        model = AnnotationQueue
        fields = ["id", "name", "instructions", "lease_minutes", "annotators_per_image", "version",
                  "label_classes", "items", "created_at"]  # fmt: skip
        extra_kwargs = {
            "label_classes": {"help_text": "Ids of the classes its tasks take; empty: all."}
        }

    def get_items(self, obj: AnnotationQueue) -> int:
        # Lists annotate item_count in one query; a freshly created queue counts once.
        count = getattr(obj, "item_count", None)
        return count if count is not None else obj.items.count()


class QueueCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    dataset = IdField(required=False)
    version = IdField(required=False, help_text="With dataset: queue every image of it.")
    image_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**63 - 1),
        required=False,
        default=list,
    )
    assignees = serializers.ListField(
        child=serializers.CharField(), required=False, default=list, help_text="Usernames."
    )
    instructions = serializers.CharField(required=False, allow_blank=True, default="")
    lease_minutes = serializers.IntegerField(
        required=False, default=30, min_value=1, max_value=1440
    )
    annotators_per_image = serializers.IntegerField(
        required=False, default=1, min_value=1, max_value=10,
        help_text="Consensus: each image goes to this many different annotators.",
    )  # fmt: skip
    label_classes = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**63 - 1), required=False,
        default=list, help_text="Ids of the only classes its tasks offer and accept; empty: every class.",
    )  # fmt: skip


class QueueItemSerializer(serializers.ModelSerializer):
    annotations = serializers.SerializerMethodField(
        help_text="Ids of the annotations this task shows: on a consensus image only your own."
    )

    class Meta:
        model = QueueItem
        fields = ["id", "queue", "image", "position", "replica", "status", "assignee",
                  "lease_expires_at", "annotations"]  # fmt: skip

    def get_annotations(self, obj: QueueItem) -> list[int]:
        return list(quality_control.task_annotations(item=obj).values_list("pk", flat=True))


class ReviewSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(choices=["accept", "reject"])
    comment = serializers.CharField(required=False, allow_blank=True, default="")
    version = IdField(
        required=False, help_text="The version you reviewed; a stale one answers 409."
    )


class QueueListApi(ApiView):
    @extend_schema(responses=QueueSerializer(many=True))
    def get(self, request, slug):
        return _paginate(
            self,
            request,
            curation.queue_list(user=request.user, project=self.project()),
            QueueSerializer,
        )

    @extend_schema(request=QueueCreateSerializer, responses={201: QueueSerializer})
    def post(self, request, slug):
        project = self.project()
        data = _validated(QueueCreateSerializer, request.data)
        version = None
        if data.get("dataset") and data.get("version"):
            dataset = selectors.dataset_get(
                user=request.user, project=project, dataset_id=data["dataset"]
            )
            version = selectors.version_get(
                user=request.user, dataset=dataset, number=data["version"]
            )
        members = {
            m.user.username: m.user
            for m in selectors.member_list(user=request.user, project=project)
        }
        unknown = [u for u in data["assignees"] if u not in members]
        if unknown:
            raise ApplicationError(f"Not members of this project: {', '.join(unknown)}.")
        classes = [
            curation.label_class_get(user=request.user, project=project, label_class_id=pk)
            for pk in dict.fromkeys(data["label_classes"])
        ]
        queue = queue_services.queue_create(
            actor=request.user, project=project, name=data["name"], image_ids=data["image_ids"], version=version,
            assignees=[members[u] for u in data["assignees"]], instructions=data["instructions"],
            lease_minutes=data["lease_minutes"], annotators_per_image=data["annotators_per_image"],
            label_classes=classes,
        )  # fmt: skip
        return Response(QueueSerializer(queue).data, status=status.HTTP_201_CREATED)


class QueueNextApi(ApiView):
    @extend_schema(request=None, responses={200: QueueItemSerializer, 204: None},
                   description="Your current task, or the next free one under a lease; 204 when none is left.")  # fmt: skip
    def post(self, request, slug, pk):
        queue = curation.queue_get(user=request.user, project=self.project(), queue_id=pk)
        item = queue_services.queue_next(actor=request.user, queue=queue)
        if item is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(QueueItemSerializer(item).data)


class QueueSubmitApi(ApiView):
    @extend_schema(request=None, responses=QueueItemSerializer)
    def post(self, request, slug, pk):
        item = curation.queue_item_get(user=request.user, project=self.project(), item_id=pk)
        return Response(
            QueueItemSerializer(queue_services.queue_submit(actor=request.user, item=item)).data
        )


class QueueSkipApi(ApiView):
    @extend_schema(request=None, responses={200: QueueItemSerializer, 204: None},
                   description="Pass your task on without submitting it and get your next one "
                               "(never the one skipped); 204 when nothing else is left for you.")  # fmt: skip
    def post(self, request, slug, pk):
        item = curation.queue_item_get(user=request.user, project=self.project(), item_id=pk)
        queue_services.queue_skip(actor=request.user, item=item)
        following = queue_services.queue_next(
            actor=request.user, queue=item.queue, not_image=item.image_id
        )
        if following is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(QueueItemSerializer(following).data)


class ReviewApi(ApiView):
    @extend_schema(request=ReviewSerializer, responses=AnnotationSerializer)
    def post(self, request, slug, pk):
        annotation = curation.annotation_get(
            user=request.user, project=self.project(), annotation_id=pk
        )
        data = _validated(ReviewSerializer, request.data)
        queue_services.annotation_review(
            actor=request.user, annotation=annotation, decision=data["decision"],
            comment=data["comment"], expected_version=data.get("version"),
        )  # fmt: skip
        annotation.refresh_from_db()
        return Response(AnnotationSerializer(annotation).data)


class ClickSerializer(serializers.Serializer):
    x = serializers.FloatField(help_text="Column, in image pixels.")
    y = serializers.FloatField(help_text="Row, in image pixels.")
    positive = serializers.BooleanField(
        help_text="true: the pixel is part of the object; false: it is not."
    )


class PreannotateSerializer(serializers.Serializer):
    label_class = IdField(help_text="A mask class.")
    method = serializers.ChoiceField(
        choices=["auto", "sam", "grabcut"],
        default="auto",
        help_text="auto: Segment Anything when its checkpoint is installed, else GrabCut.",
    )
    box = serializers.ListField(
        child=serializers.FloatField(), required=False, allow_null=True, help_text="[x, y, w, h]"
    )
    clicks = ClickSerializer(
        many=True, required=False, default=list,
        help_text="The clicks in the order they were made; where they overlap the later one "
        "wins, and each clicked pixel ends on the side it asked for.",
    )  # fmt: skip
    positive = serializers.ListField(
        child=serializers.ListField(child=serializers.FloatField()), required=False, default=list,
        help_text="Instead of clicks: [x, y] pairs, read as made before every negative one.",
    )  # fmt: skip
    negative = serializers.ListField(
        child=serializers.ListField(child=serializers.FloatField()), required=False, default=list,
        help_text="Instead of clicks: [x, y] pairs, read as made after every positive one.",
    )  # fmt: skip
    previous = IdField(
        required=False, allow_null=True,
        help_text="GrabCut: the draft this prompt refines (the answer to the same prompt with "
        "fewer clicks); only the clicks after its first previous_clicks are applied to it.",
    )  # fmt: skip
    previous_clicks = serializers.IntegerField(
        required=False, allow_null=True, min_value=0,
        help_text="How many of clicks the previous draft already holds; default all but the last.",
    )  # fmt: skip


class PreannotateApi(ApiView):
    parser_classes = JSON_ONLY  # nested bodies: see studio/api/parsers.py

    @extend_schema(request=PreannotateSerializer, responses={201: AnnotationSerializer},
                   description="A draft mask from a box and/or ordered clicks (positive include, "
                   "negative exclude; the last click wins).")  # fmt: skip
    def post(self, request, slug, pk):
        project = self.project()
        image = selectors.image_get(user=request.user, project=project, image_id=pk)
        data = _validated(PreannotateSerializer, request.data)
        label_class = curation.label_class_get(
            user=request.user, project=project, label_class_id=data["label_class"]
        )
        previous = None
        if data.get("previous") is not None:
            previous = curation.annotation_get(
                user=request.user, project=project, annotation_id=data["previous"]
            )
        annotation = preannotation.preannotate(
            method=data["method"],
            actor=request.user, image=image, label_class=label_class, box=data.get("box"),
            clicks=data["clicks"], positive=data["positive"], negative=data["negative"],
            previous=previous, previous_clicks=data.get("previous_clicks"),
        )  # fmt: skip
        return Response(AnnotationSerializer(annotation).data, status=status.HTTP_201_CREATED)


class PrepareApi(ApiView):
    @extend_schema(request=None, responses={200: dict},
                   description="Run the Segment Anything image encoder now (cached), so the first click "
                               "is as fast as the next; answers which method clicks will use.")  # fmt: skip
    def post(self, request, slug, pk):
        image = selectors.image_get(user=request.user, project=self.project(), image_id=pk)
        return Response(preannotation.preannotate_prepare(actor=request.user, image=image))


class PropagateSerializer(serializers.Serializer):
    k = serializers.IntegerField(default=5, min_value=1, max_value=50)
    min_confidence = serializers.FloatField(default=0.5, min_value=0, max_value=1)


class PropagateTagsApi(ApiView):
    @extend_schema(request=PropagateSerializer, responses={200: dict},
                   description="Draft tags for untagged images from their nearest tagged neighbours.")  # fmt: skip
    def post(self, request, slug, pk, number):
        dataset = selectors.dataset_get(user=request.user, project=self.project(), dataset_id=pk)
        version = selectors.version_get(user=request.user, dataset=dataset, number=number)
        data = _validated(PropagateSerializer, request.data)
        return Response(preannotation.propagate_tags(actor=request.user, version=version, **data))


P = "projects/<slug:slug>/"
urlpatterns = [
    path(
        P + "datasets/<id:pk>/versions/<id:number>/propagate-tags/",
        PropagateTagsApi.as_view(),
        name="version-propagate-tags",
    ),
    path(P + "images/<id:pk>/preannotate/", PreannotateApi.as_view(), name="image-preannotate"),
    path(
        P + "images/<id:pk>/preannotate/prepare/",
        PrepareApi.as_view(),
        name="image-preannotate-prepare",
    ),
    path(P + "queues/", QueueListApi.as_view(), name="queue-list"),
    path(P + "queues/<id:pk>/next/", QueueNextApi.as_view(), name="queue-next"),
    path(P + "queue-items/<id:pk>/submit/", QueueSubmitApi.as_view(), name="queue-item-submit"),
    path(P + "queue-items/<id:pk>/skip/", QueueSkipApi.as_view(), name="queue-item-skip"),
    path(P + "annotations/<id:pk>/review/", ReviewApi.as_view(), name="annotation-review"),
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
