"""Pre-annotation from the queue list: start a batch job over a queue's images."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from annotation.selectors import labels as label_selectors
from annotation.selectors import queues as queue_selectors
from annotation.services.batch_preannotation import preannotate_start
from studio.errors import ApplicationError
from studio.views import member_view, require_allowed


@require_POST
@member_view
def queue_preannotate(request: HttpRequest, project, queue_id: int) -> HttpResponse:
    """Start a batch pre-annotation of a queue's images from the queue list."""
    require_allowed(request.can_contribute, "the project's leads and reviewers")
    queue = queue_selectors.queue_get(user=request.user, project=project, queue_id=queue_id)
    mode = request.POST.get("mode", "")
    try:
        label_class = label_selectors.label_class_get(
            user=request.user, project=project, label_class_id=int(request.POST["label_class"])
        )
        params: dict = {"method": "auto"}
        if mode == "automatic":
            params = {"points_per_side": int(request.POST.get("points_per_side") or 16)}
        job = preannotate_start(
            actor=request.user, label_class=label_class, mode=mode, queue=queue, params=params
        )
    except (KeyError, ValueError):
        messages.error(request, "Choose a mask class and a whole number of points per side.")
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        return redirect("studio:job_detail", job_id=job.pk)
    return redirect("annotation:queue_list", slug=project.slug)
