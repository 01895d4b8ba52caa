"""Review pages: images with submitted work, the canvas in review mode, consensus merges."""

from __future__ import annotations

from django.contrib import messages
from django.db.models import Count, Exists, OuterRef, Subquery
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from annotation import selectors as curation
from annotation.models import Annotation, ConsensusResult, QueueItem
from annotation.services import quality_control
from annotation.views_canvas import canvas_config
from studio import pagination, selectors
from studio.converters import parse_id
from studio.errors import ApplicationError, Forbidden
from studio.pagination import Total, seek_page
from studio.permissions import Capability, require
from studio.views import member_view, require_allowed

REVIEW_PAGE = 24
# "240+ images waiting": ten pages' worth is enough to plan by, and each counted image is
# an index probe.
REVIEW_COUNT_CAP = 10 * REVIEW_PAGE


def can_review(user, project) -> bool:
    try:
        return require(user, project, Capability.VIEW) in ("lead", "reviewer")
    except Forbidden:
        return False


def _review_images(user, project, queue_id: int | None):
    # EXISTS and a per-row count, not a join grouped by image: a page (or "the next image")
    # then reads its own rows in id order and stops, however many wait for review.
    waiting = Annotation.objects.filter(
        image=OuterRef("pk"), status=Annotation.Status.SUBMITTED, deleted=False
    )
    images = selectors.image_list(user=user, project=project).filter(Exists(waiting))
    if queue_id:
        images = images.filter(
            Exists(QueueItem.objects.filter(queue_id=queue_id, image=OuterRef("pk")))
        )
    count = waiting.order_by().values("image").annotate(n=Count("pk")).values("n")
    return images.annotate(submitted=Subquery(count)).order_by("pk")


def _review_total(user, project, queue_id: int | None) -> Total:
    """Count the images waiting for review up to the cap, reading the waiting work only.

    Counted from the annotations' side (the partial index ``annotation_waiting_review``
    holds just the submitted ones), not by testing every image of the project.
    """
    waiting = Annotation.objects.filter(
        status=Annotation.Status.SUBMITTED,
        deleted=False,
        image__project=project,
        image__project__memberships__user=user,
    )
    if queue_id:
        waiting = waiting.filter(
            Exists(QueueItem.objects.filter(queue_id=queue_id, image=OuterRef("image_id")))
        )
    images = waiting.order_by("image_id").values("image_id").distinct()
    cap = min(pagination.COUNT_CAP, REVIEW_COUNT_CAP)
    found = images[: cap + 1].count()
    return Total(min(found, cap), exact=found <= cap)


@require_GET
@member_view
def review_list(request: HttpRequest, project) -> HttpResponse:
    """Images with submitted work waiting for a reviewer."""
    require_allowed(can_review(request.user, project), "the project's reviewers and leads")
    queue_id = parse_id(request.GET.get("queue"))
    page = seek_page(
        _review_images(request.user, project, queue_id),
        size=REVIEW_PAGE,
        after=parse_id(request.GET.get("after")),
        before=parse_id(request.GET.get("before")),
        total=_review_total(request.user, project, queue_id),
    )
    ids = [image.pk for image in page.object_list]
    authors = curation.submitted_by(user=request.user, project=project, image_ids=ids)
    agreement = curation.consensus_by_image(user=request.user, project=project, image_ids=ids)
    for image in page.object_list:
        image.authors = authors.get(image.pk, [])
        image.consensus = agreement.get(image.pk)
    return render(
        request,
        "annotation/review_list.html",
        {
            "project": project,
            "page": page,
            "queues": curation.queue_list(user=request.user, project=project),
            "queue_id": queue_id,
        },
    )


@require_GET
@member_view
def review_image(request: HttpRequest, project, image_id: int) -> HttpResponse:
    """The canvas in review mode: accept or reject each submitted annotation, or edit it."""
    require_allowed(can_review(request.user, project), "the project's reviewers and leads")
    image = selectors.image_get(user=request.user, project=project, image_id=image_id)
    queue_id = parse_id(request.GET.get("queue"))
    following = _review_images(request.user, project, queue_id).filter(pk__gt=image.pk).first()
    next_url = reverse("annotation:review_list", kwargs={"slug": project.slug})
    if following is not None:
        next_url = reverse(
            "annotation:review_image", kwargs={"slug": project.slug, "image_id": following.pk}
        )
    if queue_id:
        next_url += f"?queue={queue_id}"
    # A consensus image whose replicas are not merged yet: review the merge, not N copies.
    unmerged = (
        ConsensusResult.objects.filter(queue__project=project, image=image, merged_at__isnull=True)
        .select_related("queue")
        .first()
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
    require_allowed(can_review(request.user, project), "the project's reviewers and leads")
    queue = curation.queue_get(user=request.user, project=project, queue_id=queue_id)
    image = selectors.image_get(user=request.user, project=project, image_id=image_id)
    try:
        merged = quality_control.consensus_merge(actor=request.user, queue=queue, image=image)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Merged into {len(merged)} annotation(s); review them below.")
    return redirect("annotation:review_image", slug=project.slug, image_id=image.pk)
