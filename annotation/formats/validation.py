"""Validate many geometries at once, with the same verdicts as ``annotation.geometry``.

An import checks a hundred thousand shapes; calling ``geometry.validate`` on each would
spend most of its time in per-shape Python (the quadratic self-intersection loop, and
decoding every mask to a full-size array only to encode it again). Here polygons of the
same vertex count are checked together as one numpy array, and COCO RLE counts strings
are decoded to their run lengths together, without ever building a pixel array.

The rules, and the messages, are geometry's; ``tests/annotation/test_formats.py``
checks that both modules agree.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from annotation import geometry as geo

MAX_CROSS_CHECK = 500  # as in geometry.polygon: the quadratic check stops here
PAIR_BUDGET = 2_000_000  # orientation-matrix entries (polygons × n × n) per numpy step
CHARS = 4_000_000  # RLE characters per numpy decode
_NUMBERS = frozenset({float, int})


def validate_many(items: list[tuple[str, object, int, int]]) -> list[geo.Geometry | str]:
    """Validate (kind, client geometry, width, height) items; return Geometry or the error."""
    out: list[geo.Geometry | str | None] = [None] * len(items)
    polygons: dict[int, list[tuple[int, list[float], int, int]]] = {}
    masks: list[tuple[int, str, int, int]] = []
    for index, (kind, payload, width, height) in enumerate(items):
        if kind == "polygon" and _several_parts(payload):
            try:
                out[index] = geo.polygon(payload, width, height)
            except geo.GeometryError as exc:
                out[index] = str(exc)
        elif kind == "polygon":
            flat = _flat(payload)
            if isinstance(flat, str):
                out[index] = flat
            elif len(flat) % 2:
                out[index] = "A polygon needs x, y pairs."
            elif len(flat) // 2 < 3:
                out[index] = "A polygon needs at least 3 vertices."
            elif len(flat) // 2 > geo.MAX_VERTICES:
                out[index] = (
                    f"A polygon may have at most {geo.MAX_VERTICES:,} vertices; "
                    f"this one has {len(flat) // 2:,}."
                )
            else:
                polygons.setdefault(len(flat) // 2, []).append((index, flat, width, height))
        elif kind == "mask" and _compressed(payload, width, height):
            masks.append((index, payload["counts"], width, height))
        elif kind == "mask" and isinstance(payload, dict) and _non_ascii(payload.get("counts")):
            out[index] = "The mask counts cannot be decoded: not a COCO RLE string."
        elif kind == "box" and (box := _box(payload, width, height)) is not None:
            out[index] = box
        else:
            try:
                out[index] = geo.validate(kind, payload, width, height)
            except geo.GeometryError as exc:
                out[index] = str(exc)
    for n, group in polygons.items():
        step = max(1, PAIR_BUDGET // (n * n))
        for start in range(0, len(group), step):
            part = group[start : start + step]
            for (index, *_), result in zip(part, _polygons(n, part), strict=True):
                out[index] = result
    for (index, *_), result in zip(masks, _masks(masks), strict=True):
        out[index] = result
    return out  # type: ignore[return-value]


def _box(values, width: int, height: int) -> geo.Geometry | None:
    """geometry.box for a valid box of plain numbers; None sends anything else there."""
    if type(values) is not list or len(values) != 4:
        return None
    x, y, w, h = values
    if not (type(x) in _NUMBERS and type(y) in _NUMBERS and type(w) in _NUMBERS
            and type(h) in _NUMBERS):  # fmt: skip
        return None
    try:
        x, y, w, h = float(x), float(y), float(w), float(h)
    except OverflowError:  # an integer too large for a float: geometry.box says so
        return None
    if not (0 < w < math.inf and 0 < h < math.inf and x >= 0 and y >= 0):
        return None
    if x + w > width or y + h > height:
        return None
    return geo.Geometry("box", {"box": [x, y, w, h]}, w * h, (x, y, w, h))


def _several_parts(payload) -> bool:
    """A multi-part polygon (rare: checked one by one, by geometry itself)."""
    if type(payload) is not list or not payload or type(payload[0]) is not list:
        return False
    parts = geo.polygon_parts(payload)
    return parts is not None and len(parts) > 1


def _flat(points) -> list[float] | str:
    if not isinstance(points, list | tuple):
        return "Polygon coordinates must be numbers."
    if points and isinstance(points[0], list | tuple):
        points = [
            v for pair in points for v in (pair if isinstance(pair, list | tuple) else [pair])
        ]
    if set(map(type, points)) <= _NUMBERS:  # the common case, checked at C speed
        return points
    for v in points:
        if type(v) is bool:
            return "Polygon coordinates must be numbers."
        if type(v) is not float and type(v) is not int:
            try:
                float(v)
            except (TypeError, ValueError, OverflowError):
                return "Polygon coordinates must be numbers."
    return points


def _non_ascii(counts) -> bool:
    return isinstance(counts, str) and not counts.isascii()


def _compressed(payload, width: int, height: int) -> bool:
    return (
        isinstance(payload, dict)
        and isinstance(payload.get("counts"), str)
        and isinstance(payload.get("size"), list | tuple)
        and list(payload["size"]) == [height, width]
        and payload["counts"].isascii()
    )


@lru_cache(maxsize=64)
def _pairs(n: int) -> np.ndarray:
    """[n, n] mask of the edge pairs (i < j) that are not neighbours, as
    geometry._self_intersects walks them."""
    keep = np.triu(np.ones((n, n), bool), k=2)
    keep[0, n - 1] = False
    return keep


def _crossing(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Which polygons (vertex coordinates ``x``, ``y`` [k, n]) have two edges that cross
    (geometry's test).

    Edge i runs from vertex i to vertex i + 1. ``side[k, j, i]`` is geometry's
    ``orient(P_j, P_j+1, P_i)``, computed with the same operations in the same order, so
    its sign and its zeros are the same numbers: one [n, n] matrix per polygon holds all
    four orientations of every pair of edges (i, j):
    d1 = side[j, i], d2 = side[j, i+1], d3 = side[i, j], d4 = side[i, j+1].
    """
    ex = np.roll(x, -1, axis=1) - x  # P_j+1 - P_j
    ey = np.roll(y, -1, axis=1) - y
    side = ex[:, :, None] * (y[:, None, :] - y[:, :, None]) - ey[:, :, None] * (
        x[:, None, :] - x[:, :, None]
    )
    positive = side > 0
    nonzero = side != 0
    # straddles[j, i]: P_i and P_i+1 lie strictly on opposite sides of edge j.
    straddles = (positive != np.roll(positive, -1, axis=2)) & nonzero & np.roll(nonzero, -1, axis=2)
    hit = straddles & straddles.transpose(0, 2, 1) & _pairs(x.shape[1])
    return hit.any(axis=(1, 2))


