"""Stored embeddings read back: a space's vectors from its shards, and nearest neighbours
through a FAISS index cached per process.

Writing them is the embed job's work (``embeddings.py``); curation reads them through
here (``curation.py``), so neither of those two imports the other for vectors.
"""

from __future__ import annotations

import io

import numpy as np
from django.core.files.storage import default_storage

from annotation.models import EmbeddingShard, EmbeddingSpace, ImageEmbedding
from studio.errors import ApplicationError
from studio.models import Image


def vectors_for(
    space: EmbeddingSpace, image_ids: list[int] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Return (image ids, float32 vectors [N, D]) for the space, optionally for some images."""
    rows = ImageEmbedding.objects.filter(space=space)
    if image_ids is not None:
        rows = rows.filter(image_id__in=image_ids)
    by_shard: dict[int, list[tuple[int, int]]] = {}
    for image_id, shard_id, row in rows.values_list("image_id", "shard_id", "row"):
        by_shard.setdefault(shard_id, []).append((image_id, row))
    ids, parts = [], []
    for shard in EmbeddingShard.objects.filter(pk__in=by_shard):
        with default_storage.open(shard.file.name, "rb") as fh:
            matrix = np.load(io.BytesIO(fh.read()), allow_pickle=False)
        picks = by_shard[shard.pk]
        ids += [i for i, _ in picks]
        parts.append(matrix[[r for _, r in picks]])
    if not parts:
        return np.zeros(0, np.int64), np.zeros((0, space.dim), np.float32)
    return np.asarray(ids, np.int64), np.concatenate(parts)


_INDEX_CACHE: dict[tuple[int, str], tuple[np.ndarray, object]] = {}


def space_index(space: EmbeddingSpace):
    """Return (image ids, FAISS inner-product index) for a space, cached per process.

    The key includes the newest shard, so new embeddings are picked up; only the latest
    index per space is kept. Shards are only ever added to a space, never changed.
    """
    import faiss

    # Shard files have random names, so the newest one identifies the space's contents.
    latest = space.shards.order_by("-pk").values_list("file", flat=True).first() or ""
    key = (space.pk, latest)
    if key not in _INDEX_CACHE:
        ids, vectors = vectors_for(space)
        index = faiss.IndexFlatIP(space.dim)
        index.add(vectors)
        for old in [k for k in _INDEX_CACHE if k[0] == space.pk]:
            del _INDEX_CACHE[old]
        _INDEX_CACHE[key] = (ids, index)
    return _INDEX_CACHE[key]


def similar_images(*, space: EmbeddingSpace, image: Image, k: int = 12) -> list[tuple[int, float]]:
    """Return up to k (image id, cosine similarity) nearest to the image, itself excluded."""
    ids, index = space_index(space)
    where = np.nonzero(ids == image.pk)[0]
    if len(where) == 0:
        raise ApplicationError(
            f"This image has no {space.backbone} embedding yet; embed its dataset first."
        )
    query = index.reconstruct(int(where[0])).reshape(1, -1)
    scores, found = index.search(query, min(k + 1, len(ids)))
    return [
        (int(ids[j]), float(s))
        for s, j in zip(scores[0], found[0], strict=True)
        if j >= 0 and ids[j] != image.pk
    ][:k]
