"""GrabCut masks against the generated scenes' exact masks (studio/ml/grabcut.py)."""

from __future__ import annotations

import numpy as np
import pytest

from studio.ml.grabcut import grabcut_mask
from studio.ml.scenes import render_scene


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


def test_a_box_around_an_object_gives_its_mask():
    scores = []
    for seed in (9, 10, 12, 18, 19, 21):  # sharp and lightly blurred scenes of every lighting
        scene = render_scene(seed)
        obj = scene.objects[0]
        x0, y0, x1, y1 = obj.box
        box = (x0 - 4, y0 - 4, x1 - x0 + 8, y1 - y0 + 8)
        scores.append(iou(grabcut_mask(scene.image, box=box), obj.mask))
    assert np.median(scores) >= 0.8, scores


def test_a_click_alone_finds_the_object():
    scene = render_scene(18)
    obj = scene.objects[0]
    ys, xs = np.nonzero(obj.mask)
    click = (float(xs.mean()), float(ys.mean()))
    assert iou(grabcut_mask(scene.image, positive=[click]), obj.mask) >= 0.6
    with pytest.raises(ValueError, match="box or at least one positive click"):
        grabcut_mask(scene.image)


def test_the_same_prompt_gives_the_same_mask_whatever_ran_before():
    """OpenCV's generator is process-wide: other GrabCut calls must not change this one.

    A box of sky in skimage's camera is an ambiguous prompt, where the colour models'
    random start decides the result (it went 1, 4, 1, 4 pixels between calls).
    """
    import skimage.data

    camera = np.stack([skimage.data.camera()] * 3, axis=-1)
    astronaut = skimage.data.astronaut()
    box = (20, 20, 200, 200)
    first = grabcut_mask(camera, box=box)
    for _ in range(4):
        grabcut_mask(astronaut, box=(50, 50, 100, 100))  # any other call in between
        assert np.array_equal(grabcut_mask(camera, box=box), first)
