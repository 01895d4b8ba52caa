"""Pre-annotation API: a draft mask from a box or clicks on one image, warming up the
encoder for the canvas, tags propagated from neighbours, and batch jobs over a dataset
version or a queue. Thin views over annotation/services/preannotation.py and
batch_preannotation.py."""

from __future__ import annotations

from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from annotation.api.labels import AnnotationSerializer
from annotation.selectors import labels as label_selectors
from annotation.selectors import queues as queue_selectors
from annotation.services import preannotation
from annotation.services.batch_preannotation import MODES, preannotate_start
from studio import selectors
from studio.api.base import ApiView, validated
from studio.api.parsers import JSON_ONLY
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
        label_class = label_selectors.label_class_get(
            user=request.user, project=project, label_class_id=data["label_class"]
        )
        version = queue = None
        if data.get("queue") is not None:
            queue = queue_selectors.queue_get(
                user=request.user, project=project, queue_id=data["queue"]
            )
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
        data = validated(PreannotateSerializer, request.data)
        label_class = label_selectors.label_class_get(
            user=request.user, project=project, label_class_id=data["label_class"]
        )
        previous = None
        if data.get("previous") is not None:
            previous = label_selectors.annotation_get(
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
        data = validated(PropagateSerializer, request.data)
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
    path(P + "preannotate-jobs/", PreannotateJobApi.as_view(), name="preannotate-jobs"),
]
