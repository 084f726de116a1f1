"""SemDeDup's first step: spherical k-means over the primary CLIP image embeddings.

k-means is the one part of dedup that runs in a single process. It never holds the whole side
dataset: it trains on a uniform sample of at most `MAX_POINTS_PER_CENTROID` vectors per centroid,
read shard by shard, so it holds clusters x 64 x dim x 4 bytes (0.13 GB per million 512-d rows with
the default cluster count). Assigning rows to the trained centroids then happens per shard, in Beam.
"""

from __future__ import annotations

import functools

import numpy as np
import pyarrow.compute as pc

from pairsmith.filters.vectors import unit
from pairsmith.pipelines.layout import Layout, read_parquet

MAX_POINTS_PER_CENTROID = 64  # faiss warns under 39; more costs time (k grows with the rows)
ROWS_PER_CLUSTER = 1000  # the default cluster count: one per this many embeddings
IVF_FROM_CLUSTERS = 512
KMEANS_ITERATIONS = (
    10  # the clusters only bucket the search: near-duplicates land together long before convergence
)


def shard_embeddings(layout: Layout, alias: str, shard: str) -> tuple[np.ndarray, np.ndarray]:
    """(row numbers with an embedding, their unit image embeddings as float32)."""
    column = read_parquet(layout.side_shard(f"embeddings/{alias}", shard)).column("image_embedding")
    valid = np.flatnonzero(~np.asarray(column.is_null()))
    if not len(valid):
        return valid, np.zeros((0, 0), np.float32)
    values = pc.list_flatten(column.take(valid)).to_numpy(zero_copy_only=False)
    return valid, unit(values.reshape(len(valid), -1))


def _counts(layout: Layout, alias: str, shards: list[str]) -> list[int]:
    columns = (
        read_parquet(layout.side_shard(f"embeddings/{alias}", s)).column("image_embedding") for s in shards
    )
    return [len(c) - c.null_count for c in columns]


def cluster_count(requested: int, vectors: int) -> int:
    """`requested`, or one cluster per ROWS_PER_CLUSTER vectors; never more clusters than vectors."""
    return max(1, min(vectors, requested or -(-vectors // ROWS_PER_CLUSTER)))


def sample_size(k: int, vectors: int) -> int:
    """Vectors k-means trains on: MAX_POINTS_PER_CENTROID per cluster, at most all of them."""
    return min(vectors, k * MAX_POINTS_PER_CENTROID)


def spherical_kmeans(sample: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Unit centroids (k x dim) of faiss's spherical k-means on unit vectors."""
    import faiss

    kmeans = faiss.Kmeans(
        sample.shape[1],
        k,
        niter=KMEANS_ITERATIONS,
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
    chosen = np.sort(np.random.default_rng(seed).choice(total, size=sample_size(k, total), replace=False))
    sample, offset = [], 0
    for shard, count in zip(shards, counts, strict=True):
        picked = chosen[(chosen >= offset) & (chosen < offset + count)] - offset
        offset += count
        if len(picked):
            sample.append(shard_embeddings(layout, alias, shard)[1][picked])
    return spherical_kmeans(np.concatenate(sample), k, seed)


@functools.lru_cache(maxsize=2)
def load_centroid_index(path: str):
    """`centroid_index` over the centroids saved at `path` (any fsspec URL), loaded once per process."""
    import fsspec

    with fsspec.open(path, "rb") as f:
        return centroid_index(np.load(f))


def centroid_index(centroids: np.ndarray):
    """A faiss index over the centroids: exact for a few hundred, an inverted file over sqrt(k) coarse
    cells above that, so assigning n rows costs n x ~sqrt(k) products, not n x k (k grows with n)."""
    import faiss

    centroids = np.ascontiguousarray(centroids, dtype=np.float32)
    k, dim = centroids.shape
    if k < IVF_FROM_CLUSTERS:
        index = faiss.IndexFlatIP(dim)
    else:
        cells = int(np.sqrt(k))
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, cells, faiss.METRIC_INNER_PRODUCT)
        index.cp.min_points_per_centroid = 1  # the coarse cells train on the centroids themselves
        index.train(centroids)
        index.nprobe = 8
    index.add(centroids)
    return index


def nearest_centroid(index, vectors: np.ndarray) -> np.ndarray:
    """Index of the closest centroid (largest inner product) for each unit vector."""
    return index.search(np.ascontiguousarray(vectors, dtype=np.float32), 1)[1][:, 0]
