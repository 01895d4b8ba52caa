"""Conversions the formats share: masks to exact polygons, per-image grouping, number text."""

from __future__ import annotations

import itertools
import posixpath
from collections.abc import Iterator

import numpy as np

from . import ExportContext, ImageInfo, Row


def by_image(ctx: ExportContext, rows: Iterator[Row]) -> Iterator[tuple[ImageInfo, list[Row]]]:
    """Yield every image of the export (in order) with its rows; rows come ordered by image."""
    grouped = itertools.groupby(rows, key=lambda r: r.image_id)
    pending = next(grouped, None)
    for image in ctx.images:
        mine: list[Row] = []
        while pending is not None and pending[0] <= image.id:
            if pending[0] == image.id:
                mine = list(pending[1])
            else:
                for _ in pending[1]:
                    pass
            pending = next(grouped, None)
        yield image, mine


def decode(row_geometry: dict) -> np.ndarray:
    from pycocotools import mask as coco

    rle = {"size": row_geometry["size"], "counts": row_geometry["counts"].encode("ascii")}
    return coco.decode(rle).astype(bool)


def exact_polygon(mask: np.ndarray) -> list[float] | None:
    """Return a polygon that pycocotools rasterises to exactly this mask, or None.

    Candidates are the outline of a one-piece mask without holes (its pixel edges when it
    is a rectangle, else the boundary pixels' centres); each is rasterised and compared.
    """
    import cv2
    from pycocotools import mask as coco

    h, w = mask.shape
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    x0, x1, y0, y1 = int(xs.min()), int(xs.max()) + 1, int(ys.min()), int(ys.max()) + 1
    candidates = []
    if mask[y0:y1, x0:x1].all():
        candidates.append([x0, y0, x1, y0, x1, y1, x0, y1])
    contours, hierarchy = cv2.findContours(
        mask.astype(np.uint8), cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE
    )
    if len(contours) == 1 and len(contours[0]) >= 3:
        points = contours[0].reshape(-1, 2).astype(float)
        candidates.append(points.ravel().tolist())
        centre = points.mean(axis=0)
        candidates.append((points + 0.5 * np.sign(points - centre)).ravel().tolist())
    for polygon in candidates:
        if len(polygon) < 6 or min(polygon[0::2]) < 0 or max(polygon[0::2]) > w:
            continue
        if min(polygon[1::2]) < 0 or max(polygon[1::2]) > h:
            continue
        drawn = coco.decode(coco.merge(coco.frPyObjects([[float(v) for v in polygon]], h, w)))
        if np.array_equal(drawn.astype(bool), mask):
            return [float(v) for v in polygon]
    return None


def num(value: float) -> str:
    """Shortest text that reads back as the same float."""
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


def stem(name: str) -> str:
    root, _ = posixpath.splitext(name.replace("\\", "/"))
    return root


def tidy(values) -> list[float]:
    """Round to 1e-9 px: undo the float noise of x1 - x0 or of normalising and back."""
    return [round(float(v), 9) for v in values]
