"""Clicks on an object, in the order they were made, and the rules every mask obeys.

A smart-tool prompt is a box and/or an ordered list of clicks. Whatever made the mask
(GrabCut or Segment Anything), two rules hold at the end:

- **The last click wins.** A final pass goes through the clicks in order and puts each
  clicked pixel (a disk of ``CLICK_RADIUS`` pixels) on the side it asked for: inside the
  mask for a positive click, outside for a negative one. Where two clicks' disks overlap,
  the later click decides.
- **A click changes only what it touched.** ``apply_locally`` keeps, of everything a
  click's recomputation changed, only the connected region that contains the click: far
  pixels the click had nothing to do with keep their side.

No Django here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

CLICK_RADIUS = 1


@dataclass(frozen=True)
class Click:
    x: float
    y: float
    positive: bool

    def pixel(self, width: int, height: int) -> tuple[int, int]:
        """Return the (x, y) pixel the click is on, clamped into a width×height image."""
        return min(width - 1, max(0, int(self.x))), min(height - 1, max(0, int(self.y)))


def ordered_clicks(
    clicks: Iterable[Click] = (),
    positive: Iterable[Sequence[float]] = (),
    negative: Iterable[Sequence[float]] = (),
) -> list[Click]:
    """Return one ordered list: ``clicks`` as given, else positives then negatives.

    The separate ``positive`` and ``negative`` lists carry no order between them; they are
    read as all positive clicks first, then all negative ones (so a negative click wins
    where it overlaps a positive one).
    """
    out = [c if isinstance(c, Click) else Click(*c) for c in clicks]
    out += [Click(float(x), float(y), True) for x, y in positive]
    out += [Click(float(x), float(y), False) for x, y in negative]
    return out


def disk(
    shape: tuple[int, int], x: float, y: float, radius: float
) -> tuple[slice, slice, np.ndarray]:
    """Return (rows, cols, bool patch): the pixels within ``radius`` of (x, y), clipped."""
    h, w = shape
    cx, cy = min(w - 1, max(0, int(x))), min(h - 1, max(0, int(y)))
    r = max(0, int(np.ceil(radius)))
    y0, y1, x0, x1 = max(0, cy - r), min(h, cy + r + 1), max(0, cx - r), min(w, cx + r + 1)
    yy, xx = np.mgrid[y0:y1, x0:x1]
    return slice(y0, y1), slice(x0, x1), (yy - cy) ** 2 + (xx - cx) ** 2 <= radius * radius


def enforce_clicks(
    mask: np.ndarray, clicks: Sequence[Click], radius: float = CLICK_RADIUS
) -> np.ndarray:
    """Return a copy of ``mask`` with each click's disk on its side, in click order."""
    out = np.array(mask, dtype=bool, copy=True)
    for c in clicks:
        rows, cols, patch = disk(out.shape, c.x, c.y, radius)
        out[rows, cols][patch] = c.positive  # basic slicing gives a view: this writes through
    return out


def apply_locally(before: np.ndarray, after: np.ndarray, click: Click) -> np.ndarray:
    """Return ``before`` changed only where ``after`` differs from it in the click's region.

    The region is the 8-connected component of changed pixels that holds the clicked
    pixel; a recomputation's changes elsewhere are dropped. If the clicked pixel itself
    did not change, nothing does (the caller's final pass still puts it on its side).
    """
    import cv2

    changed = before != after
    h, w = changed.shape
    x, y = click.pixel(w, h)
    if not changed[y, x]:
        return before.copy()
    _, labels = cv2.connectedComponents(changed.astype(np.uint8), connectivity=8)
    region = labels == labels[y, x]
    out = before.copy()
    out[region] = after[region]
    return out


def box_ellipse(shape: tuple[int, int], box: Sequence[float]) -> np.ndarray:
    """Return the ellipse inscribed in ``box`` ([x, y, w, h]): the best guess of an object
    that its box is all we know about."""
    h, w = shape
    bx, by, bw, bh = box
    yy, xx = np.ogrid[0:h, 0:w]
    cx, cy, rx, ry = bx + bw / 2 - 0.5, by + bh / 2 - 0.5, max(bw / 2, 0.5), max(bh / 2, 0.5)
    return ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1.0


def finish(mask: np.ndarray, clicks: Sequence[Click], box: Sequence[float] | None) -> np.ndarray:
    """Return the mask a user gets: a best effort when the method found nothing in the box,
    then every click on its side, in order."""
    if box is not None and not mask.any():
        mask = box_ellipse(mask.shape, box)
    return enforce_clicks(mask, clicks)