def _polygons(n: int, group: list) -> list[geo.Geometry | str]:
    try:
        pts = np.array([flat for _, flat, _, _ in group], dtype=np.float64).reshape(
            len(group), n, 2
        )
    except (TypeError, ValueError, OverflowError):  # geometry.polygon names what is wrong
        return [_one_polygon(flat, w, h) for _, flat, w, h in group]
    sizes = np.array([(w, h) for _, _, w, h in group], dtype=np.float64)
    finite = np.isfinite(pts).all(axis=(1, 2))
    inside = (pts >= 0).all(axis=(1, 2)) & (pts <= sizes[:, None, :]).all(axis=(1, 2))
    x, y = pts[..., 0], pts[..., 1]
    with np.errstate(invalid="ignore", over="ignore"):
        area = 0.5 * np.abs(
            np.einsum("kn,kn->k", x, np.roll(y, -1, axis=1))
            - np.einsum("kn,kn->k", y, np.roll(x, -1, axis=1))
        )
        crosses = np.zeros(len(group), bool)
        if n <= MAX_CROSS_CHECK:
            crosses = _crossing(x, y)
        rounded = np.round(pts.reshape(len(group), -1), 3).tolist()
        lo, hi = pts.min(axis=1), pts.max(axis=1)
    results: list[geo.Geometry | str] = []
    Geometry = geo.Geometry
    for (_, _, w, h), ok, inner, cross, a, (x0, y0), (x1, y1), points in zip(
        group, finite.tolist(), inside.tolist(), crosses.tolist(), area.tolist(), lo.tolist(),
        hi.tolist(), rounded, strict=True,
    ):  # fmt: skip
        if not ok:
            results.append("Polygon coordinates holds NaN or infinity.")
        elif not inner:
            results.append(f"The polygon goes outside the {w}×{h} image.")
        elif cross:
            results.append("The polygon crosses itself; split it or fix its vertices.")
        elif a <= 0:
            results.append("The polygon has no area.")
        else:
            results.append(Geometry("polygon", {"points": points}, a, (x0, y0, x1 - x0, y1 - y0)))
    return results


def _one_polygon(flat, w, h) -> geo.Geometry | str:
    try:
        return geo.polygon(flat, w, h)
    except geo.GeometryError as exc:
        return str(exc)


