"""Clustering, nearest neighbours, near-duplicates and outliers over embedding vectors.

Functions on float32 arrays of L2-normalised vectors: FAISS for neighbour search,
scikit-learn for k-means, HDBSCAN and the k suggestion (silhouette). No Django.
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


SUGGEST_K_MAX = 30


def suggest_k(
    vectors: np.ndarray,
    *,
    candidates: list[int] | None = None,
    seed: int = 0,
    sample: int = 2000,
    n_init: int = 4,
) -> int:
    """Suggest a number of clusters: the k with the best cosine silhouette, every k tried.

    Every k from 2 to ``SUGGEST_K_MAX`` (and at most a third of the images, so a cluster
    has about three members or more) is fitted with k-means++ and ``n_init`` restarts on a
    sample of at most ``sample`` vectors, and scored by the silhouette on that sample.
    The earlier method tried a sparse list of k (no 7, 9 or 11) with one random start
    each, so a poor start at the true k lost to a neighbour: docs/curation.md has the
    figures on sets with known class counts.
    """
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    x = _as_f32(vectors)
    n = len(x)
    if n < 3:
        raise ClusteringError("At least three embedded images are needed to suggest clusters.")
    if n > sample:
        x = x[np.sort(np.random.default_rng(seed).choice(n, size=sample, replace=False))]
        n = sample
    if candidates is None:
        candidates = list(range(2, max(2, min(SUGGEST_K_MAX, n // 3)) + 1))
    candidates = [k for k in candidates if 2 <= k < n] or [2]
    best, best_score = candidates[0], -2.0
    for k in candidates:
        labels = KMeans(k, n_init=n_init, random_state=seed).fit_predict(x)
        if len(np.unique(labels)) < 2:
            continue
        score = silhouette_score(x, labels, metric="cosine")
        if score > best_score + 1e-9:  # a tie keeps the smaller k
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


def _index(x: np.ndarray, exact: bool, nprobe: int = 16):
    """Build a FAISS inner-product index over ``x``: flat when exact or small, IVF otherwise."""
    import faiss

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
    return index


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
    x = _as_f32(vectors)
    q = x if queries is None else _as_f32(queries)
    k = min(k, len(x))
    index = _index(x, exact, nprobe)
    return index.search(q, k)


Neighbours = tuple[np.ndarray, np.ndarray]  # (similarities [N, k], indices [N, k]) from knn()


def best_copy_order(
    pixels: np.ndarray, sharpness: np.ndarray, bytes_per_pixel: np.ndarray
) -> np.ndarray:
    """Return row indices best copy first: most pixels, then sharper, then less compressed.

    Sharpness counts in steps of about 10% (a re-encoded copy's Laplacian variance wobbles
    by a few percent either way); the earlier row (the earlier upload) wins a full tie.
    A missing sharpness (NaN) ranks below any measured one.
    """
    pixels = np.asarray(pixels, np.float64)
    sharp = np.nan_to_num(np.asarray(sharpness, np.float64), nan=-1.0)
    sharp_step = np.floor(np.log1p(np.maximum(sharp, 0.0)) / np.log(1.1)) + (sharp >= 0)
    bpp = np.asarray(bytes_per_pixel, np.float64)
    rows = np.arange(len(pixels))
    # np.lexsort sorts by the last key first; negate what should be descending.
    return np.lexsort((rows, -bpp, -sharp_step, -pixels))


def near_duplicate_groups(
    vectors: np.ndarray,
    threshold: float = 0.85,
    *,
    order: np.ndarray | None = None,
    exact: bool = True,
    batch: int = 64,
) -> list[list[int]]:
    """Group rows around a kept row: each member's cosine to its group's first row >= threshold.

    Greedy, centre-based, so groups never chain (A≈B and B≈C do not put A with C unless
    C is within the threshold of the kept one): walk the rows in ``order`` (best copy
    first, see ``best_copy_order``; row order by default); an unassigned row becomes a
    centre and takes every unassigned row within the threshold of it. Each group lists
    its centre (the copy to keep) first, then members by falling similarity; only
    groups of two or more are returned, largest first. Neighbours come from a FAISS
    range search, ``batch`` centres at a time, so memory stays bounded.
    """
    x = _as_f32(vectors)
    n = len(x)
    if n < 2:
        return []
    order = np.arange(n) if order is None else np.asarray(order, np.int64)
    index = _index(x, exact)
    assigned = np.zeros(n, bool)
    groups: list[list[int]] = []
    pos = 0
    while pos < n:
        centres = []
        while pos < n and len(centres) < batch:
            if not assigned[order[pos]]:
                centres.append(int(order[pos]))
            pos += 1
        if not centres:
            break
        # FAISS keeps inner products strictly above the radius; the >= test below is exact.
        lims, sims, found = index.range_search(x[centres], float(threshold) - 1e-6)
        for c, centre in enumerate(centres):
            if assigned[centre]:
                continue  # taken by an earlier centre of this batch
            hits, hit_sims = found[lims[c] : lims[c + 1]], sims[lims[c] : lims[c + 1]]
            pick = (hit_sims >= threshold) & ~assigned[hits] & (hits != centre)
            members = hits[pick][np.argsort(-hit_sims[pick], kind="stable")]
            assigned[centre] = True
            if len(members):
                assigned[members] = True
                groups.append([centre, *members.tolist()])
    return sorted(groups, key=lambda g: (-len(g), g[0]))


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
