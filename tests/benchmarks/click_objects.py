"""Generated objects with exact masks, composited onto scikit-image's bundled photos.

For the click protocol (tests/benchmarks/test_click_protocol.py) and the smart tool's
unit tests. Each object is a deterministic function of its index: the same index always
gives the same pixels and mask, on any machine (numpy's PCG64 and scikit-image's
in-package photos, no download). The set is built to be hard where GrabCut is weak:
blobs, thin and long shapes, objects with holes, low-contrast objects, textured objects,
large objects, on textured photo backgrounds; every fifth image is 960 px or more on its
long side, so the work on large images is measured too.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
from scipy import ndimage

KINDS = ("blob", "thin", "long", "ring", "holes", "low_contrast", "textured", "large")


@dataclass
class ClickObject:
    index: int
    kind: str
    image: np.ndarray  # uint8 [H, W, 3]
    mask: np.ndarray  # bool [H, W], exact

    @property
    def box(self) -> tuple[int, int, int, int]:
        """Return [x, y, w, h] of the mask's bounding box."""
        ys, xs = np.nonzero(self.mask)
        return (
            int(xs.min()),
            int(ys.min()),
            int(xs.max() - xs.min() + 1),
            int(ys.max() - ys.min() + 1),
        )


@cache
def _photos() -> tuple[np.ndarray, ...]:
    import skimage.data as data

    def tint(grey, rgb):
        return np.clip(grey[..., None] * np.asarray(rgb)[None, None, :], 0, 255).astype(np.uint8)

    return (
        data.astronaut(),
        data.coffee(),
        data.chelsea(),
        data.rocket(),
        data.hubble_deep_field(),
        data.immunohistochemistry(),
        data.retina(),
        tint(data.brick(), (1.0, 0.8, 0.7)),
        tint(data.grass(), (0.7, 1.0, 0.6)),
        tint(data.gravel(), (0.9, 0.9, 1.0)),
        tint(data.camera(), (1.0, 1.0, 1.0)),
    )


def _resize(rgb: np.ndarray, h: int, w: int) -> np.ndarray:
    import cv2

    return cv2.resize(
        rgb, (w, h), interpolation=cv2.INTER_AREA if rgb.shape[0] > h else cv2.INTER_CUBIC
    )


def _crop(rng: np.random.Generator, photo: np.ndarray, h: int, w: int) -> np.ndarray:
    """Return an h×w view of a random part of the photo (zoomed 1-2x), resized to h×w."""
    ph, pw = photo.shape[:2]
    scale = min(ph / h, pw / w) * rng.uniform(0.5, 1.0)
    ch, cw = max(8, int(h * scale)), max(8, int(w * scale))
    y, x = int(rng.integers(0, ph - ch + 1)), int(rng.integers(0, pw - cw + 1))
    return _resize(photo[y : y + ch, x : x + cw], h, w)


def _blob(rng, h, w, cy, cx, radius, wobble=0.25) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(float)
    theta = np.arctan2(yy - cy, xx - cx)
    r = np.ones_like(theta)
    for k in range(2, 6):
        r += rng.uniform(0, wobble / k) * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    return np.hypot(yy - cy, xx - cx) <= radius * r


def _curve(rng, h, w, thickness, length_share) -> np.ndarray:
    """A smooth curved band across the image, ``thickness`` px wide."""
    t = np.linspace(0, 1, 400)
    angle = rng.uniform(0, np.pi)
    length = length_share * np.hypot(h, w) * 0.7
    cx, cy = w / 2 + rng.uniform(-0.1, 0.1) * w, h / 2 + rng.uniform(-0.1, 0.1) * h
    along = (t - 0.5) * length
    bend = rng.uniform(0.05, 0.18) * length * np.sin(np.pi * t * rng.uniform(1, 2.5))
    xs = cx + along * np.cos(angle) - bend * np.sin(angle)
    ys = cy + along * np.sin(angle) + bend * np.cos(angle)
    line = np.zeros((h, w), bool)
    inside = (xs >= 0) & (xs < w) & (ys >= 0) & (ys < h)
    line[ys[inside].astype(int), xs[inside].astype(int)] = True
    return ndimage.distance_transform_edt(~line) <= thickness / 2


def _shape(rng, kind: str, h: int, w: int) -> np.ndarray:
    m = min(h, w)
    cy, cx = rng.uniform(0.35, 0.65) * h, rng.uniform(0.35, 0.65) * w
    if kind == "thin":
        return _curve(rng, h, w, thickness=rng.uniform(0.025, 0.045) * m, length_share=0.8)
    if kind == "long":
        return _curve(rng, h, w, thickness=rng.uniform(0.08, 0.14) * m, length_share=1.0)
    if kind == "large":
        return _blob(rng, h, w, h / 2, w / 2, rng.uniform(0.32, 0.4) * m)
    radius = rng.uniform(0.12, 0.24) * m
    mask = _blob(rng, h, w, cy, cx, radius)
    if kind == "ring":
        mask &= ~_blob(rng, h, w, cy, cx, radius * rng.uniform(0.45, 0.6), wobble=0.1)
    elif kind == "holes":
        for _ in range(int(rng.integers(2, 4))):
            a, d = rng.uniform(0, 2 * np.pi), rng.uniform(0.2, 0.5) * radius
            hole = _blob(rng, h, w, cy + d * np.sin(a), cx + d * np.cos(a), radius * 0.17, 0.1)
            mask &= ~hole
    return mask