def _masks(masks: list[tuple[int, str, int, int]]) -> list[geo.Geometry | str]:
    """Decode COCO's compressed counts (pycocotools' rleFrString) for many masks at once."""
    results: list[geo.Geometry | str | None] = [None] * len(masks)
    good = []
    for k, (_, string, w, h) in enumerate(masks):
        if not string or not ("0" <= string[0] <= "o" and "0" <= string[-1] <= "o"):
            results[k] = "The mask counts cannot be decoded: not a COCO RLE string."
        elif (ord(string[-1]) - 48) & 0x20:
            results[k] = "The mask counts cannot be decoded: the string is cut short."
        elif len(string) > 6 * (w * h + 1):  # each of at most w·h + 1 counts takes ≤ 6 characters
            results[k] = "The mask counts are longer than any mask of this size."
        else:
            good.append(k)
    # Decode in slices of at most CHARS characters, so memory stays bounded.
    start = 0
    while start < len(good):
        stop, size = start, 0
        while stop < len(good) and (stop == start or size + len(masks[good[stop]][1]) <= CHARS):
            size += len(masks[good[stop]][1])
            stop += 1
        part = good[start:stop]
        for k, result in zip(part, _decode([masks[k] for k in part]), strict=True):
            results[k] = result
        start = stop
    return results  # type: ignore[return-value]


def _decode(masks: list[tuple[int, str, int, int]]) -> list[geo.Geometry | str]:
    from pycocotools import mask as coco

    strings = [m[1] for m in masks]
    n = len(masks)
    lengths = np.fromiter((len(s) for s in strings), np.int64, n)
    raw = np.frombuffer("".join(strings).encode("ascii"), np.uint8)
    outside = (raw < 48) | (raw > 111)
    if outside.any():
        owner = np.repeat(np.arange(n), lengths)
        bad = np.bincount(owner, weights=outside, minlength=n) > 0
    else:
        bad = np.zeros(n, bool)
    chars = np.clip(raw.astype(np.int64) - 48, 0, 63)
    ends = np.flatnonzero((chars & 0x20) == 0)  # the last character of each count
    starts = np.concatenate(([0], ends[:-1] + 1))
    nchunks = ends - starts + 1
    shift = 5 * (np.arange(len(chars)) - np.repeat(starts, nchunks))
    shift = np.minimum(shift, 62)  # longer counts are refused below
    values = np.add.reduceat((chars & 0x1F) << shift, starts)
    last = chars[ends]
    values = np.where(
        (last & 0x10) != 0, values - (np.int64(1) << np.minimum(5 * nchunks, 62)), values
    )
    # pycocotools writes the shortest encoding: no trailing chunk that only repeats the sign.
    prev = chars[np.maximum(ends - 1, 0)]
    redundant = (nchunks > 1) & (
        ((last == 0) & ((prev & 0x10) == 0)) | ((last == 0x1F) & ((prev & 0x10) != 0))
    )
    # Every string ends a count (checked in _masks), so no count spans two masks.
    count_owner = np.searchsorted(np.cumsum(lengths), ends, side="right")
    ncounts = np.bincount(count_owner, minlength=n)
    first_count = np.cumsum(ncounts) - ncounts
    position = np.arange(len(values)) - np.repeat(first_count, ncounts)
    odd = (position & 1).astype(bool)
    # counts[m] = x[m] + counts[m - 2] for m > 2: a running sum per mask along each parity.
    counts = values.copy()
    for idx in (np.flatnonzero(odd), np.flatnonzero(~odd & (position >= 2))):
        if len(idx):
            run = np.cumsum(values[idx])
            owners = count_owner[idx]
            seg_start = np.r_[True, owners[1:] != owners[:-1]]
            first = np.maximum.accumulate(np.where(seg_start, np.arange(len(idx)), 0))
            counts[idx] = run - (run - values[idx])[first]
    # No count exceeds the pixels of the largest image here: the sums cannot overflow.
    cap = max(w * h for _, _, w, h in masks)
    total = np.add.reduceat(counts, first_count)
    area = np.add.reduceat(np.where(odd, counts, 0), first_count)
    wrong = (
        np.add.reduceat(
            ((counts <= 0) & (position > 0)) | (counts < 0) | (counts > cap) | redundant
            | (nchunks > 12),
            first_count,
        )
        > 0
    )  # fmt: skip
    results: list[geo.Geometry | str | None] = [None] * n
    areas = area.astype(np.float64).tolist()
    for k, ((_, _, w, h), unreadable, wrong_k, total_k) in enumerate(
        zip(masks, bad.tolist(), wrong.tolist(), total.tolist(), strict=True)
    ):
        if unreadable:
            results[k] = "The mask counts cannot be decoded: not a COCO RLE string."
        elif wrong_k:
            results[k] = "The mask counts do not sum to height × width."
        elif total_k != w * h:
            results[k] = f"Mask counts sum to {total_k:,}, not height × width = {w * h:,}."
        elif areas[k] <= 0:
            results[k] = "The mask is empty."
    ok = [k for k in range(n) if results[k] is None]
    if ok:
        rles = [
            {"size": [masks[k][3], masks[k][2]], "counts": strings[k].encode("ascii")} for k in ok
        ]
        boxes = coco.toBbox(rles).tolist()
        Geometry = geo.Geometry
        for box, k in zip(boxes, ok, strict=True):
            _, string, w, h = masks[k]
            results[k] = Geometry("mask", {"size": [h, w], "counts": string}, areas[k], tuple(box))
    return results  # type: ignore[return-value]
