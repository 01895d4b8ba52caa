"""The canvas pages' shared configuration, and an annotator's task on the canvas.

The canvas itself is static/js/annotate.js; it talks to the annotation API
(annotation/api/labels.py and queues.py), so the browser and integrations go through the same services.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from annotation.models import Annotation, LabelClass, QueueItem
from annotation.selectors import labels as label_selectors
from annotation.selectors import queues as queue_selectors
from annotation.services import queues as queue_services
from annotation.services.preannotation import sam_installed
from studio import selectors
from studio.errors import ApplicationError
from studio.models import Image
from studio.permissions import Capability, can
from studio.views import member_view, require_allowed


def _class_json(c: LabelClass) -> dict:
    return {
        "id": c.pk,
        "name": c.name,
        "kind": c.kind,
        "colour": c.colour,
        "attributes": c.attributes,
    }


def canvas_config(
    request, project, image: Image, *, item: QueueItem | None = None, **extra
) -> dict:
    """Return what static/js/annotate.js needs: the image, classes, API addresses, names.

    ``classes`` are the ones the canvas offers: on a task of a queue limited to some
    classes, only those (``other_classes`` still draws what others made in the rest).
    ``people`` names each annotation's author; ``sources`` names the machine sources.
    """
    classes = list(label_selectors.label_class_list(user=request.user, project=project))
    allowed = {c.pk for c in item.queue.label_classes.all()} if item is not None else set()
    offered = [c for c in classes if not allowed or c.pk in allowed]
    api = f"/api/v1/projects/{project.slug}"
    config = {
        "image": {
            "id": image.pk,
            "width": image.width,
            "height": image.height,
            "url": reverse("studio:image_file", kwargs={"pk": image.pk, "kind": "original"}),
            "name": image.original_name,
        },
        "classes": [_class_json(c) for c in offered],
        "other_classes": [_class_json(c) for c in classes if c not in offered],
        "api": {
            "annotations": f"{api}/images/{image.pk}/annotations/",
            "annotation": f"{api}/annotations/",
            "preannotate": f"{api}/images/{image.pk}/preannotate/",
            "prepare": f"{api}/images/{image.pk}/preannotate/prepare/",
        },
        "user": request.user.username,
        "people": {
            str(m.user_id): m.user.username
            for m in selectors.member_list(user=request.user, project=project)
        },
        "sources": dict(Annotation.Source.choices),
        "preannotator": "Segment Anything" if sam_installed() else "GrabCut",
        **extra,
    }
    if item is not None:  # a task shows only what its annotator may see (consensus, honeypots)
        config["task"] = item.pk
        config["api"]["list"] = f"{config['api']['annotations']}?task={item.pk}"
    return config


@require_GET
@member_view
def task(request: HttpRequest, project, item_id: int) -> HttpResponse:
    """An annotator's task: the canvas over the task's image, with submit-and-next."""
    item = queue_selectors.queue_item_get(user=request.user, project=project, item_id=item_id)
    if item.assignee_id != request.user.pk or item.status != QueueItem.Status.IN_PROGRESS:
        messages.error(
            request,
            "That task is not yours right now (it was submitted, or its lease ran out and someone "
            "else took it). Start annotating to get your next task.",
        )
        return redirect("annotation:queue_list", slug=project.slug)
    comments = queue_selectors.rejected_work(user=request.user, item=item)
    config = canvas_config(
        request, project, item.image, mode="annotate", item=item,
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
            "queue_classes": list(item.queue.label_classes.all()),
        },
    )


@require_POST
@member_view
def task_skip(request: HttpRequest, project, item_id: int) -> HttpResponse:
    """Pass the task on without submitting it, and open the next one (others get it first)."""
    require_allowed(
        can(request.user, project, Capability.ANNOTATE), "annotators, reviewers and leads"
    )
    item = queue_selectors.queue_item_get(user=request.user, project=project, item_id=item_id)
    try:
        queue_services.queue_skip(actor=request.user, item=item)
        following = queue_services.queue_next(
            actor=request.user, queue=item.queue, not_image=item.image_id
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("annotation:queue_list", slug=project.slug)
    if following is None:
        messages.success(
            request,
            f"Skipped {item.image.original_name}. Nothing else is left for you in "
            f"{item.queue.name!r} now; the skipped image waits for other annotators.",
        )
        return redirect("annotation:queue_list", slug=project.slug)
    messages.success(
        request,
        f"Skipped {item.image.original_name}: other annotators get it first. Here is your next task.",
    )
    return redirect("annotation:task", slug=project.slug, item_id=following.pk)
