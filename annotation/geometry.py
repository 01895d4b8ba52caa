"""Annotation geometry: validation and the canonical form of masks, polygons and boxes.

A mask is stored as COCO RLE (compressed counts, via pycocotools); a polygon as its
vertex list; a box as [x, y, width, height]. Area and bounding box are derived from the
stored form, never taken from the client. No Django here.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

MAX_VERTICES = 10_000


class GeometryError(ValueError):
    """Geometry that cannot be stored; the message names what is wrong."""


class Geometry(NamedTuple):
    """A validated shape. A named tuple: an import makes one per annotation, and a frozen
    dataclass costs several times as much to build."""

    kind: str  # "mask" | "polygon" | "box" | "tag"
    data: dict  # canonical stored form
    area: float
    bbox: tuple[float, float, float, float]  # x, y, w, h


def _finite(values, what: str) -> list[float]:
    """Return the values as floats; JSON's true and false are not numbers, and an integer
    too large for a float (``1`` and 400 zeros) is refused like infinity."""
    if any(isinstance(v, bool) for v in values):
        raise GeometryError(f"{what} must be numbers.")
    try:
        numbers = [float(v) for v in values]
    except (TypeError, ValueError):
        raise GeometryError(f"{what} must be numbers.")
    except OverflowError:  # an int beyond any float
        raise GeometryError(f"{what} must be numbers a float can hold: one is too large.")
    if not all(math.isfinite(v) for v in numbers):
        raise GeometryError(f"{what} holds NaN or infinity.")
    return numbers


def _segments_cross(p1, p2, p3, p4) -> bool:
    def orient(a, b, c):
        return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])

    d1, d2 = orient(p3, p4, p1), orient(p3, p4, p2)
    d3, d4 = orient(p1, p2, p3), orient(p1, p2, p4)
    return ((d1 > 0) != (d2 > 0)) and ((d3 > 0) != (d4 > 0)) and 0 not in (d1, d2, d3, d4)


def _self_intersects(points: np.ndarray) -> bool:
    n = len(points)
    edges = [(points[i], points[(i + 1) % n]) for i in range(n)]
    for i in range(n):
        for j in range(i + 2, n):
            if i == 0 and j == n - 1:
                continue  # neighbours through the closing edge
            if _segments_cross(*edges[i], *edges[j]):
                return True
    return False


def polygon_parts(points) -> list | None:
    """The parts of a multi-part polygon ([[x1, y1, ...], [x1, y1, ...]], each part flat or
    as [x, y] pairs), or None when ``points`` is one polygon.

    A list of lists is one polygon when every inner list is an [x, y] pair, else parts: a
    part has at least 6 numbers, a pair 2, so the forms never overlap.
    """
    if not isinstance(points, list | tuple) or not points:
        return None
    if not all(isinstance(p, list | tuple) for p in points):
        return None
    if all(len(p) == 2 and not isinstance(p[0], list | tuple) for p in points):
        return None
    return [
        [v for pair in p for v in pair] if p and isinstance(p[0], list | tuple) else list(p)
        for p in points
    ]


def polygon(points, width: int, height: int) -> Geometry:
    """Validate a polygon inside the image: [x1, y1, x2, y2, ...] or [[x, y], ...], or a
    multi-part one as a list of such parts (COCO's form), stored as ``{"parts": [...]}``.

    Every part is kept: a polygon of one part is stored as ``{"points": [...]}``.
    """
    if isinstance(points, np.ndarray):
        points = points.tolist()
    parts = polygon_parts(points)
    if parts is not None and len(parts) > 1:
        return _multi_polygon(parts, width, height)
    if parts is not None:
        points = parts[0]
    flat = list(points) if isinstance(points, list | tuple) else []
    if flat and isinstance(flat[0], list | tuple):  # [[x, y], ...] pairs
        flat = [v for pair in flat for v in (pair if isinstance(pair, list | tuple) else [pair])]
    if points is not None and not isinstance(points, list | tuple):
        raise GeometryError("Polygon coordinates must be numbers.")
    coords = _finite(flat, "Polygon coordinates")
    if len(coords) % 2:
        raise GeometryError("A polygon needs x, y pairs.")
    n = len(coords) // 2
    if n < 3:
        raise GeometryError("A polygon needs at least 3 vertices.")
    if n > MAX_VERTICES:
        raise GeometryError(
            f"A polygon may have at most {MAX_VERTICES:,} vertices; this one has {n:,}."
        )
    pts = np.array(coords, dtype=np.float64).reshape(n, 2)
    if (
        (pts[:, 0] < 0).any()
        or (pts[:, 1] < 0).any()
        or (pts[:, 0] > width).any()
        or (pts[:, 1] > height).any()
    ):
        raise GeometryError(f"The polygon goes outside the {width}×{height} image.")
    x, y = pts[:, 0], pts[:, 1]
    area = 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))
    if n <= 500 and _self_intersects(pts):  # quadratic: checked where it stays cheap
        raise GeometryError("The polygon crosses itself; split it or fix its vertices.")
    if area <= 0:
        raise GeometryError("The polygon has no area.")
    x0, y0 = float(x.min()), float(y.min())
    return Geometry("polygon", {"points": [round(v, 3) for v in coords]}, area,
                    (x0, y0, float(x.max()) - x0, float(y.max()) - y0))  # fmt: skip


def _multi_polygon(parts: list, width: int, height: int) -> Geometry:
    total = sum(len(p) for p in parts) // 2
    if total > MAX_VERTICES:
        raise GeometryError(
            f"A polygon may have at most {MAX_VERTICES:,} vertices; this one has {total:,}."
        )
    shapes = []
    for n, part in enumerate(parts, start=1):
        try:
            shapes.append(polygon(part, width, height))
        except GeometryError as exc:
            raise GeometryError(f"Part {n} of the polygon: {str(exc)[:1].lower()}{str(exc)[1:]}")
    x0 = min(s.bbox[0] for s in shapes)
    y0 = min(s.bbox[1] for s in shapes)
    x1 = max(s.bbox[0] + s.bbox[2] for s in shapes)
    y1 = max(s.bbox[1] + s.bbox[3] for s in shapes)
    # The parts' areas add up (as COCO's parts are drawn: separate pieces of one object).
    return Geometry("polygon", {"parts": [s.data["points"] for s in shapes]},
                    sum(s.area for s in shapes), (x0, y0, x1 - x0, y1 - y0))  # fmt: skip


def stored_parts(data: dict) -> list[list[float]]:
    """Every part of a stored polygon, one flat vertex list each."""
    return data["parts"] if "parts" in data else [data["points"]]


def box(values, width: int, height: int) -> Geometry:
    """Validate a box [x, y, w, h] inside the image."""
    if not isinstance(values, list | tuple) or len(values) != 4:
        raise GeometryError("A box is [x, y, width, height].")
    x, y, w, h = _finite(values, "Box values")
    if w <= 0 or h <= 0:
        raise GeometryError("A box needs a positive width and height.")
    if x < 0 or y < 0 or x + w > width or y + h > height:
        raise GeometryError(f"The box goes outside the {width}×{height} image.")
    return Geometry("box", {"box": [x, y, w, h]}, w * h, (x, y, w, h))


def mask_rle(rle: dict, width: int, height: int) -> Geometry:
    """Validate COCO RLE: its size must be the image's and its counts must cover it exactly."""
    from pycocotools import mask as coco

    if not isinstance(rle, dict) or "counts" not in rle or "size" not in rle:
        raise GeometryError('A mask is COCO RLE: {"size": [height, width], "counts": ...}.')
    size = rle["size"]
    if not isinstance(size, list | tuple) or list(size) != [height, width]:
        raise GeometryError(
            f"The mask is {size} but the image is [{height}, {width}] (height, width)."
        )
    counts = rle["counts"]
    if isinstance(counts, list):  # uncompressed counts
        if not all(type(c) is int and c >= 0 for c in counts):
            raise GeometryError("Mask counts must be non-negative integers.")
        if sum(counts) != height * width:
            raise GeometryError(
                f"Mask counts sum to {sum(counts):,}, not height × width = {height * width:,}."
            )
        encoded = coco.frPyObjects({"size": [height, width], "counts": counts}, height, width)
    elif isinstance(counts, str):
        try:
            encoded = {"size": [height, width], "counts": counts.encode("ascii", "strict")}
        except UnicodeEncodeError:
            raise GeometryError("The mask counts are not a COCO RLE string (non-ASCII text).")
        try:
            decoded = coco.decode(encoded)
        except Exception as exc:  # noqa: BLE001 - malformed counts
            raise GeometryError(f"The mask counts cannot be decoded: {exc}")
        if decoded.shape != (height, width):
            raise GeometryError("The mask counts do not match its size.")
        # Re-encode so the stored counts are canonical and cover exactly height × width.
        if coco.encode(np.asfortranarray(decoded))["counts"] != encoded["counts"]:
            raise GeometryError("The mask counts do not sum to height × width.")
    else:
        raise GeometryError("Mask counts must be a list of integers or a COCO RLE string.")
    area = float(coco.area(encoded))
    if area <= 0:
        raise GeometryError("The mask is empty.")
    x, y, w, h = (float(v) for v in coco.toBbox(encoded))
    return Geometry(
        "mask",
        {"size": [height, width], "counts": encoded["counts"].decode("ascii")},
        area,
        (x, y, w, h),
    )


def mask_from_array(mask: np.ndarray) -> dict:
    """Encode a boolean [H, W] array as COCO RLE with string counts."""
    from pycocotools import mask as coco

    rle = coco.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": list(rle["size"]), "counts": rle["counts"].decode("ascii")}


def mask_outline(mask: np.ndarray) -> list[float] | None:
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


def to_mask(geometry: Geometry | dict, kind: str, width: int, height: int) -> np.ndarray:
    """Rasterise any stored geometry to a boolean [H, W] mask (polygons and boxes included)."""
    from pycocotools import mask as coco

    data = geometry.data if isinstance(geometry, Geometry) else geometry
    if kind == "mask":
        rle = {"size": data["size"], "counts": data["counts"].encode("ascii")}
    elif kind == "polygon":
        rle = coco.merge(coco.frPyObjects(stored_parts(data), height, width))
    elif kind == "box":
        rle = coco.frPyObjects(np.array([data["box"]], dtype=np.float64), height, width)[0]
    else:
        return np.zeros((height, width), bool)
    return coco.decode(rle).astype(bool)


def validate(kind: str, payload, width: int, height: int) -> Geometry:
    """Validate a client's geometry of the given kind against the image size."""
    if kind == "mask":
        return mask_rle(payload, width, height)
    if kind == "polygon":
        return polygon(payload, width, height)
    if kind == "box":
        return box(payload, width, height)
    if kind == "tag":
        if payload not in (None, {}, []):
            raise GeometryError("A tag has no geometry.")
        return Geometry("tag", {}, 0.0, (0.0, 0.0, float(width), float(height)))
    raise GeometryError(f"Unknown geometry kind {kind!r}; use mask, polygon, box or tag.")
