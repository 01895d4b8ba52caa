"""Batch pre-annotation API: start a job over a dataset version or a queue."""

from __future__ import annotations

from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from annotation import selectors as curation
from annotation.services.batch_preannotation import MODES, preannotate_start
from studio import selectors
from studio.api.base import ApiView, validated
from studio.api.serializers import IdField, JobSerializer
from studio.errors import ApplicationError


class PreannotateJobSerializer(serializers.Serializer):
    mode = serializers.ChoiceField(
        choices=MODES,
        default="automatic",
        help_text="automatic: SAM's automatic mask generator; boxes_to_masks: a mask per box.",
    )
    label_class = IdField(help_text="The mask class the drafts get.")
    dataset = IdField(required=False, help_text="With version: a dataset's id.")
    version = IdField(required=False, help_text="The version number.")
    queue = IdField(required=False, help_text="Or an annotation queue's id.")
    params = serializers.DictField(
        required=False,
        default=dict,
        help_text="automatic: points_per_side, pred_iou_thresh, stability_score_thresh, "
        "min_mask_region_area, max_masks. boxes_to_masks: method (auto, sam, grabcut), box_class.",
    )


class PreannotateJobApi(ApiView):
    @extend_schema(request=PreannotateJobSerializer, responses={202: JobSerializer},
                   description="Draft masks for every image of a dataset version or a queue; "
                   "human work is never changed (reviewers and leads).")  # fmt: skip
    def post(self, request, slug):
        project = self.project()
        data = validated(PreannotateJobSerializer, request.data)
        label_class = curation.label_class_get(
            user=request.user, project=project, label_class_id=data["label_class"]
        )
        version = queue = None
        if data.get("queue") is not None:
            queue = curation.queue_get(user=request.user, project=project, queue_id=data["queue"])
        elif data.get("dataset") is not None and data.get("version") is not None:
            dataset = selectors.dataset_get(
                user=request.user, project=project, dataset_id=data["dataset"]
            )
            version = selectors.version_get(
                user=request.user, dataset=dataset, number=data["version"]
            )
        else:
            raise ApplicationError("Give a queue, or a dataset and its version number.")
        job = preannotate_start(
            actor=request.user, label_class=label_class, mode=data["mode"],
            version=version, queue=queue, params=data["params"],
        )  # fmt: skip
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


urlpatterns = [
    path(
        "projects/<slug:slug>/preannotate-jobs/",
        PreannotateJobApi.as_view(),
        name="preannotate-jobs",
    ),
]
