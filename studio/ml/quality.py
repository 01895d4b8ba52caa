"""Image quality metrics on pixels (numpy and scipy only, no Django)."""

from __future__ import annotations

import numpy as np
from PIL import Image as PILImage
from scipy import ndimage

WORK_SIZE = 512  # metrics are computed at this longest side, so they compare across sizes


def image_quality(img: PILImage.Image) -> dict[str, float]:
    """Return brightness, contrast, sharpness, colourfulness, aspect ratio and megapixels."""
    width, height = img.size
    work = img.convert("RGB")
    work.thumbnail((WORK_SIZE, WORK_SIZE))
    rgb = np.asarray(work, dtype=np.float32)
    luma = rgb @ np.array([0.299, 0.587, 0.114], np.float32)
    rg = rgb[..., 0] - rgb[..., 1]
    yb = 0.5 * (rgb[..., 0] + rgb[..., 1]) - rgb[..., 2]
    colourfulness = float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))
    return {
        "brightness": float(luma.mean()),
        "contrast": float(luma.std()),
        "sharpness": float(ndimage.laplace(luma).var()),
        "colourfulness": colourfulness,
        "aspect_ratio": float(width / height),
        "megapixels": float(width * height / 1e6),
    }


def project_2d(vectors: np.ndarray, *, seed: int = 0, tsne_limit: int = 5000) -> np.ndarray:
    """Project vectors to 2-D for the map: PCA to 50 dims, then t-SNE (PCA alone when large)."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    x = np.asarray(vectors, dtype=np.float32)
    n = len(x)
    if n == 0:
        return np.zeros((0, 2), np.float32)
    if n < 4:
        return np.column_stack([np.arange(n), np.zeros(n)]).astype(np.float32)
    reduced = PCA(n_components=min(50, n - 1, x.shape[1]), random_state=seed).fit_transform(x)
    if n > tsne_limit:
        return reduced[:, :2].astype(np.float32)
    perplexity = float(max(2, min(30, (n - 1) // 3)))
    coords = TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(reduced)
    return coords.astype(np.float32)
