"""SemDeDup's first step: spherical k-means over the primary CLIP image embeddings.

k-means is the one part of dedup that runs in a single process. It never holds the whole side
dataset: it trains on a uniform sample of at most `MAX_POINTS_PER_CENTROID` vectors per centroid
(faiss's own cap), read shard by shard, so its memory is clusters x 256 x dim x 4 bytes whatever the
dataset size. Assigning rows to the trained centroids then happens per shard, in Beam.
"""

from __future__ import annotations

import numpy as np

from pairsmith.pipelines.layout import Layout, read_parquet

MAX_POINTS_PER_CENTROID = 256
ROWS_PER_CLUSTER = 1000  # the default cluster count: one per this many embeddings


def shard_embeddings(layout: Layout, alias: str, shard: str) -> tuple[np.ndarray, np.ndarray]:
    """(row numbers with an embedding, their unit image embeddings as float32)."""
    column = read_parquet(layout.side_shard(f"embeddings/{alias}", shard)).column("image_embedding")
    valid = np.flatnonzero(~np.asarray(column.is_null()))
    if not len(valid):
        return valid, np.zeros((0, 0), np.float32)
    vectors = np.asarray(column.take(valid).to_pylist(), dtype=np.float32)
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    return valid, vectors


def _counts(layout: Layout, alias: str, shards: list[str]) -> list[int]:
    columns = (
        read_parquet(layout.side_shard(f"embeddings/{alias}", s)).column("image_embedding") for s in shards
    )
    return [len(c) - c.null_count for c in columns]


def cluster_count(requested: int, vectors: int) -> int:
    """`requested`, or one cluster per ROWS_PER_CLUSTER vectors; never more clusters than vectors."""
    return max(1, min(vectors, requested or -(-vectors // ROWS_PER_CLUSTER)))


def spherical_kmeans(sample: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Unit centroids (k x dim) of faiss's spherical k-means (20 iterations) on unit vectors."""
    import faiss

    kmeans = faiss.Kmeans(
        sample.shape[1],
        k,
        niter=20,
        spherical=True,
        seed=seed,
        max_points_per_centroid=MAX_POINTS_PER_CENTROID,
    )
    kmeans.train(np.ascontiguousarray(sample, dtype=np.float32))
    return kmeans.centroids


def train_centroids(
    layout: Layout, alias: str, shards: list[str], requested: int, seed: int
) -> np.ndarray | None:
    """Centroids from a uniform sample of the side dataset, read shard by shard; None without embeddings."""
    counts = _counts(layout, alias, shards)
    total = sum(counts)
    if total == 0:
        return None
    k = cluster_count(requested, total)
    chosen = np.sort(
        np.random.default_rng(seed).choice(total, size=min(total, k * MAX_POINTS_PER_CENTROID), replace=False)
    )
    sample, offset = [], 0
    for shard, count in zip(shards, counts, strict=True):
        picked = chosen[(chosen >= offset) & (chosen < offset + count)] - offset
        offset += count
        if len(picked):
            sample.append(shard_embeddings(layout, alias, shard)[1][picked])
    return spherical_kmeans(np.concatenate(sample), k, seed)


def nearest_centroid(centroids: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """Index of the closest centroid (largest inner product) for each unit vector."""
    import faiss

    index = faiss.IndexFlatIP(centroids.shape[1])
    index.add(np.ascontiguousarray(centroids, dtype=np.float32))
    return index.search(np.ascontiguousarray(vectors), 1)[1][:, 0]
