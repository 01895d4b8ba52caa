"""Quality-control API: honeypots, consensus results and merges, statistics.

Thin views over ``annotation/services/quality_control.py``. Honeypots and consensus
details are for reviewers and leads; statistics are for every member, with honeypot
numbers hidden from annotators.
"""

from __future__ import annotations

from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from annotation.api.labels import AnnotationSerializer
from annotation.models import ConsensusResult, Honeypot
from annotation.selectors import queues as queue_selectors
from annotation.services import quality_control as qc
from annotation.services import quality_stats
from studio import selectors
from studio.api.base import ApiView, validated


class HoneypotSerializer(serializers.ModelSerializer):
    class Meta:
        model = Honeypot
        fields = ["id", "image", "position", "gold", "created_at"]


class HoneypotCreateSerializer(serializers.Serializer):
    image_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**63 - 1),
        allow_empty=False,
        help_text="Images whose accepted annotations become the known answer.",
    )


class ConsensusSerializer(serializers.ModelSerializer):
    class Meta:
        model = ConsensusResult
        fields = ["id", "image", "annotators", "agreement", "per_class", "per_annotator",
                  "computed_at", "merged_at", "merged_by"]  # fmt: skip


class AnnotatorStatsSerializer(serializers.Serializer):
    user = serializers.IntegerField()
    username = serializers.CharField()
    submitted = serializers.IntegerField(help_text="Task submissions (a resubmission counts).")
    active_hours = serializers.FloatField(help_text="First lease to last submission.")
    throughput = serializers.FloatField(allow_null=True, help_text="Submissions per active hour.")
    accepted = serializers.IntegerField()
    rejected = serializers.IntegerField()
    acceptance_rate = serializers.FloatField(allow_null=True)
    agreement = serializers.FloatField(allow_null=True, help_text="Mean IoU with the others.")
    agreement_images = serializers.IntegerField()
    honeypots = serializers.IntegerField(allow_null=True)
    honeypots_correct = serializers.IntegerField(allow_null=True)
    honeypot_accuracy = serializers.FloatField(allow_null=True)
    honeypot_mean_iou = serializers.FloatField(allow_null=True)


class QueueSummarySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    annotators_per_image = serializers.IntegerField()
    items = serializers.IntegerField()
    by_status = serializers.DictField(child=serializers.IntegerField())
    done_percent = serializers.FloatField()
    agreement = serializers.FloatField(allow_null=True)
    agreement_images = serializers.IntegerField()
    merged_images = serializers.IntegerField()
    honeypots = serializers.IntegerField(allow_null=True)
    honeypot_answers = serializers.IntegerField(allow_null=True)
    honeypot_accuracy = serializers.FloatField(allow_null=True)


class QueueStatsSerializer(serializers.Serializer):
    queue = QueueSummarySerializer()
    honeypot_pass = serializers.FloatField()
    annotators = AnnotatorStatsSerializer(many=True)


class ProjectQualitySerializer(serializers.Serializer):
    queues = QueueSummarySerializer(many=True)
    honeypot_pass = serializers.FloatField()
    annotators = AnnotatorStatsSerializer(many=True)


class QueueApiView(ApiView):
    def queue(self):
        return queue_selectors.queue_get(
            user=self.request.user, project=self.project(), queue_id=self.kwargs["pk"]
        )


class QueueStatsApi(QueueApiView):
    @extend_schema(responses=QueueStatsSerializer)
    def get(self, request, slug, pk):
        return Response(quality_stats.queue_stats(user=request.user, queue=self.queue()))


class ProjectQualityApi(ApiView):
    @extend_schema(responses=ProjectQualitySerializer)
    def get(self, request, slug):
        return Response(
            quality_stats.project_quality_stats(user=request.user, project=self.project())
        )


class HoneypotListApi(QueueApiView):
    pagination_class = None  # a plain list: the schema must not say "paginated"

    @extend_schema(responses=HoneypotSerializer(many=True))
    def get(self, request, slug, pk):
        rows = qc.honeypot_list(user=request.user, queue=self.queue())
        return Response(HoneypotSerializer(rows, many=True).data)

    @extend_schema(request=HoneypotCreateSerializer, responses={201: HoneypotSerializer(many=True)})
    def post(self, request, slug, pk):
        data = validated(HoneypotCreateSerializer, request.data)
        added = qc.queue_add_honeypots(
            actor=request.user, queue=self.queue(), image_ids=data["image_ids"]
        )
        return Response(HoneypotSerializer(added, many=True).data, status=status.HTTP_201_CREATED)


class ConsensusListApi(QueueApiView):
    pagination_class = None  # a plain list: the schema must not say "paginated"

    @extend_schema(responses=ConsensusSerializer(many=True))
    def get(self, request, slug, pk):
        rows = qc.consensus_list(user=request.user, queue=self.queue())
        return Response(ConsensusSerializer(rows, many=True).data)


class ConsensusMergeApi(QueueApiView):
    @extend_schema(request=None, responses={201: AnnotationSerializer(many=True)},
                   description="The majority vote of the image's annotators as new submitted annotations.")  # fmt: skip
    def post(self, request, slug, pk, image_id):
        image = selectors.image_get(user=request.user, project=self.project(), image_id=image_id)
        merged = qc.consensus_merge(actor=request.user, queue=self.queue(), image=image)
        return Response(
            AnnotationSerializer(merged, many=True).data, status=status.HTTP_201_CREATED
        )


P = "projects/<slug:slug>/"
Q = P + "queues/<id:pk>/"
urlpatterns = [
    path(P + "quality/", ProjectQualityApi.as_view(), name="project-quality"),
    path(Q + "stats/", QueueStatsApi.as_view(), name="queue-stats"),
    path(Q + "honeypots/", HoneypotListApi.as_view(), name="queue-honeypots"),
    path(Q + "consensus/", ConsensusListApi.as_view(), name="queue-consensus"),
    path(Q + "consensus/<id:image_id>/merge/", ConsensusMergeApi.as_view(), name="consensus-merge"),
]
