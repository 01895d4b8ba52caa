"""Segment Anything through its real loading path, with a tiny model built by the test."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data
import torch

from studio.ml.backbones import WeightsError
from studio.ml.sam import SamSession, build_sam, load_sam, sam_checkpoint_path


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("sam") / "sam_tiny.pth"
    torch.save(build_sam("tiny").state_dict(), path)
    return path


def test_tiny_sam_loads_and_caches_the_image_embedding(tiny_checkpoint):
    session = SamSession(load_sam("tiny", tiny_checkpoint))
    image = skimage.data.astronaut()
    masks, scores = session.predict("astro", image, positive=[(256, 200)], box=(150, 50, 200, 300))
    assert masks.shape == (3, 512, 512) and masks.dtype == bool and scores.shape == (3,)
    assert (np.diff(scores) <= 0).all()
    # Further prompts on the same image reuse the embedding: the encoder ran once.
    session.predict("astro", positive=[(100, 100)], negative=[(300, 300)], multimask=False)
    session.predict("astro", box=(10, 10, 100, 100))
    assert session.encoder_runs == 1
    with pytest.raises(KeyError):
        session.predict("never-seen", positive=[(1, 1)])


def test_wrong_or_missing_sam_checkpoints_are_clear_errors(tiny_checkpoint, tmp_path):
    with pytest.raises(WeightsError, match="not a SAM vit_b checkpoint"):
        load_sam("vit_b", tiny_checkpoint)
    with pytest.raises(WeightsError, match=r"sam_vit_b_01ec64\.pth in the weights folder"):
        sam_checkpoint_path("vit_b", tmp_path)
    (tmp_path / "sam_vit_b_01ec64.pth").write_bytes(b"not the real thing")
    with pytest.raises(WeightsError, match="official SHA-256"):
        sam_checkpoint_path("vit_b", tmp_path)
