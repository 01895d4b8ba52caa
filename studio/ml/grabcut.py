"""GrabCut pre-annotation: a mask from a box and/or ordered clicks, without model weights.

Used when no Segment Anything checkpoint is installed. OpenCV's GrabCut models the
foreground and background colours and cuts along edges. How Studio drives it:

- **Bounded time.** The cut runs on the image shrunk to ``WORK_SIDE`` pixels on its long
  side, with a fixed number of iterations; the result is brought back to full size.
- **One click grows to the object.** The first positive click (without a box) seeds a
  cut over the whole frame, so a large or long object is found from one click.
- **Each later click refines, locally.** A click recomputes the cut in a window around
  it, with itself as a sure seed and the region around it that looks like it starting on
  the side it asked for; of what changed, only the connected region holding the click
  is kept (``clicks.apply_locally``), no farther from it than ``REACH`` times its
  distance to its own side.
- **The last click wins** (``clicks.finish``), and a box on an object GrabCut cannot
  separate gives the box's ellipse rather than nothing.
- **Deterministic.** GrabCut seeds its colour models with k-means from OpenCV's random
  generator, which is per thread; it is reseeded right before each cut, in the thread
  that runs it, so the same request gives the same mask in any thread.

No Django here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from studio.ml.clicks import Click, apply_locally, disk, finish, ordered_clicks

WORK_SIDE = 384  # long side of the image the cut runs on
ITERATIONS = 2
START_PATCH = 0.05  # radius of the patch a first click starts from, share of the short side
REACH = 2.5  # a later click changes pixels up to this many times its distance to its side
MIN_REACH = 0.05  # ... and at least this share of the short side
COLLAPSED = 0.1  # a cut that moved less than this share of the similar region gave up
SEED_RADIUS = 1.0  # sure-seed disk around a click, in work pixels


class _Work:
    """The image shrunk for the cut, and conversions between full and work sizes."""

    def __init__(self, image: np.ndarray) -> None:
        import cv2

        rgb = image[..., :3] if image.ndim == 3 else np.stack([image] * 3, -1)
        self.h, self.w = rgb.shape[:2]
        scale = min(1.0, WORK_SIDE / max(self.h, self.w))
        self.sh, self.sw = max(1, round(self.h * scale)), max(1, round(self.w * scale))
        self.full = np.ascontiguousarray(rgb, dtype=np.uint8)
        small = (
            self.full
            if scale == 1.0
            else cv2.resize(self.full, (self.sw, self.sh), interpolation=cv2.INTER_AREA)
        )
        self.small = small.astype(np.float32)
        self.bgr = cv2.cvtColor(small, cv2.COLOR_RGB2BGR)
        self.fx, self.fy = self.sw / self.w, self.sh / self.h
        self._lab = None

    def lab(self) -> np.ndarray:
        import cv2

        if self._lab is None:
            smooth = cv2.GaussianBlur(self.bgr, (0, 0), 1.0)
            self._lab = cv2.cvtColor(smooth.astype(np.float32) / 255.0, cv2.COLOR_BGR2Lab)
        return self._lab

    def click(self, c: Click) -> Click:
        return Click(c.x * self.fx, c.y * self.fy, c.positive)

    def box(self, box):
        x, y, w, h = box
        return (x * self.fx, y * self.fy, w * self.fx, h * self.fy)

    def down(self, mask: np.ndarray) -> np.ndarray:
        import cv2

        if mask.shape == (self.sh, self.sw):
            return mask.copy()
        small = cv2.resize(
            mask.astype(np.uint8) * 255, (self.sw, self.sh), interpolation=cv2.INTER_AREA
        )
        return small >= 128

    def up(self, mask: np.ndarray, *, edges: bool = True, window=None) -> np.ndarray:
        """Return the work-size ``mask`` at full size, its edge placed by the full image.

        Plain interpolation puts the edge up to a work pixel off (several full pixels on a
        large image: much of a thin object). Pixels within a work pixel of the edge go to
        the side whose nearby colour (the mean of the sure pixels around) they are closer to.
        ``window`` (y0, y1, x0, x1) limits the work to those full-size rows and columns.
        """
        import cv2

        y0, y1, x0, x1 = window or (0, self.h, 0, self.w)
        if mask.shape == (self.h, self.w):
            return mask[y0:y1, x0:x1].copy()
        # Sample the work mask at the centres of the full pixels (cv2.resize's convention),
        # for the window only.
        map_x = (np.arange(x0, x1, dtype=np.float32) + 0.5) * self.fx - 0.5
        map_y = (np.arange(y0, y1, dtype=np.float32) + 0.5) * self.fy - 0.5
        soft = cv2.remap(
            mask.astype(np.float32),
            np.ascontiguousarray(np.broadcast_to(map_x[None, :], (y1 - y0, x1 - x0))),
            np.ascontiguousarray(np.broadcast_to(map_y[:, None], (y1 - y0, x1 - x0))),
            cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )
        out = soft >= 0.5
        band = (soft > 0.0) & (soft < 1.0)
        if not edges or not band.any():
            return out
        # The colours of the sure pixels nearby, averaged at work size (cheap), read at
        # each band pixel's place.
        kernel = np.ones((3, 3), np.uint8)
        means = []
        for sure in (mask, ~mask):
            sure = cv2.erode(sure.astype(np.uint8), kernel).astype(np.float32)
            weight = cv2.boxFilter(sure, -1, (5, 5), normalize=False)
            total = cv2.boxFilter(self.small * sure[..., None], -1, (5, 5), normalize=False)
            means.append((total / np.maximum(weight, 1e-6)[..., None], weight > 0))
        (fg, has_fg), (bg, has_bg) = means
        ys, xs = np.nonzero(band)
        wy = np.minimum(((ys + y0 + 0.5) * self.fy).astype(int), self.sh - 1)
        wx = np.minimum(((xs + x0 + 0.5) * self.fx).astype(int), self.sw - 1)
        colour = self.full[ys + y0, xs + x0].astype(np.float32)
        closer = ((colour - fg[wy, wx]) ** 2).sum(1) < ((colour - bg[wy, wx]) ** 2).sum(1)
        decide = has_fg[wy, wx] & has_bg[wy, wx]
        out[ys[decide], xs[decide]] = closer[decide]
        return out


def _cut(bgr: np.ndarray, trimap: np.ndarray) -> np.ndarray:
    import cv2

    if not ((trimap == cv2.GC_FGD) | (trimap == cv2.GC_PR_FGD)).any():
        return np.zeros(trimap.shape, bool)
    if not ((trimap == cv2.GC_BGD) | (trimap == cv2.GC_PR_BGD)).any():
        return np.ones(trimap.shape, bool)
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(0)  # per thread, and this thread runs the cut: see the module docstring
    cv2.grabCut(
        np.ascontiguousarray(bgr), trimap, None, bgd, fgd, ITERATIONS, cv2.GC_INIT_WITH_MASK
    )
    return (trimap == cv2.GC_FGD) | (trimap == cv2.GC_PR_FGD)


def _seed(trimap: np.ndarray, c: Click, radius: float = SEED_RADIUS) -> None:
    import cv2

    value = cv2.GC_FGD if c.positive else cv2.GC_BGD
    cv2.circle(trimap, (int(c.x), int(c.y)), int(round(radius)), int(value), -1)


def _component_at(mask: np.ndarray, c: Click) -> np.ndarray:
    import cv2

    x, y = c.pixel(mask.shape[1], mask.shape[0])
    if not mask[y, x]:
        return np.zeros_like(mask)
    _, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    return labels == labels[y, x]


def _outside_box(shape, box) -> np.ndarray:
    h, w = shape
    x, y, bw, bh = box
    out = np.ones(shape, bool)
    x0, y0 = max(0, int(np.floor(x))), max(0, int(np.floor(y)))
    x1, y1 = min(w, int(np.ceil(x + bw))), min(h, int(np.ceil(y + bh)))
    out[y0:y1, x0:x1] = False
    return out


def _start(work: _Work, box, first: Click | None) -> np.ndarray:
    """Return the work-size mask of a box, or of a first positive click alone."""
    import cv2

    trimap = np.full((work.sh, work.sw), cv2.GC_PR_BGD, np.uint8)
    if box is not None:
        outside = _outside_box(trimap.shape, work.box(box))
        trimap[~outside] = cv2.GC_PR_FGD
        trimap[outside] = cv2.GC_BGD
        return _cut(work.bgr, trimap)
    c = work.click(first)
    region = _similar_region(work.lab(), c)
    # At least a patch around the click starts as foreground: on a textured object the
    # clicked colour alone is a poor model of the object's colours.
    rows, cols, patch = disk(region.shape, c.x, c.y, START_PATCH * min(work.sh, work.sw))
    trimap[region] = cv2.GC_PR_FGD
    trimap[rows, cols][patch] = cv2.GC_PR_FGD
    _seed(trimap, c)
    mask = _component_at(_cut(work.bgr, trimap), c)
    # A cut that shrank to its seed could not separate the object (a faint one): the
    # region that looks like the click is the best guess.
    return region | mask if mask.sum() < COLLAPSED * region.sum() else mask


LADDER = tuple(3.0 * 1.25**k for k in range(14))  # colour distances tried, Lab units
MIN_REGION = 40  # work pixels


def _similar_region(lab: np.ndarray, c: Click, allowed: np.ndarray | None = None) -> np.ndarray:
    """Return the region around the click whose colour is close to the clicked colour.

    It grows with the colour distance allowed; the distance kept is the one just before
    the largest relative jump in area, where the region leaks into what surrounds it.
    """
    import cv2

    h, w = lab.shape[:2]
    x, y = c.pixel(w, h)
    y0, y1, x0, x1 = max(0, y - 2), min(h, y + 3), max(0, x - 2), min(w, x + 3)
    ref = np.median(lab[y0:y1, x0:x1].reshape(-1, 3), axis=0)
    dist = np.linalg.norm(lab - ref, axis=2)
    if allowed is not None:
        dist[~allowed] = np.inf
    regions, areas = [], []
    for tau in LADDER:
        inside = (dist < tau).astype(np.uint8)
        if not inside[y, x]:
            regions.append(None)
            areas.append(0)
            continue
        _, labels = cv2.connectedComponents(inside, connectivity=4)
        region = labels == labels[y, x]
        regions.append(region)
        areas.append(int(region.sum()))
        if areas[-1] >= 0.9 * h * w:
            break
    best, worst_jump = None, np.inf
    for k in range(len(areas) - 1):
        if areas[k] < MIN_REGION:
            continue
        jump = areas[k] / max(1, areas[k + 1])
        if jump < worst_jump:
            best, worst_jump = k, jump
    if best is None:
        return np.zeros((h, w), bool)
    return regions[best]


def _refine(work: _Work, before: np.ndarray, box, clicks: list[Click]) -> np.ndarray:
    """Return the work-size mask after the last of ``clicks`` (the others came before).

    The click's reach is bounded: it changes nothing farther than ``REACH`` times its
    distance to the nearest pixel already on its side (a click in the middle of a wide
    missed part reaches far, one on a thin sliver stays near), and the cut runs on a
    window twice that size, with colour models of the click's surroundings.
    """
    import cv2

    h, w = before.shape
    last = work.click(clicks[-1])
    x, y = last.pixel(w, h)
    its_side = before if last.positive else ~before
    if its_side.any():
        gap = cv2.distanceTransform((~its_side).astype(np.uint8), cv2.DIST_L2, 3)[y, x]
        reach = max(MIN_REACH * min(h, w), REACH * float(gap))
    else:
        reach = float(max(h, w))
    half = int(np.ceil(2 * reach))
    y0, y1, x0, x1 = max(0, y - half), min(h, y + half + 1), max(0, x - half), min(w, x + half + 1)
    window = (slice(y0, y1), slice(x0, x1))
    part = before[window]
    trimap = np.where(part, cv2.GC_PR_FGD, cv2.GC_PR_BGD).astype(np.uint8)
    if box is not None:
        trimap[_outside_box(before.shape, work.box(box))[window]] = cv2.GC_BGD
    shifted = [Click(c.x - x0, c.y - y0, c.positive) for c in (work.click(c) for c in clicks)]
    here = shifted[-1]
    # The region around the click that looks like it goes to the click's side before the
    # colour models are learnt: without it the models still hold the region's colour on
    # the old side, and the cut moved little more than the seed.
    region = _similar_region(work.lab()[window], here, allowed=~part if here.positive else part)
    trimap[region] = cv2.GC_PR_FGD if here.positive else cv2.GC_PR_BGD
    for c in shifted:
        _seed(trimap, c)
    after = apply_locally(part, _cut(work.bgr[window], trimap), here)
    if (after != part).sum() < COLLAPSED * region.sum():
        # The cut cannot separate the colours here (a faint object): the region that
        # looks like the click is the best guess.
        after = part.copy()
        after[region] = here.positive
    rows, cols, near = disk(part.shape, here.x, here.y, reach)
    out = before.copy()
    reached = np.zeros(part.shape, bool)
    reached[rows, cols] = near
    out[window][reached] = after[reached]
    return out


def grabcut_mask(
    image: np.ndarray,
    *,
    box: tuple[float, float, float, float] | None = None,
    clicks: Sequence[Click] = (),
    positive: Sequence[tuple[float, float]] = (),
    negative: Sequence[tuple[float, float]] = (),
    previous: np.ndarray | None = None,
    previous_clicks: int = 0,
) -> np.ndarray:
    """Return a boolean [H, W] mask for the object in ``box`` ([x, y, w, h]) and/or at the clicks.

    ``clicks`` are in the order they were made; ``positive`` and ``negative`` are read as
    positives first, then negatives. The clicks are applied one by one, each to the mask
    the clicks before it gave; with ``previous`` (that mask after the first
    ``previous_clicks`` clicks) only the later ones are applied, and the result is the
    same as sending them all.
    """
    clicks = ordered_clicks(clicks, positive, negative)
    work = _Work(image)
    if previous is not None:
        if previous.shape != (work.h, work.w):
            raise ValueError("The previous mask is not the image's size.")
        full, done = previous.astype(bool), min(max(0, previous_clicks), len(clicks))
    elif box is not None:
        full, done = finish(work.up(_start(work, box, None)), [], box), 0
    else:
        # Clicks before the first positive one have nothing to take away from yet.
        first = next((i for i, c in enumerate(clicks) if c.positive), None)
        if first is None:
            raise ValueError("GrabCut needs a box or at least one positive click.")
        done = first + 1
        full = finish(work.up(_start(work, None, clicks[first])), clicks[:done], None)
    for i in range(done, len(clicks)):
        small = work.down(full)
        refined = _refine(work, small, box, clicks[: i + 1])
        full = finish(_merge(work, full, small, refined), clicks[: i + 1], None)
    # The box's ellipse stands in only for a box GrabCut found nothing in (above), not
    # for a mask the user's negative clicks emptied.
    return finish(full, clicks, None)


def _merge(work: _Work, full: np.ndarray, before: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Return the full-size ``full`` with the changes from ``before`` to ``mask`` (both at
    work size) applied."""
    import cv2

    changed = before != mask
    if not changed.any():
        return full.copy()
    grown = cv2.dilate(changed.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    ys, xs = np.nonzero(grown)
    margin = int(np.ceil(4 / min(work.fx, work.fy)))  # room for the edge placement's means
    window = (
        max(0, int(ys.min() / work.fy) - margin),
        min(work.h, int((ys.max() + 1) / work.fy) + margin + 1),
        max(0, int(xs.min() / work.fx) - margin),
        min(work.w, int((xs.max() + 1) / work.fx) + margin + 1),
    )
    region = work.up(grown, edges=False, window=window)
    y0, y1, x0, x1 = window
    out = full.copy()
    out[y0:y1, x0:x1][region] = work.up(mask, window=window)[region]
    return out
