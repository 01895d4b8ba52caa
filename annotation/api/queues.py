"""Queue and review API: queues, "next task", submit and skip, review decisions.

Thin views over annotation/services/queues.py; a queue's quality (stats, honeypots,
consensus) is in annotation/api/quality.py.
"""

from __future__ import annotations

from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from annotation.api.labels import AnnotationSerializer
from annotation.models import AnnotationQueue, QueueItem
from annotation.selectors import labels as label_selectors
from annotation.selectors import queues as queue_selectors
from annotation.services import quality_control
from annotation.services import queues as queue_services
from studio import selectors
from studio.api.base import ApiView, paginate, validated
from studio.api.serializers import IdField
from studio.errors import ApplicationError


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
        return paginate(
            self,
            request,
            queue_selectors.queue_list(user=request.user, project=self.project(), counts=True),
            QueueSerializer,
        )

    @extend_schema(request=QueueCreateSerializer, responses={201: QueueSerializer})
    def post(self, request, slug):
        project = self.project()
        data = validated(QueueCreateSerializer, request.data)
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
            label_selectors.label_class_get(user=request.user, project=project, label_class_id=pk)
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
        queue = queue_selectors.queue_get(user=request.user, project=self.project(), queue_id=pk)
        item = queue_services.queue_next(actor=request.user, queue=queue)
        if item is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(QueueItemSerializer(item).data)


class QueueSubmitApi(ApiView):
    @extend_schema(request=None, responses=QueueItemSerializer)
    def post(self, request, slug, pk):
        item = queue_selectors.queue_item_get(user=request.user, project=self.project(), item_id=pk)
        return Response(
            QueueItemSerializer(queue_services.queue_submit(actor=request.user, item=item)).data
        )


class QueueSkipApi(ApiView):
    @extend_schema(request=None, responses={200: QueueItemSerializer, 204: None},
                   description="Pass your task on without submitting it and get your next one "
                               "(never the one skipped); 204 when nothing else is left for you.")  # fmt: skip
    def post(self, request, slug, pk):
        item = queue_selectors.queue_item_get(user=request.user, project=self.project(), item_id=pk)
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
        annotation = label_selectors.annotation_get(
            user=request.user, project=self.project(), annotation_id=pk
        )
        data = validated(ReviewSerializer, request.data)
        queue_services.annotation_review(
            actor=request.user, annotation=annotation, decision=data["decision"],
            comment=data["comment"], expected_version=data.get("version"),
        )  # fmt: skip
        annotation.refresh_from_db()
        return Response(AnnotationSerializer(annotation).data)


P = "projects/<slug:slug>/"
urlpatterns = [
    path(P + "queues/", QueueListApi.as_view(), name="queue-list"),
    path(P + "queues/<id:pk>/next/", QueueNextApi.as_view(), name="queue-next"),
    path(P + "queue-items/<id:pk>/submit/", QueueSubmitApi.as_view(), name="queue-item-submit"),
    path(P + "queue-items/<id:pk>/skip/", QueueSkipApi.as_view(), name="queue-item-skip"),
    path(P + "annotations/<id:pk>/review/", ReviewApi.as_view(), name="annotation-review"),
]
