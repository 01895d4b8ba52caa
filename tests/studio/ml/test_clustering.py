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
from tests.studio.ml.known_classes import blobs, pattern_set, photo_set

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
    assert cl.suggest_k(vectors, seed=1) == 8


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


def _path_on_the_sphere(n: int, d: int = 256, turn: float = 1.5 * np.pi) -> np.ndarray:
    """Vectors along a great circle: neighbours at ~0.99 cosine, the ends far apart."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, d))
    a /= np.linalg.norm(a)
    b -= a * (a @ b)
    b /= np.linalg.norm(b)
    t = np.linspace(0, turn, n)[:, None]
    x = np.cos(t) * a + np.sin(t) * b + 0.02 * rng.standard_normal((n, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_near_duplicate_groups_do_not_chain():
    """1,500 images each like the next but not like the far end: no group of all of them."""
    x = _path_on_the_sphere(1500)
    groups = cl.near_duplicate_groups(x, threshold=0.85)
    for group in groups:
        kept = group[0]
        assert min(float(x[m] @ x[kept]) for m in group) >= 0.85
    kept = len(x) - sum(len(g) - 1 for g in groups)
    assert kept >= 10  # the path turns through 270 degrees: at least ten far-apart stretches
    assert sorted(i for g in groups for i in g) == sorted(set(i for g in groups for i in g))


def test_the_best_copy_leads_its_group():
    """Most pixels first, then sharper (10% steps), then less compressed, then earlier."""
    pixels = np.array([100, 400, 400, 400, 400, 400])
    sharpness = np.array([900.0, 50.0, 500.0, 520.0, 500.0, np.nan])
    bytes_per_pixel = np.array([1.0, 1.0, 0.2, 0.1, 0.2, 3.0])
    # 2 and 3 are within 10% of each other, so 2 (less compressed) wins; 4 ties 2 but is later.
    assert cl.best_copy_order(pixels, sharpness, bytes_per_pixel).tolist() == [2, 4, 3, 1, 5, 0]
    x = np.tile(np.eye(3, dtype=np.float32)[0], (6, 1))
    order = cl.best_copy_order(pixels, sharpness, bytes_per_pixel)
    assert cl.near_duplicate_groups(x, order=order)[0][0] == 2


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


@pytest.fixture(scope="module")
def photo_sets():
    """Real embeddings of augmented views of 6 and of 10 distinct photos (the issue's counts)."""
    backbone = load_backbone("efficientnet_lite0")
    return {k: (backbone.embed(photo_set(k)[0]), k) for k in (6, 10)}


@pytest.mark.parametrize(
    "name", ["photos-6", "photos-10", "patterns-5", "blobs-2", "blobs-7-unequal", "blobs-10"]
)
def test_the_suggested_cluster_count_is_the_known_class_count(name, photo_sets):
    """Exact on photos, generated patterns and blobs (the old method said 12 for ten photos,
    6 for seven unequal blobs, 12 for ten blobs: docs/curation.md has the whole table)."""
    kind, k, *rest = name.split("-")
    k = int(k)
    if kind == "photos":
        vectors, _ = photo_sets[k]
    elif kind == "patterns":
        vectors = load_backbone("efficientnet_lite0").embed(pattern_set(k)[0])
    else:
        unequal = bool(rest)
        vectors, _ = blobs(k, seed=k, unequal=unequal, spread=1.2 if unequal else 0.9)
    assert cl.suggest_k(vectors) == k
