"""Backbones load real weights through their real loading code (studio/ml/backbones.py)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import skimage.data
import torch
from PIL import Image
from torchvision.models._meta import _IMAGENET_CATEGORIES

from studio.ml.backbones import (
    WeightsError,
    build_model,
    file_sha256,
    load_backbone,
    read_state_dict,
)

IMAGENET = _IMAGENET_CATEGORIES


def photo(name: str) -> Image.Image:
    return Image.fromarray(getattr(skimage.data, name)())


@pytest.fixture(scope="module")
def lite0():
    return load_backbone("efficientnet_lite0")


def test_efficientnet_lite0_package_weights_know_imagenet(lite0):
    scores = lite0.logits([photo("chelsea"), photo("coffee")])
    top = [[IMAGENET[i] for i in np.argsort(-row)[:3]] for row in scores]
    assert top[0][0] in {"tabby", "tiger cat", "Egyptian cat"}, top[0]
    assert top[1][0] in {"espresso", "cup", "coffee mug"}, top[1]


def test_embeddings_are_unit_length_and_similar_for_similar_images(lite0):
    cat = photo("chelsea")
    images = [
        cat,
        cat.resize((200, 133)),
        cat.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
        photo("rocket"),
    ]
    vectors = lite0.embed(images, batch_size=3)
    assert vectors.shape == (4, 1280) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    sims = vectors @ vectors[0]
    assert sims[1] > 0.9 and sims[2] > 0.8 and sims[3] < sims[2]
    # Loaders (callables) embed the same as images, and order is kept across batches.
    assert np.allclose(
        lite0.embed([lambda: images[3], lambda: images[0]], batch_size=1),
        vectors[[3, 0]],
        atol=1e-5,
    )


def test_missing_weights_file_names_the_file_and_the_folder(tmp_path):
    with pytest.raises(
        WeightsError, match=r"resnet18-f37072fd\.pth in the weights folder .*weights"
    ):
        load_backbone("resnet18", weights_dir=tmp_path / "weights")


def test_weights_file_with_the_wrong_hash_is_refused(tmp_path):
    torch.save(build_model("resnet18").state_dict(), tmp_path / "resnet18-f37072fd.pth")
    with pytest.raises(WeightsError, match="expected f37072fd"):
        load_backbone("resnet18", weights_dir=tmp_path)
    # An operator may pin the digest of a file they trust; then it loads through the same path.
    pinned = {"resnet18-f37072fd.pth": file_sha256(tmp_path / "resnet18-f37072fd.pth")}
    backbone = load_backbone("resnet18", weights_dir=tmp_path, pinned=pinned)
    assert backbone.embed([photo("coffee")]).shape == (1, 512)


@pytest.mark.parametrize(("arch", "dim"), [("resnet18", 512), ("vit_b_16", 768)])
def test_user_checkpoint_of_each_architecture_loads_and_embeds(tmp_path, arch, dim):
    model = build_model(arch)
    torch.manual_seed(0)
    if arch == "resnet18":  # a fine-tuned checkpoint with its own 3-class head
        model.fc = torch.nn.Linear(512, 3)
    path = tmp_path / f"{arch}.pt"
    torch.save({"state_dict": model.state_dict(), "epoch": torch.tensor(3)}, path)
    backbone = load_backbone(arch, checkpoint=path)
    vectors = backbone.embed([photo("astronaut"), photo("camera")])
    assert vectors.shape == (2, dim) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    # The loaded weights are the checkpoint's, not a fresh random init.
    reloaded = load_backbone(arch, checkpoint=path).embed([photo("astronaut")])
    assert np.allclose(reloaded, vectors[:1], atol=1e-5)


def test_checkpoint_of_another_architecture_or_shape_is_refused(tmp_path):
    path = tmp_path / "r18.pt"
    torch.save(build_model("resnet18").state_dict(), path)
    with pytest.raises(
        WeightsError,
        match="not a ResNet-50 .* checkpoint: .*wrong shapes|not a ResNet-50 .* missing",
    ):
        load_backbone("resnet50", checkpoint=path)
    with pytest.raises(WeightsError, match="not a ViT-B/16"):
        load_backbone("vit_b_16", checkpoint=path)


class Payload:
    def __reduce__(self):
        return (print, ("pwned",))


def test_pickled_code_and_non_torch_files_are_refused(tmp_path):
    evil = tmp_path / "evil.pt"
    torch.save({"fc.weight": torch.zeros(1), "x": Payload()}, evil)
    with pytest.raises(WeightsError, match=r"pickled objects other than tensors \(print\)"):
        read_state_dict(evil)
    raw = tmp_path / "raw.pkl"
    raw.write_bytes(pickle.dumps(Payload()))
    with pytest.raises(WeightsError):
        read_state_dict(raw)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a torch file at all")
    with pytest.raises(WeightsError, match="not a readable torch weights file"):
        read_state_dict(junk)
    empty = tmp_path / "empty.pt"
    torch.save({}, empty)
    with pytest.raises(WeightsError, match="state dict"):
        read_state_dict(empty)


def test_unknown_backbone_is_a_clear_error():
    with pytest.raises(WeightsError, match="Unknown backbone 'alexnet'"):
        load_backbone("alexnet")


def test_unreadable_images_are_reported_and_skipped_not_fatal(lite0):
    def broken():
        raise OSError("image file is truncated")

    failures: list = []
    out = list(
        lite0.iter_embed(
            [photo("coffee"), broken, photo("camera")], batch_size=2, failures=failures
        )
    )
    positions = [p for ps, _ in out for p in ps]
    assert positions == [0, 2] and failures == [(1, "OSError: image file is truncated")]
    with pytest.raises(OSError):
        lite0.embed([broken])
