"""Clustering, nearest neighbours, near-duplicates and outliers over embedding vectors.

Functions on float32 arrays of L2-normalised vectors: FAISS for neighbour search,
scikit-learn for k-means, HDBSCAN and the k suggestion's score. No Django.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


class ClusteringError(ValueError):
    """A request that cannot be met with these vectors (said in words a user can act on)."""


@dataclass(frozen=True)
class KMeansResult:
    labels: np.ndarray  # int64 [N]
    centroids: np.ndarray  # float32 [k, D]
    inertia: float  # sum of squared distances to the assigned centroid


def _as_f32(vectors: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(vectors, dtype=np.float32)


def kmeans(
    vectors: np.ndarray,
    k: int,
    *,
    iterations: int = 20,
    seed: int = 0,
    init: np.ndarray | None = None,
    tol: float = 1e-4,
) -> KMeansResult:
    """Lloyd's k-means from ``init`` centroids, or from k distinct points drawn with ``seed``.

    scikit-learn's Lloyd implementation is used: on the CPUs measured it was about twice
    as fast as FAISS's k-means for the same iterations (docs/benchmarks.md).
    """
    from sklearn.cluster import KMeans

    x = _as_f32(vectors)
    n = len(x)
    if k < 1:
        raise ClusteringError("Ask for at least one cluster.")
    if k > n:
        raise ClusteringError(f"Cannot make {k} clusters from {n} images; ask for at most {n}.")
    if init is None:
        init = x[np.random.default_rng(seed).choice(n, size=k, replace=False)]
    model = KMeans(k, init=_as_f32(init), n_init=1, max_iter=iterations, tol=tol, algorithm="lloyd")
    model.fit(x)
    return KMeansResult(
        model.labels_.astype(np.int64),
        model.cluster_centers_.astype(np.float32),
        float(model.inertia_),
    )


def suggest_k(
    vectors: np.ndarray, *, candidates: list[int] | None = None, seed: int = 0, sample: int = 5000
) -> int:
    """Suggest a number of clusters: the candidate with the best silhouette on a sample."""
    from sklearn.metrics import silhouette_score

    x = _as_f32(vectors)
    n = len(x)
    if n < 3:
        raise ClusteringError("At least three embedded images are needed to suggest clusters.")
    if candidates is None:
        candidates = sorted(
            {k for k in (2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 25, 32, 40, 50) if k < n}
        )
    rng = np.random.default_rng(seed)
    idx = rng.choice(n, size=min(n, sample), replace=False)
    best, best_score = candidates[0], -2.0
    for k in candidates:
        result = kmeans(x, k, seed=seed)
        labels = result.labels[idx]
        if len(np.unique(labels)) < 2:
            continue
        score = silhouette_score(x[idx], labels, metric="cosine")
        if score > best_score:
            best, best_score = k, score
    return best


def hdbscan(vectors: np.ndarray, *, min_cluster_size: int = 5) -> np.ndarray:
    """Density-based clusters; label -1 is the "unclustered" bucket."""
    from sklearn.cluster import HDBSCAN

    x = _as_f32(vectors)
    if len(x) < max(2, min_cluster_size):
        raise ClusteringError(f"HDBSCAN needs at least {max(2, min_cluster_size)} embedded images.")
    return (
        HDBSCAN(min_cluster_size=min_cluster_size, metric="euclidean", copy=True)
        .fit_predict(x)
        .astype(np.int64)
    )


def representatives(
    vectors: np.ndarray,
    labels: np.ndarray,
    centroids: np.ndarray | None = None,
    per_cluster: int = 6,
) -> dict[int, list[int]]:
    """Return, per cluster label, the row indices nearest its centroid (best first)."""
    x = _as_f32(vectors)
    out: dict[int, list[int]] = {}
    for label in np.unique(labels):
        if label < 0:
            continue
        rows = np.nonzero(labels == label)[0]
        centre = centroids[label] if centroids is not None else x[rows].mean(axis=0)
        order = np.argsort(((x[rows] - centre) ** 2).sum(axis=1))
        out[int(label)] = rows[order[:per_cluster]].tolist()
    return out


def knn(
    vectors: np.ndarray,
    k: int = 10,
    *,
    exact: bool = True,
    queries: np.ndarray | None = None,
    nprobe: int = 16,
) -> tuple[np.ndarray, np.ndarray]:
    """Cosine k nearest neighbours of each query (default: every vector) among ``vectors``.

    Exact search is a flat inner-product index; approximate search is an IVF index with
    about sqrt(N) lists of which ``nprobe`` are visited. Returns (similarities, indices),
    each [Q, k]; a query that is itself in ``vectors`` finds itself first.
    """
    import faiss

    x = _as_f32(vectors)
    q = x if queries is None else _as_f32(queries)
    k = min(k, len(x))
    if exact or len(x) < 4096:
        index = faiss.IndexFlatIP(x.shape[1])
    else:
        nlist = int(4 * np.sqrt(len(x)))
        quantizer = faiss.IndexFlatIP(x.shape[1])
        index = faiss.IndexIVFFlat(quantizer, x.shape[1], nlist, faiss.METRIC_INNER_PRODUCT)
        index.train(
            x[np.random.default_rng(0).choice(len(x), size=min(len(x), 64 * nlist), replace=False)]
        )
        index.nprobe = nprobe
    index.add(x)
    return index.search(q, k)


Neighbours = tuple[np.ndarray, np.ndarray]  # (similarities [N, k], indices [N, k]) from knn()


def near_duplicate_groups(
    vectors: np.ndarray, threshold: float = 0.85, k: int = 10, neighbours: Neighbours | None = None
) -> list[list[int]]:
    """Group rows whose cosine similarity is at least ``threshold`` (connected components)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    x = _as_f32(vectors)
    n = len(x)
    if n < 2:
        return []
    sims, idx = neighbours if neighbours is not None else knn(x, k=min(k, n))
    rows = np.repeat(np.arange(n), idx.shape[1])
    keep = (sims.ravel() >= threshold) & (idx.ravel() != rows) & (idx.ravel() >= 0)
    graph = coo_matrix((np.ones(keep.sum()), (rows[keep], idx.ravel()[keep])), shape=(n, n))
    count, labels = connected_components(graph, directed=False)
    groups = [np.nonzero(labels == c)[0].tolist() for c in range(count)]
    return sorted((g for g in groups if len(g) > 1), key=lambda g: (-len(g), g[0]))


