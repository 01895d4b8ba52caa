"""Review pages: images with submitted work, the canvas in review mode, consensus merges."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from annotation.selectors import queues as queue_selectors
from annotation.services import quality_control
from annotation.views.canvas import canvas_config
from studio import pagination, selectors
from studio.converters import parse_id
from studio.errors import ApplicationError
from studio.pagination import Total, seek_page
from studio.permissions import Capability, can
from studio.views import member_view, require_allowed

REVIEW_PAGE = 24
# "240+ images waiting": ten pages' worth is enough to plan by, and each counted image is
# an index probe.
REVIEW_COUNT_CAP = 10 * REVIEW_PAGE


@require_GET
@member_view
def review_list(request: HttpRequest, project) -> HttpResponse:
    """Images with submitted work waiting for a reviewer."""
    require_allowed(
        can(request.user, project, Capability.REVIEW), "the project's reviewers and leads"
    )
    queue_id = parse_id(request.GET.get("queue"))
    cap = min(pagination.COUNT_CAP, REVIEW_COUNT_CAP)
    found = queue_selectors.review_image_count(
        user=request.user, project=project, queue_id=queue_id, cap=cap
    )
    page = seek_page(
        queue_selectors.review_image_list(user=request.user, project=project, queue_id=queue_id),
        size=REVIEW_PAGE,
        after=parse_id(request.GET.get("after")),
        before=parse_id(request.GET.get("before")),
        total=Total(min(found, cap), exact=found <= cap),
    )
    ids = [image.pk for image in page.object_list]
    authors = queue_selectors.submitted_by(user=request.user, project=project, image_ids=ids)
    agreement = queue_selectors.consensus_by_image(
        user=request.user, project=project, image_ids=ids
    )
    for image in page.object_list:
        image.authors = authors.get(image.pk, [])
        image.consensus = agreement.get(image.pk)
    return render(
        request,
        "annotation/review_list.html",
        {
            "project": project,
            "page": page,
            "queues": queue_selectors.queue_list(user=request.user, project=project),
            "queue_id": queue_id,
        },
    )


@require_GET
@member_view
def review_image(request: HttpRequest, project, image_id: int) -> HttpResponse:
    """The canvas in review mode: accept or reject each submitted annotation, or edit it."""
    require_allowed(
        can(request.user, project, Capability.REVIEW), "the project's reviewers and leads"
    )
    image = selectors.image_get(user=request.user, project=project, image_id=image_id)
    queue_id = parse_id(request.GET.get("queue"))
    following = (
        queue_selectors.review_image_list(user=request.user, project=project, queue_id=queue_id)
        .filter(pk__gt=image.pk)
        .first()
    )
    next_url = reverse("annotation:review_list", kwargs={"slug": project.slug})
    if following is not None:
        next_url = reverse(
            "annotation:review_image", kwargs={"slug": project.slug, "image_id": following.pk}
        )
    if queue_id:
        next_url += f"?queue={queue_id}"
    # A consensus image whose replicas are not merged yet: review the merge, not N copies.
    unmerged = queue_selectors.consensus_unmerged_get(
        user=request.user, project=project, image=image
    )
    config = canvas_config(
        request, project, image, mode="review", next=next_url,
        review=f"/api/v1/projects/{project.slug}/annotations/", consensus=unmerged is not None,
    )  # fmt: skip
    return render(
        request,
        "annotation/canvas.html",
        {"project": project, "image": image, "config": config, "review": True,
         "unmerged": unmerged},
    )  # fmt: skip


@require_POST
@member_view
def review_merge(request: HttpRequest, project, image_id: int, queue_id: int) -> HttpResponse:
    """Merge a consensus image's replicas (majority vote), then review the result."""
    require_allowed(
        can(request.user, project, Capability.REVIEW), "the project's reviewers and leads"
    )
    queue = queue_selectors.queue_get(user=request.user, project=project, queue_id=queue_id)
    image = selectors.image_get(user=request.user, project=project, image_id=image_id)
    try:
        merged = quality_control.consensus_merge(actor=request.user, queue=queue, image=image)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Merged into {len(merged)} annotation(s); review them below.")
    return redirect("annotation:review_image", slug=project.slug, image_id=image.pk)
