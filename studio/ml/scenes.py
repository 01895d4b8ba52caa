"""Generated scenes with known object masks and slice metadata.

Each scene is a deterministic function of its seed: a textured background with a few
objects (circle, square, triangle), rendered under a lighting condition, with a blur
level and an object-size range. The masks are exact, so later stages can train and
evaluate on them and check per-slice metrics against a known truth. No Django here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

CLASSES = ("circle", "square", "triangle")
LIGHTING = {"bright": 1.35, "normal": 1.0, "dark": 0.4}
BLUR = {"none": 0.0, "low": 1.2, "high": 3.0}
OBJECT_SIZE = {"small": (0.06, 0.10), "medium": (0.11, 0.17), "large": (0.18, 0.26)}
PALETTE = np.array(
    [[220, 60, 50], [40, 150, 220], [250, 200, 40], [90, 190, 90], [170, 80, 200]], float
)


@dataclass
class SceneObject:
    label: str
    mask: np.ndarray  # bool [H, W]

    @property
    def box(self) -> tuple[int, int, int, int]:
        """Return (x0, y0, x1, y1), inclusive-exclusive."""
        ys, xs = np.nonzero(self.mask)
        return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


@dataclass
class Scene:
    seed: int
    image: np.ndarray  # uint8 [H, W, 3]
    objects: list[SceneObject] = field(default_factory=list)
    metadata: dict = field(default_factory=dict)


def _shape_mask(kind: str, h: int, w: int, cy: float, cx: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    if kind == "circle":
        return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
    if kind == "square":
        return (np.abs(yy - cy) <= r * 0.85) & (np.abs(xx - cx) <= r * 0.85)
    # Upward triangle inscribed in the circle of radius r.
    top, bottom = cy - r, cy + r * 0.6
    half = (yy - top) / (bottom - top) * r * 0.95
    return (yy >= top) & (yy <= bottom) & (np.abs(xx - cx) <= half)


def render_scene(seed: int, size: tuple[int, int] = (192, 256)) -> Scene:
    """Render the scene for this seed; the same seed always gives the same pixels and masks."""
    rng = np.random.default_rng(seed)
    h, w = size
    lighting = list(LIGHTING)[seed % 3]
    blur = list(BLUR)[(seed // 3) % 3]
    obj_size = list(OBJECT_SIZE)[(seed // 9) % 3]
    base = rng.uniform(70, 160, size=3)
    noise = ndimage.gaussian_filter(rng.normal(0, 25, size=(h, w)), 6)
    gradient = np.linspace(-20, 20, w)[None, :]
    canvas = np.clip(base[None, None, :] + (noise + gradient)[..., None], 0, 255)
    objects: list[SceneObject] = []
    occupied = np.zeros((h, w), bool)
    lo, hi = OBJECT_SIZE[obj_size]
    for _ in range(int(rng.integers(1, 4))):
        kind = CLASSES[int(rng.integers(len(CLASSES)))]
        r = rng.uniform(lo, hi) * min(h, w)
        cy, cx = rng.uniform(r, h - r), rng.uniform(r, w - r)
        mask = _shape_mask(kind, h, w, cy, cx, r) & ~occupied
        if mask.sum() < 20:
            continue
        colour = PALETTE[int(rng.integers(len(PALETTE)))]
        canvas[mask] = colour
        occupied |= mask
        objects.append(SceneObject(kind, mask))
    canvas = canvas * LIGHTING[lighting]
    if BLUR[blur]:
        canvas = ndimage.gaussian_filter(canvas, sigma=(BLUR[blur], BLUR[blur], 0))
    image = np.clip(canvas + rng.normal(0, 3, canvas.shape), 0, 255).astype(np.uint8)
    metadata = {
        "source": "generated",
        "scene_seed": seed,
        "lighting": lighting,
        "blur": blur,
        "object_size": obj_size,
        "objects": len(objects),
    }
    return Scene(seed=seed, image=image, objects=objects, metadata=metadata)