def _without_self(neighbours: Neighbours) -> tuple[np.ndarray, np.ndarray]:
    """Drop each row's own entry (it finds itself first, but exact ties may reorder)."""
    sims, idx = neighbours
    own = idx == np.arange(len(idx))[:, None]
    order = np.argsort(own, axis=1, kind="stable")  # own entry last
    sims = np.take_along_axis(sims, order, axis=1)[:, :-1]
    idx = np.take_along_axis(idx, order, axis=1)[:, :-1]
    return sims, idx


def outlier_scores(
    vectors: np.ndarray, k: int = 5, neighbours: Neighbours | None = None
) -> np.ndarray:
    """Mean cosine distance to the k nearest other vectors: higher is more unusual."""
    x = _as_f32(vectors)
    if len(x) < 2:
        return np.zeros(len(x), np.float32)
    if neighbours is None:
        neighbours = knn(x, k=min(k + 1, len(x)))
    sims, _ = _without_self(neighbours)
    return (1.0 - sims[:, :k]).mean(axis=1).astype(np.float32)


def uniqueness(neighbours: Neighbours, n: int) -> np.ndarray:
    """1 − similarity to the nearest other vector (1 for a lone vector)."""
    if n < 2:
        return np.ones(n, np.float32)
    sims, _ = _without_self(neighbours)
    return (1.0 - sims[:, 0]).astype(np.float32)
