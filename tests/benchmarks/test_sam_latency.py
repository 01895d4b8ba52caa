"""SAM prompt latency with the image embedding cached vs the full set_image + predict path.

Random weights are fine for timing. Both paths run in the same process on the same image;
the ratio is full-path time / cached-click time (goal >= 20x).
"""

from __future__ import annotations

import os
import statistics
import time

import numpy as np
import pytest
import skimage.data
import torch
from segment_anything import SamPredictor

from studio.ml.sam import SamSession, build_sam

pytestmark = pytest.mark.benchmark
ARCHS = os.environ.get("BENCH_SAM_ARCHS", "tiny,vit_b").split(",")
CLICKS = int(os.environ.get("BENCH_SAM_CLICKS", 20))


@pytest.mark.parametrize("arch", ARCHS)
def test_cached_click_vs_full_path(arch, capsys):
    torch.manual_seed(0)
    model = build_sam(arch).eval()
    image = skimage.data.astronaut()
    rng = np.random.default_rng(0)
    clicks = [(float(x), float(y)) for x, y in rng.uniform(20, 490, size=(CLICKS, 2))]

    full = []
    predictor = SamPredictor(model)
    for click in clicks[:3]:
        t = time.perf_counter()
        predictor.set_image(image)
        predictor.predict(
            point_coords=np.array([click], np.float32),
            point_labels=np.array([1]),
            multimask_output=True,
        )
        full.append(time.perf_counter() - t)

    session = SamSession(model)
    session.predict("img", image, positive=[clicks[0]])  # the one encoder run
    cached = []
    for click in clicks:
        t = time.perf_counter()
        session.predict("img", positive=[click])
        cached.append(time.perf_counter() - t)
    f, c = statistics.median(full), statistics.median(cached)
    with capsys.disabled():
        print(f"\nSAM {arch} on CPU, 512x512 photo: full set_image+predict {f * 1000:.0f} ms, "
              f"cached click {c * 1000:.1f} ms, ratio {f / c:.0f}x (goal >= 20x)")  # fmt: skip
