"""Conversions the formats share: masks to exact polygons, per-image grouping, number text."""

from __future__ import annotations

import itertools
import posixpath
from collections.abc import Iterator

import numpy as np

from annotation.geometry import mask_outline

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

    The candidate is the mask's pixel outline: the edges between its pixels and the
    background, walked as one closed loop of pixel corners (collinear corners dropped).
    A mask of one piece without holes has exactly one such loop (pieces that touch only
    at a corner count as one piece: the loop passes that corner twice); pycocotools
    draws it back pixel for pixel, which is checked before it is returned. A mask of
    several pieces or with a hole has several loops, and no single polygon holds it.
    """
    from pycocotools import mask as coco

    h, w = mask.shape
    loop = mask_outline(mask)
    if loop is None or len(loop) < 6:
        return None
    drawn = coco.decode(coco.merge(coco.frPyObjects([loop], h, w)))
    return loop if np.array_equal(drawn.astype(bool), mask) else None


def polygon_parts(geometry: dict) -> list[list[float]]:
    """Every part of a stored polygon (one flat vertex list each)."""
    return geometry["parts"] if "parts" in geometry else [geometry["points"]]


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
