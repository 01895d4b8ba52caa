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

    The candidate is the mask's pixel outline: the edges between its pixels and the
    background, walked as one closed loop of pixel corners (collinear corners dropped).
    A mask of one piece without holes has exactly one such loop (pieces that touch only
    at a corner count as one piece: the loop passes that corner twice); pycocotools
    draws it back pixel for pixel, which is checked before it is returned. A mask of
    several pieces or with a hole has several loops, and no single polygon holds it.
    """
    from pycocotools import mask as coco

    h, w = mask.shape
    loop = outline(mask)
    if loop is None or len(loop) < 6:
        return None
    drawn = coco.decode(coco.merge(coco.frPyObjects([loop], h, w)))
    return loop if np.array_equal(drawn.astype(bool), mask) else None


def outline(mask: np.ndarray) -> list[float] | None:
    """The pixel-edge outline of a mask as one flat vertex list, or None when it has no
    pixels or its boundary is more than one loop (several pieces, or holes).

    Every boundary edge of a pixel is directed so that the mask lies on its right (in
    image coordinates, y down); each corner then has as many edges leaving as entering.
    Where two pieces touch at a corner, two edges leave it: the walk turns left, onto the
    other piece, which keeps the touching pieces one loop, as 8-connectivity does.
    """
    m = np.pad(mask.astype(bool), 1)
    inner = m[1:-1, 1:-1]
    if not inner.any():
        return None
    out: dict[tuple[int, int], list[tuple[int, int]]] = {}
    sides = (
        (~m[:-2, 1:-1], (0, 0), (1, 0)),  # top: left to right
        (~m[1:-1, 2:], (1, 0), (1, 1)),  # right: top to bottom
        (~m[2:, 1:-1], (1, 1), (0, 1)),  # bottom: right to left
        (~m[1:-1, :-2], (0, 1), (0, 0)),  # left: bottom to top
    )
    edges = 0
    for open_side, (ax, ay), (bx, by) in sides:
        ys, xs = np.nonzero(inner & open_side)
        for x, y in zip(xs.tolist(), ys.tolist(), strict=True):
            out.setdefault((x + ax, y + ay), []).append((x + bx, y + by))
            edges += 1
    start = min(out)
    corners = [start]
    here, heading = start, None
    walked = 0
    while True:
        choices = out[here]
        if len(choices) == 1 or heading is None:
            step = choices.pop(0)
        else:  # a corner two pieces share: cross to the other piece
            left = (heading[1], -heading[0])
            wanted = (here[0] + left[0], here[1] + left[1])
            step = wanted if wanted in choices else choices[0]
            choices.remove(step)
        walked += 1
        heading = (step[0] - here[0], step[1] - here[1])
        here = step
        if here == start and not out[start]:
            break
        corners.append(here)
    if walked != edges:  # other loops remain: holes or other pieces
        return None
    # Keep the corners where the direction changes.
    n = len(corners)
    keep = []
    for i in range(n):
        (px, py), (cx, cy), (nx, ny) = corners[i - 1], corners[i], corners[(i + 1) % n]
        if (cx - px) * (ny - cy) - (cy - py) * (nx - cx) != 0:
            keep.append((cx, cy))
    return [float(v) for corner in keep for v in corner]


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
