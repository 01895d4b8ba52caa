"""k-means and k-nearest-neighbour search on 100,000 × 512 vectors vs scikit-learn.

Vectors are a mixture of 1,000 Gaussian clusters on the unit sphere, like image
embeddings. Both sides get the same data (and, for k-means, the same initial centroids),
in the same process; each figure is a median over repeats because this stage is noisy.
"""

from __future__ import annotations

import os
import statistics
import time

import numpy as np
import pytest

from studio.ml import clustering as cl

pytestmark = pytest.mark.benchmark
N = int(os.environ.get("BENCH_VECTORS", 100_000))
D, K_CLUSTERS, ITERS = 512, 100, 20
REPEATS = int(os.environ.get("BENCH_REPEATS", 5))


def _vectors(n: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((1000, D)).astype(np.float32)
    x = centres[rng.integers(0, 1000, n)] + 0.6 * rng.standard_normal((n, D)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_kmeans_vs_sklearn(capsys):
    import faiss
    from sklearn.cluster import KMeans

    x = _vectors(N)
    rng = np.random.default_rng(1)
    studio_t, sk_t, faiss_t, ratios = [], [], [], []
    for _ in range(REPEATS):
        init = x[rng.choice(N, K_CLUSTERS, replace=False)]
        t = time.perf_counter()
        ours = cl.kmeans(x, K_CLUSTERS, iterations=ITERS, init=init, tol=0)
        studio_t.append(time.perf_counter() - t)
        t = time.perf_counter()
        sk = KMeans(K_CLUSTERS, init=init, n_init=1, max_iter=ITERS, tol=0, algorithm="lloyd").fit(
            x
        )
        sk_t.append(time.perf_counter() - t)
        ratios.append(ours.inertia / sk.inertia_)
        t = time.perf_counter()
        fk = faiss.Kmeans(D, K_CLUSTERS, niter=ITERS, max_points_per_centroid=N)
        fk.train(x, init_centroids=init)
        faiss_t.append(time.perf_counter() - t)
    s, k, f = statistics.median(studio_t), statistics.median(sk_t), statistics.median(faiss_t)
    with capsys.disabled():
        print(f"\nk-means {N}x{D}, k={K_CLUSTERS}, {ITERS} iterations, median of {REPEATS}: "
              f"Studio {s:.2f} s, scikit-learn {k:.2f} s: speed-up {k / s:.2f}x (goal >= 1.0), "
              f"inertia ratio {statistics.median(ratios):.4f} (goal within 1%); "
              f"FAISS k-means for reference {f:.2f} s ({k / f:.2f}x)")  # fmt: skip


def test_knn_vs_sklearn(capsys):
    from sklearn.neighbors import NearestNeighbors

    x = _vectors(N)
    queries = int(os.environ.get("BENCH_KNN_QUERIES", N))
    q = x[:queries]
    exact_t, approx_t, sk_t, recalls = [], [], [], []
    for _ in range(max(1, REPEATS // 2)):
        t = time.perf_counter()
        _, exact = cl.knn(x, 10, exact=True, queries=q)
        exact_t.append(time.perf_counter() - t)
        t = time.perf_counter()
        _, approx = cl.knn(x, 10, exact=False, queries=q)
        approx_t.append(time.perf_counter() - t)
        t = time.perf_counter()
        NearestNeighbors(n_neighbors=10, algorithm="brute", metric="cosine").fit(x).kneighbors(q)
        sk_t.append(time.perf_counter() - t)
        hits = (approx[:, :, None] == exact[:, None, :]).any(axis=2).sum(axis=1)
        recalls.append(float(hits.mean() / 10))
    e, a, k = statistics.median(exact_t), statistics.median(approx_t), statistics.median(sk_t)
    with capsys.disabled():
        print(f"\nk=10 neighbours of {queries} queries among {N}x{D}: scikit-learn brute cosine {k:.1f} s; "
              f"Studio exact {e:.1f} s ({k / e:.2f}x, goal >= 1.3x); Studio IVF {a:.1f} s "
              f"({k / a:.2f}x, goal >= 5x) with recall@10 {statistics.median(recalls):.3f} (goal >= 0.95)")  # fmt: skip
