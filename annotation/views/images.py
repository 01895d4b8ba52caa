"""Image page: one image with its annotations drawn over it, its datasets, and the images
most like it by embedding."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from annotation.selectors import curation as curation_selectors
from annotation.selectors import labels as label_selectors
from annotation.services import vectors as vector_services
from studio import selectors
from studio.errors import ApplicationError
from studio.views import member_view


@require_GET
@member_view
def image_detail(request: HttpRequest, project, image_id: int) -> HttpResponse:
    image = selectors.image_get(user=request.user, project=project, image_id=image_id)
    similar, similar_note, space = [], "", None
    try:
        space = curation_selectors.embedding_space_get(user=request.user, project=project)
        found = vector_services.similar_images(space=space, image=image, k=12)
        by_id = selectors.image_list(user=request.user, project=project).in_bulk(
            [i for i, _ in found]
        )
        similar = [(by_id[i], score) for i, score in found if i in by_id]
    except ApplicationError as exc:
        similar_note = exc.message
    annotations = list(
        label_selectors.annotation_list(user=request.user, project=project, image=image)
    )
    return render(
        request,
        "annotation/image_detail.html",
        {
            "project": project,
            "image": image,
            "datasets": image.datasets.all(),
            "similar": similar,
            "similar_note": similar_note,
            "space": space,
            "annotations": annotations,
            "overlay": [_overlay_shape(a) for a in annotations],
        },
    )


def _overlay_shape(annotation) -> dict:
    """SVG drawing data for an annotation: polygon points, or a rectangle (boxes, and mask extents)."""
    shape = {
        "colour": annotation.label_class.colour,
        "name": annotation.label_class.name,
        "kind": annotation.kind,
    }
    if annotation.kind == "polygon":  # every part (a multi-part polygon has several)
        parts = annotation.geometry.get("parts") or [annotation.geometry["points"]]
        shape["parts"] = [
            " ".join(f"{pts[i]},{pts[i + 1]}" for i in range(0, len(pts), 2)) for pts in parts
        ]
    elif annotation.kind in ("box", "mask"):
        x, y, w, h = annotation.bbox
        shape.update(x=x, y=y, w=w, h=h, dashed=annotation.kind == "mask")
    return shape
