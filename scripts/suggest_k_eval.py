"""Measure the cluster-count suggestion against sets whose class count is known.

Prints one row per set: the true count, and what ``suggest_k`` (and, with --old, the
method it replaced) suggests. Sets: real photos (augmented views of distinct skimage
photos, embedded with EfficientNet-Lite0), generated pattern classes (embedded the same
way) and gaussian blobs in 512 dimensions, equal and unequal sizes. The figures are in
docs/curation.md.

    DEBUG=1 .venv/bin/python -m scripts.suggest_k_eval --old
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from tests.studio.ml.known_classes import blobs, pattern_set, photo_set


def old_suggest_k(vectors: np.ndarray, seed: int = 0, sample: int = 5000) -> int:
    """The method replaced in issue 9: a sparse k list, one random start per k."""
    from sklearn.metrics import silhouette_score

    from studio.ml.clustering import kmeans

    n = len(vectors)
    candidates = sorted({k for k in (2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 25, 32, 40, 50) if k < n})
    idx = np.random.default_rng(seed).choice(n, size=min(n, sample), replace=False)
    best, best_score = candidates[0], -2.0
    for k in candidates:
        labels = kmeans(vectors, k, seed=seed).labels[idx]
        if len(np.unique(labels)) < 2:
            continue
        score = silhouette_score(vectors[idx], labels, metric="cosine")
        if score > best_score:
            best, best_score = k, score
    return best


def all_sets(embed: bool = True):
    """Yield (name, vectors, labels) for every evaluation set."""
    if embed:
        from studio.ml.backbones import load_backbone

        backbone = load_backbone("efficientnet_lite0")
        for k in (3, 4, 6, 8, 10, 12, 15):
            images, labels = photo_set(k)
            yield f"photos, {k} classes", backbone.embed(images), labels
        for k in (3, 5, 6, 8, 10, 12):
            images, labels = pattern_set(k)
            yield f"generated patterns, {k} classes", backbone.embed(images), labels
    for k in (2, 3, 4, 6, 8, 10, 12):
        yield f"blobs, {k} equal", *blobs(k, seed=k)
    for k in (3, 5, 7, 9, 11):
        yield f"blobs, {k} unequal", *blobs(k, seed=k, unequal=True, spread=1.2)


def main() -> None:
    from studio.ml.clustering import suggest_k

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", action="store_true", help="also run the replaced method")
    parser.add_argument("--no-embed", action="store_true", help="blobs only (no backbone)")
    args = parser.parse_args()
    right = old_right = total = 0
    print(
        "| set | classes | old suggestion | suggestion | seconds |\n| --- | --- | --- | --- | --- |"
    )
    for name, vectors, labels in all_sets(embed=not args.no_embed):
        true = len(np.unique(labels))
        old = old_suggest_k(vectors) if args.old else None
        start = time.perf_counter()
        new = suggest_k(vectors)
        took = time.perf_counter() - start
        total += 1
        right += new == true
        old_right += old == true
        print(
            f"| {name} | {true} | {old if old is not None else '—'} | {new} | {took:.1f} |",
            flush=True,
        )
    print(f"\nexact: {right}/{total}" + (f" (old: {old_right}/{total})" if args.old else ""))


if __name__ == "__main__":
    main()