def _largest_component(mask: np.ndarray) -> np.ndarray:
    labels, n = ndimage.label(mask)
    if n <= 1:
        return mask
    sizes = ndimage.sum(mask, labels, range(1, n + 1))
    return labels == 1 + int(np.argmax(sizes))


def click_object(index: int) -> ClickObject:
    """Return generated object ``index``: the same pixels and mask for the same index."""
    rng = np.random.default_rng(10_000 + index)
    kind = KINDS[index % len(KINDS)]
    big = index % 5 == 4
    h, w = (960, 1280) if big else [(384, 512), (480, 640), (512, 512), (400, 600)][index % 4]
    photos = _photos()
    background = _crop(rng, photos[int(rng.integers(len(photos)))], h, w).astype(float)
    mask = _largest_component(_shape(rng, kind, h, w))
    if kind == "textured":
        # The object's texture is another photo, so its colours overlap the background's.
        fill = _crop(rng, photos[int(rng.integers(len(photos)))], h, w).astype(float)
    elif kind == "low_contrast":
        # The background's own mean under the object, shifted a little: a faint object.
        mean = background[mask].mean(0)
        shift = rng.choice([-1, 1]) * rng.uniform(14, 22)
        fill = np.clip(mean + shift + (background - background.mean((0, 1))) * 0.5, 0, 255)
    else:
        colour = rng.uniform(20, 235, size=3)
        yy = np.linspace(-1, 1, h)[:, None, None]
        shading = 1 + rng.uniform(-0.15, 0.15) * yy
        grain = ndimage.gaussian_filter(rng.normal(0, 14, (h, w)), 1.5)[..., None]
        fill = np.clip(colour[None, None, :] * shading + grain, 0, 255)
    # Anti-aliased edge as a camera would give; the exact mask is the hard shape.
    alpha = ndimage.gaussian_filter(mask.astype(float), 0.8)[..., None]
    image = background * (1 - alpha) + fill * alpha
    image = np.clip(image + rng.normal(0, 2.5, image.shape), 0, 255).astype(np.uint8)
    return ClickObject(index=index, kind=kind, image=image, mask=mask)


def next_click(mask: np.ndarray, truth: np.ndarray) -> tuple[float, float, bool] | None:
    """Return the protocol's next click (x, y, positive) for ``mask``, or None if exact.

    The standard clicks-to-IoU protocol: the largest error region (missed object pixels or
    false positives, 8-connected), clicked at its centre (the pixel farthest from the
    region's edge, the image border counting as edge); positive if the region is missed
    object, negative if it is a false positive. Ties go to the first pixel in row order.
    """
    best = None
    for positive, error in ((True, truth & ~mask), (False, mask & ~truth)):
        if not error.any():
            continue
        labels, n = ndimage.label(error, structure=np.ones((3, 3)))
        sizes = ndimage.sum(error, labels, range(1, n + 1))
        k = int(np.argmax(sizes))
        if best is None or sizes[k] > best[0]:
            best = (sizes[k], positive, labels == k + 1)
    if best is None:
        return None
    _, positive, region = best
    inside = ndimage.distance_transform_edt(np.pad(region, 1))[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(inside)), inside.shape)
    return float(x), float(y), positive


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


def textbook_grabcut(
    image: np.ndarray, clicks: list[tuple[float, float, bool]], iterations: int = 5
) -> np.ndarray:
    """The peer: OpenCV GrabCut used the textbook way, as Studio did before issue 10.

    Every click is a sure-foreground or sure-background disk in one mask (positive disks
    first, then negative ones), the cut runs at full size with a fixed number of
    iterations, and without a box it looks inside a square of about a quarter of the
    image around the positive clicks.
    """
    import cv2

    rgb = np.ascontiguousarray(image[..., :3], dtype=np.uint8)
    h, w = rgb.shape[:2]
    positive = [(x, y) for x, y, p in clicks if p]
    negative = [(x, y) for x, y, p in clicks if not p]
    if not positive:
        return np.zeros((h, w), bool)
    pts = np.asarray(positive, dtype=float)
    span = max(20.0, 0.25 * min(h, w))
    x0, y0 = np.clip(pts.min(0) - span, 0, [w - 1, h - 1])
    x1, y1 = np.clip(pts.max(0) + span, 1, [w, h])
    x, y, bw, bh = (int(round(v)) for v in (x0, y0, x1 - x0, y1 - y0))
    mask = np.full((h, w), cv2.GC_BGD, np.uint8)
    mask[y : y + bh, x : x + bw] = cv2.GC_PR_FGD
    for px, py in positive:
        cv2.circle(mask, (int(px), int(py)), 4, int(cv2.GC_FGD), -1)
    for px, py in negative:
        cv2.circle(mask, (int(px), int(py)), 4, int(cv2.GC_BGD), -1)
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(0)
    cv2.grabCut(
        cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
        mask,
        None,
        bgd,
        fgd,
        iterations,
        cv2.GC_INIT_WITH_MASK,
    )
    return (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)
