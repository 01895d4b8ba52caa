"""Sets whose class count is known, for checking the cluster-count suggestion.

Real photos (augmented views of distinct skimage photos), generated pattern classes and
gaussian blobs in an embedding-like dimension; used by tests/studio/ml/test_clustering.py
and scripts/suggest_k_eval.py.
"""

from __future__ import annotations

import numpy as np
import skimage.data
from PIL import Image, ImageEnhance

PHOTOS = [
    "astronaut", "brick", "camera", "chelsea", "clock", "coffee", "coins", "grass", "gravel",
    "horse", "hubble_deep_field", "immunohistochemistry", "moon", "page", "retina", "rocket",
    "text", "cell",
]  # fmt: skip


def augment(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Return a random crop (70-100%), maybe mirrored, with brightness changed by up to 30%."""
    w, h = img.size
    s = rng.uniform(0.7, 1.0)
    cw, ch = int(w * s), int(h * s)
    x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    out = img.crop((x, y, x + cw, y + ch))
    if rng.random() < 0.5:
        out = out.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return ImageEnhance.Brightness(out).enhance(rng.uniform(0.7, 1.3))


def photo_set(k: int, views: int = 8, seed: int = 0) -> tuple[list[Image.Image], np.ndarray]:
    """Return ``views`` augmented views of each of k distinct skimage photos, and labels."""
    rng = np.random.default_rng(seed)
    names = [PHOTOS[i] for i in np.random.default_rng(k).permutation(len(PHOTOS))[:k]]
    images, labels = [], []
    for c, name in enumerate(names):
        src = Image.fromarray(getattr(skimage.data, name)()).convert("RGB")
        for _ in range(views):
            images.append(augment(src, rng))
            labels.append(c)
    return images, np.array(labels)


def _pattern(kind: int, rng: np.random.Generator, size: int = 160) -> np.ndarray:
    """Draw one image of pattern class ``kind`` with random colours, scale and phase."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    f = rng.uniform(4, 8)
    p = rng.uniform(0, 2 * np.pi)
    cx, cy = rng.uniform(0.3, 0.7, 2)
    r = np.hypot(xx - cx, yy - cy)
    fields = [
        np.sin(2 * np.pi * f * xx + p),  # vertical stripes
        np.sin(2 * np.pi * f * yy + p),  # horizontal stripes
        np.sign(np.sin(2 * np.pi * f * xx) * np.sin(2 * np.pi * f * yy)),  # checkerboard
        np.sin(2 * np.pi * f * r + p),  # rings
        (r < rng.uniform(0.2, 0.35)) * 2.0 - 1,  # a disc
        (np.maximum(abs(xx - cx), abs(yy - cy)) < rng.uniform(0.15, 0.3)) * 2.0 - 1,  # a square
        np.sin(2 * np.pi * f * (xx + yy) / 1.4 + p),  # diagonal stripes
        np.sin(np.arctan2(yy - cy, xx - cx) * 6 + p),  # a star of rays
        np.sign(np.sin(2 * np.pi * f * xx)) * (yy > cy) * 2.0 - 1 + (yy <= cy),  # half stripes
        rng.standard_normal((size, size)),  # noise
        (abs(xx - cx) < 0.06) | (abs(yy - cy) < 0.06),  # a cross
        np.sin(2 * np.pi * (f / 2) * r**0.5 + 4 * np.arctan2(yy - cy, xx - cx)),  # a spiral
    ]
    v = np.asarray(fields[kind], np.float64)
    v = (v - v.min()) / (np.ptp(v) or 1)
    a, b = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    return (a + (b - a) * v[..., None]).astype(np.uint8)


def pattern_set(k: int, per: int = 10, seed: int = 0) -> tuple[list[Image.Image], np.ndarray]:
    """Return ``per`` generated images of each of k pattern classes, and labels."""
    rng = np.random.default_rng(seed)
    images = [Image.fromarray(_pattern(c, rng)) for c in range(k) for _ in range(per)]
    return images, np.repeat(np.arange(k), per)


def blobs(
    k: int,
    *,
    d: int = 512,
    per: int = 30,
    spread: float = 0.9,
    seed: int = 0,
    unequal: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Return L2-normalised gaussian blobs around k random centres in d dimensions."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((k, d))
    sizes = rng.integers(per // 3, per * 2, k) if unequal else np.full(k, per)
    x = np.concatenate(
        [c + spread * rng.standard_normal((s, d)) * np.linalg.norm(c) / np.sqrt(d)
         for c, s in zip(centres, sizes, strict=True)]
    )  # fmt: skip
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32), np.repeat(np.arange(k), sizes)
