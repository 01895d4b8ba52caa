"""GrabCut pre-annotation: a mask from a box and/or clicks, without any model weights.

Used when no Segment Anything checkpoint is installed. OpenCV's GrabCut models
foreground and background colours and cuts along edges; positive clicks are marked as
sure foreground, negative ones as sure background. No Django here.
"""

from __future__ import annotations

import numpy as np

CLICK_RADIUS = 4


def grabcut_mask(
    image: np.ndarray,
    *,
    box: tuple[float, float, float, float] | None = None,
    positive: list[tuple[float, float]] = (),
    negative: list[tuple[float, float]] = (),
    iterations: int = 5,
) -> np.ndarray:
    """Return a boolean [H, W] mask for the object in ``box`` ([x, y, w, h]) and/or at the clicks."""
    import cv2

    rgb = np.ascontiguousarray(
        image[..., :3] if image.ndim == 3 else np.stack([image] * 3, -1), dtype=np.uint8
    )
    h, w = rgb.shape[:2]
    if box is None and not positive:
        raise ValueError("GrabCut needs a box or at least one positive click.")
    if box is None:
        # Without a box, start from a generous square around the positive clicks.
        pts = np.asarray(positive, dtype=float)
        span = max(20.0, 0.25 * min(h, w))
        x0, y0 = np.clip(pts.min(0) - span, 0, [w - 1, h - 1])
        x1, y1 = np.clip(pts.max(0) + span, 1, [w, h])
        box = (x0, y0, x1 - x0, y1 - y0)
    x, y, bw, bh = (int(round(v)) for v in box)
    x, y = max(0, x), max(0, y)
    bw, bh = max(2, min(bw, w - x)), max(2, min(bh, h - y))
    mask = np.full((h, w), cv2.GC_BGD, np.uint8)
    mask[y : y + bh, x : x + bw] = cv2.GC_PR_FGD
    for px, py in positive:
        cv2.circle(mask, (int(px), int(py)), CLICK_RADIUS, int(cv2.GC_FGD), -1)
    for px, py in negative:
        cv2.circle(mask, (int(px), int(py)), CLICK_RADIUS, int(cv2.GC_BGD), -1)
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    # GrabCut seeds its colour models from OpenCV's process-wide random generator: without
    # a fixed seed the same click gave a different mask depending on the calls before it
    # (a full mask one time, 1 pixel and "found nothing" the next).
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
