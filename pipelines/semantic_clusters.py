"""SemDeDup's first step: spherical k-means over the primary CLIP image embeddings.

k-means is the one part of dedup that runs in a single process. It never holds the whole side
dataset: it trains on a uniform sample of at most `MAX_POINTS_PER_CENTROID` vectors per centroid,
read shard by shard, so it holds clusters x 64 x dim x 4 bytes: 0.13 GB per million 512-d rows with
the default cluster count (one per 1,000 rows), at most 6.6 GB (the 50,000-cluster cap, reached at
50M rows). From 512 clusters it is two-level (sqrt(k) coarse clusters, then each split on its own
points), which adds one coarse cell's copy of the sample at a time. Assigning rows to the trained
centroids then happens per shard, in Beam, through an inverted file over the centroids from 512.
"""

from __future__ import annotations

import functools

import numpy as np
import pyarrow.compute as pc

from pairsmith.filters.vectors import unit
from pairsmith.pipelines.layout import Layout, read_parquet

MAX_POINTS_PER_CENTROID = 64  # faiss warns under 39; more costs time
ROWS_PER_CLUSTER = 1000  # the default cluster count: one per this many embeddings...
MAX_CLUSTERS = 50_000  # ...up to SemDeDup's count for LAION-440M (clusters then grow past 1,000 rows)
IVF_FROM_CLUSTERS = 512  # from this many clusters: two-level k-means, and an inverted file to assign
IVF_CELLS_PER_ROOT = 4  # the inverted file's cells: 4 sqrt(k), of ~sqrt(k) / 4 centroids each...
IVF_NPROBE = 3  # ...3 of them searched: near-duplicates split less often than nprobe 8 of sqrt(k)
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
    """`requested` (`dedup.semantic_clusters`) when set, else one cluster per ROWS_PER_CLUSTER vectors
    up to MAX_CLUSTERS; at least one, never more clusters than vectors.

    Linear, not sub-linear, because the per-cluster search costs n x n / k products: with k ~ sqrt(n)
    it is the search that grows with the square (benchmarks/dedup_scale.py). What k-means and the
    assignment cost per row is kept in check by `spherical_kmeans` and `centroid_index` instead."""
    return max(1, min(vectors, requested or min(MAX_CLUSTERS, -(-vectors // ROWS_PER_CLUSTER))))


def sample_size(k: int, vectors: int) -> int:
    """Vectors k-means trains on: MAX_POINTS_PER_CENTROID per cluster, at most all of them."""
    return min(vectors, k * MAX_POINTS_PER_CENTROID)


def spherical_kmeans(sample: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Unit centroids (k x dim) of spherical k-means on unit vectors: flat under IVF_FROM_CLUSTERS;
    above, two-level: sqrt(k) coarse clusters, then each split into its share of the k on its own
    points, so that training costs sample x 2 sqrt(k) products per iteration, not sample x k (the
    sample grows with k, so flat k-means grows with the square of the rows)."""
    if k < IVF_FROM_CLUSTERS:
        return _flat_kmeans(sample, k, seed)
    sample = np.ascontiguousarray(sample, dtype=np.float32)
    coarse = _flat_kmeans(sample, int(np.sqrt(k)), seed)
    parents = nearest_centroid(centroid_index(coarse), sample)
    order = np.argsort(parents, kind="stable")
    ends = np.cumsum(np.bincount(parents, minlength=len(coarse)))
    shares = np.diff(ends * k // ends[-1], prepend=0)  # sums to k; never more than a cell's points
    centroids, start = [], 0
    for cell, (end, share) in enumerate(zip(ends.tolist(), shares.tolist(), strict=True)):
        if share:
            centroids.append(_flat_kmeans(sample[order[start:end]], share, seed + 1 + cell))
        start = end
    return np.concatenate(centroids)


def _flat_kmeans(sample: np.ndarray, k: int, seed: int) -> np.ndarray:
    """faiss's spherical k-means."""
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
    """A faiss index over the centroids: exact under IVF_FROM_CLUSTERS, above that an inverted file
    over 4 sqrt(k) coarse cells of which IVF_NPROBE are searched, so assigning a row costs ~4 sqrt(k)
    products (most of them one matrix product with the cells), not k (k grows with the rows)."""
    import faiss

    centroids = np.ascontiguousarray(centroids, dtype=np.float32)
    k, dim = centroids.shape
    if k < IVF_FROM_CLUSTERS:
        index = faiss.IndexFlatIP(dim)
    else:
        cells = int(IVF_CELLS_PER_ROOT * np.sqrt(k))
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, cells, faiss.METRIC_INNER_PRODUCT)
        index.cp.min_points_per_centroid = 1  # the coarse cells train on the centroids themselves
        index.cp.niter = KMEANS_ITERATIONS
        index.train(centroids)
        index.nprobe = IVF_NPROBE
    index.add(centroids)
    return index


def nearest_centroid(index, vectors: np.ndarray) -> np.ndarray:
    """Index of the closest centroid (largest inner product) for each unit vector."""
    return index.search(np.ascontiguousarray(vectors, dtype=np.float32), 1)[1][:, 0]
