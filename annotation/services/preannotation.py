"""Pre-annotation from prompts: the result is a draft that people accept, edit or delete.

GrabCut runs without any weights, so Studio pre-annotates even with no Segment Anything
checkpoint installed; the draft says which method made it. Human work is never
overwritten: each call adds a new draft.
"""

from __future__ import annotations

import io
import math

import numpy as np
from django.core.files.storage import default_storage
from PIL import Image as PILImage

from annotation import geometry as geo
from annotation.models import Annotation, LabelClass
from annotation.services.labels import annotation_create, require_annotator
from studio.errors import ApplicationError
from studio.ml.grabcut import grabcut_mask
from studio.models import Image

MAX_CLICKS = 50


def _points(points, image: Image, what: str) -> list[tuple[float, float]]:
    out = []
    for p in points or []:
        if not isinstance(p, list | tuple) or len(p) != 2:
            raise ApplicationError(f"{what} clicks are [x, y] pairs.")
        x, y = (float(v) for v in p)
        if not (math.isfinite(x) and math.isfinite(y)) or not (
            0 <= x < image.width and 0 <= y < image.height
        ):
            raise ApplicationError(
                f"A {what.lower()} click is outside the {image.width}×{image.height} image."
            )
        out.append((x, y))
    if len(out) > MAX_CLICKS:
        raise ApplicationError(f"At most {MAX_CLICKS} clicks of each kind.")
    return out


def preannotate_grabcut(
    *, actor, image: Image, label_class: LabelClass, box=None, positive=(), negative=()
) -> Annotation:
    """Make a draft mask with GrabCut from a box and/or clicks (left: include, right: exclude)."""
    require_annotator(actor, image.project)
    if label_class.kind != LabelClass.Kind.MASK:
        raise ApplicationError(
            f"{label_class.name!r} is a {label_class.kind} class; click-to-mask needs a mask class."
        )
    pos, neg = _points(positive, image, "Positive"), _points(negative, image, "Negative")
    if box is not None:
        try:
            box = geo.validate("box", box, image.width, image.height).data["box"]
        except geo.GeometryError as exc:
            raise ApplicationError(str(exc))
    if box is None and not pos:
        raise ApplicationError("Draw a box or click inside the object.")
    with default_storage.open(image.file.name, "rb") as fh:
        pixels = np.asarray(PILImage.open(io.BytesIO(fh.read())).convert("RGB"))
    mask = grabcut_mask(pixels, box=box, positive=pos, negative=neg)
    if not mask.any():
        raise ApplicationError("GrabCut found nothing there; draw a tighter box or add clicks.")
    return annotation_create(
        actor=actor, image=image, label_class=label_class, geometry=geo.mask_from_array(mask),
        source=Annotation.Source.GRABCUT, source_detail="OpenCV GrabCut (no SAM checkpoint needed)",
    )  # fmt: skip
