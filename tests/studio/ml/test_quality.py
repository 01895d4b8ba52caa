"""Quality metrics and the 2-D projection (studio/ml/quality.py)."""

from __future__ import annotations

import numpy as np
import skimage.data
from PIL import Image, ImageFilter

from studio.ml.quality import image_quality, project_2d


def test_metrics_rank_images_the_way_people_would():
    photo = Image.fromarray(skimage.data.astronaut())
    blurred = photo.filter(ImageFilter.GaussianBlur(4))
    dark = Image.fromarray((skimage.data.astronaut() * 0.3).astype(np.uint8))
    grey = Image.fromarray(skimage.data.camera()).convert("RGB")
    q, b, d, g = (image_quality(i) for i in (photo, blurred, dark, grey))
    assert b["sharpness"] < q["sharpness"] / 5
    assert d["brightness"] < q["brightness"] / 2 and d["contrast"] < q["contrast"]
    assert g["colourfulness"] < 1 < q["colourfulness"]
    wide = image_quality(Image.new("RGB", (400, 100)))
    assert wide["aspect_ratio"] == 4 and wide["megapixels"] == 0.04 and wide["sharpness"] == 0


def test_projection_keeps_groups_apart():
    rng = np.random.default_rng(0)
    a = rng.normal(0, 0.1, (40, 64)) + 5
    b = rng.normal(0, 0.1, (40, 64)) - 5
    coords = project_2d(np.concatenate([a, b]))
    assert coords.shape == (80, 2)
    ca, cb = coords[:40].mean(0), coords[40:].mean(0)
    spread = max(coords[:40].std(0).max(), coords[40:].std(0).max())
    assert np.linalg.norm(ca - cb) > 3 * spread
    assert project_2d(np.zeros((0, 8))).shape == (0, 2) and project_2d(np.ones((2, 8))).shape == (
        2,
        2,
    )


def test_sharpness_finds_the_blurred_generated_scenes():
    from studio.ml.scenes import render_scene

    by_blur: dict[str, list[float]] = {}
    for seed in range(27):
        scene = render_scene(seed)
        by_blur.setdefault(scene.metadata["blur"], []).append(
            image_quality(Image.fromarray(scene.image))["sharpness"]
        )
    medians = {k: float(np.median(v)) for k, v in by_blur.items()}
    assert medians["high"] < medians["low"] < medians["none"]
