"""Clustering, neighbours, near-duplicates and outliers (studio/ml/clustering.py)."""

from __future__ import annotations

import io

import numpy as np
import pytest
import skimage.data
from PIL import Image, ImageEnhance
from sklearn.metrics import normalized_mutual_info_score

from studio.ml import clustering as cl
from studio.ml.backbones import load_backbone

SOURCES = [
    "astronaut",
    "chelsea",
    "coffee",
    "rocket",
    "camera",
    "coins",
    "brick",
    "hubble_deep_field",
]


def _augment(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    w, h = img.size
    scale = rng.uniform(0.7, 1.0)
    cw, ch = int(w * scale), int(h * scale)
    x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    out = img.crop((x, y, x + cw, y + ch))
    if rng.random() < 0.5:
        out = out.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return ImageEnhance.Brightness(out).enhance(rng.uniform(0.7, 1.3))


@pytest.fixture(scope="module")
def labelled():
    """A generated set of distinct classes: 6 augmented views of each of 8 photos."""
    rng = np.random.default_rng(0)
    images, labels = [], []
    for label, name in enumerate(SOURCES):
        src = Image.fromarray(getattr(skimage.data, name)()).convert("RGB")
        for _ in range(6):
            images.append(_augment(src, rng))
            labels.append(label)
    vectors = load_backbone("efficientnet_lite0").embed(images)
    return vectors, np.array(labels)


def test_kmeans_on_pretrained_embeddings_recovers_the_classes(labelled):
    vectors, labels = labelled
    result = cl.kmeans(vectors, 8, seed=1)
    assert normalized_mutual_info_score(labels, result.labels) >= 0.8
    reps = cl.representatives(vectors, result.labels, result.centroids, per_cluster=3)
    assert set(reps) == set(np.unique(result.labels).tolist()) and all(
        len(r) <= 3 for r in reps.values()
    )
    assert 6 <= cl.suggest_k(vectors, candidates=[2, 4, 6, 8, 10, 12, 16], seed=1) <= 10


def test_hdbscan_finds_groups_and_an_unclustered_bucket(labelled):
    vectors, labels = labelled
    rng = np.random.default_rng(3)
    strays = rng.standard_normal((4, vectors.shape[1])).astype(
        np.float32
    )  # far from all, and each other
    strays /= np.linalg.norm(strays, axis=1, keepdims=True)
    found = cl.hdbscan(np.concatenate([vectors, strays]), min_cluster_size=4)
    assert (found[-4:] == -1).all()
    assert normalized_mutual_info_score(labels, found[:-4]) >= 0.8


def _jpeg_copy(img: Image.Image, size, quality) -> Image.Image:
    out = io.BytesIO()
    img.resize(size).save(out, "JPEG", quality=quality)
    return Image.open(io.BytesIO(out.getvalue())).convert("RGB")


def test_near_duplicates_are_resized_or_re_encoded_copies():
    backbone = load_backbone("efficientnet_lite0")
    cat = Image.fromarray(skimage.data.chelsea())
    rocket = Image.fromarray(skimage.data.rocket())
    images = [cat, _jpeg_copy(cat, (225, 150), 40), rocket, _jpeg_copy(rocket, (320, 214), 60),
              Image.fromarray(skimage.data.coffee()), Image.fromarray(skimage.data.astronaut())]  # fmt: skip
    groups = cl.near_duplicate_groups(backbone.embed(images))  # default threshold 0.85
    assert groups == [[0, 1], [2, 3]]


def test_the_odd_one_out_has_the_highest_outlier_score():
    rng = np.random.default_rng(1)
    cat = Image.fromarray(skimage.data.chelsea())
    views = [_augment(cat, rng) for _ in range(8)] + [
        Image.fromarray(skimage.data.text()).convert("RGB")
    ]
    scores = cl.outlier_scores(load_backbone("efficientnet_lite0").embed(views), k=3)
    assert int(np.argmax(scores)) == 8 and scores[8] > 2 * np.median(scores[:8])


def test_approximate_neighbours_have_high_recall_on_clustered_vectors():
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((200, 64)).astype(np.float32)
    x = centres[rng.integers(0, 200, 20_000)] + 0.3 * rng.standard_normal((20_000, 64)).astype(
        np.float32
    )
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    _, exact = cl.knn(x, 10, exact=True, queries=x[:500])
    _, approx = cl.knn(x, 10, exact=False, queries=x[:500])
    recall = np.mean([len(set(a) & set(e)) / 10 for a, e in zip(approx, exact, strict=True)])
    assert recall >= 0.95


def test_impossible_requests_are_clear_errors():
    x = np.eye(4, dtype=np.float32)
    with pytest.raises(cl.ClusteringError, match="Cannot make 5 clusters from 4 images"):
        cl.kmeans(x, 5)
    with pytest.raises(cl.ClusteringError, match="at least 5"):
        cl.hdbscan(x, min_cluster_size=5)
    with pytest.raises(cl.ClusteringError, match="three"):
        cl.suggest_k(x[:2])
