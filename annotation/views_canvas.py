"""The canvas pages' shared configuration, and an annotator's task on the canvas.

The canvas itself is static/js/annotate.js; it talks to the annotation API
(annotation/api_labels.py), so the browser and integrations go through the same services.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET

from annotation import selectors as curation
from annotation.models import Annotation, QueueItem
from annotation.services.preannotation import sam_installed
from studio.models import Image
from studio.views import member_view


def canvas_config(request, project, image: Image, **extra) -> dict:
    classes = curation.label_class_list(user=request.user, project=project)
    api = f"/api/v1/projects/{project.slug}"
    config = {
        "image": {
            "id": image.pk,
            "width": image.width,
            "height": image.height,
            "url": reverse("studio:image_file", kwargs={"pk": image.pk, "kind": "original"}),
            "name": image.original_name,
        },
        "classes": [
            {
                "id": c.pk,
                "name": c.name,
                "kind": c.kind,
                "colour": c.colour,
                "attributes": c.attributes,
            }
            for c in classes
        ],  # fmt: skip
        "api": {
            "annotations": f"{api}/images/{image.pk}/annotations/",
            "annotation": f"{api}/annotations/",
            "preannotate": f"{api}/images/{image.pk}/preannotate/",
            "prepare": f"{api}/images/{image.pk}/preannotate/prepare/",
        },
        "user": request.user.username,
        "preannotator": "Segment Anything" if sam_installed() else "GrabCut",
        **extra,
    }
    if extra.get("task"):  # a task shows only what its annotator may see (consensus, honeypots)
        config["api"]["list"] = f"{config['api']['annotations']}?task={extra['task']}"
    return config


@require_GET
@member_view
def task(request: HttpRequest, project, item_id: int) -> HttpResponse:
    """An annotator's task: the canvas over the task's image, with submit-and-next."""
    item = curation.queue_item_get(user=request.user, project=project, item_id=item_id)
    if item.assignee_id != request.user.pk or item.status != QueueItem.Status.IN_PROGRESS:
        messages.error(
            request,
            "That task is not yours right now (it was submitted, or its lease ran out and someone "
            "else took it). Start annotating to get your next task.",
        )
        return redirect("annotation:queue_list", slug=project.slug)
    rejected = (
        Annotation.objects.filter(image=item.image, author=request.user, deleted=False,
                                  status=Annotation.Status.REJECTED)
        .prefetch_related("reviews")
    )  # fmt: skip
    comments = [
        (a, a.reviews.filter(decision="reject").order_by("-created_at").first()) for a in rejected
    ]
    config = canvas_config(
        request, project, item.image, mode="annotate", task=item.pk,
        submit=f"/api/v1/projects/{project.slug}/queue-items/{item.pk}/submit/",
        lease_expires_at=item.lease_expires_at.isoformat() if item.lease_expires_at else None,
        next=reverse("annotation:queue_next", kwargs={"slug": project.slug, "queue_id": item.queue_id}),
    )  # fmt: skip
    return render(
        request,
        "annotation/canvas.html",
        {
            "project": project,
            "item": item,
            "queue": item.queue,
            "image": item.image,
            "config": config,
            "comments": comments,
            "lease_expires_at": item.lease_expires_at,
        },
    )
