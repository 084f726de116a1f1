"""SemDeDup's first step: spherical k-means over the primary CLIP image embeddings.

k-means is the one part of dedup that runs in a single process. It never holds the whole side
dataset: it trains on a uniform sample of at most `MAX_POINTS_PER_CENTROID` vectors per centroid,
read shard by shard, so it holds clusters x 64 x dim x 4 bytes: 0.13 GB per million 512-d rows with
the default cluster count (one per 1,000 rows), at most 6.6 GB (the 50,000-cluster cap, reached at
50M rows). From 512 clusters it is two-level (sqrt(k) coarse clusters, then each split on its own
points), which adds one coarse cell's copy of the sample at a time. Assigning rows to the trained
centroids then happens per shard, in Beam; from 512 centroids through `CellIndex` (coarse cells, each
with a short list of candidate centroids), so that a row costs ~5 sqrt(k) products, not k.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np
import pyarrow.compute as pc

from pairsmith.filters.vectors import unit
from pairsmith.pipelines.layout import Layout, read_parquet, write_npy

MAX_POINTS_PER_CENTROID = 64  # faiss warns under 39; more costs time
ROWS_PER_CLUSTER = 1000  # the default cluster count: one per this many embeddings...
MAX_CLUSTERS = 50_000  # ...up to SemDeDup's count for LAION-440M (clusters then grow past 1,000 rows)
IVF_FROM_CLUSTERS = 512  # from this many clusters: two-level k-means, and a CellIndex to assign
IVF_CELLS_PER_ROOT = 3  # the CellIndex's coarse cells: 3 sqrt(k), of ~sqrt(k) / 3 centroids each...
CANDIDATES_PER_ROOT = 2  # ...each searching its 2 sqrt(k) nearest centroids (and all of its own)
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


def cells_path(centroids_path: str) -> str:
    """Where the CellIndex's coarse cells are saved beside the centroids (`write_cells`)."""
    return centroids_path.removesuffix(".npy") + "_cells.npy"


def write_cells(centroids: np.ndarray, centroids_path: str) -> None:
    """Saves `coarse_cells` beside the centroids, or removes a cells file of an earlier run when
    these centroids have none."""
    import fsspec

    cells = coarse_cells(centroids)
    if cells is not None:
        write_npy(cells, cells_path(centroids_path))
        return
    fs, path = fsspec.core.url_to_fs(cells_path(centroids_path))
    if fs.exists(path):
        fs.rm(path)


@functools.lru_cache(maxsize=2)
def load_centroid_index(path: str):
    """`centroid_index` over the centroids saved at `path` (any fsspec URL), with the coarse cells
    saved beside them when there are any, loaded once per process."""
    import fsspec

    with fsspec.open(path, "rb") as f:
        centroids = np.load(f)
    fs, cells_file = fsspec.core.url_to_fs(cells_path(path))
    if not fs.exists(cells_file):
        return centroid_index(centroids)
    with fs.open(cells_file, "rb") as f:
        return centroid_index(centroids, np.load(f))


class CellIndex(NamedTuple):
    """Nearest-centroid search for many centroids: a row goes to its closest coarse cell, then to the
    closest of that cell's candidates (the centroids nearest the cell's centre and those whose cell
    it is). Both steps are matrix products, and the rows are gathered per cell, so nearly all the
    work runs in BLAS; faiss's inverted file over the same cells scans its lists row by row (2.85 s
    for a million rows and 1,000 centroids here, against 1.55 s; benchmarks/dedup_scale.py)."""

    centroids: np.ndarray
    cells: np.ndarray
    candidates: list[np.ndarray]


def coarse_cells(centroids: np.ndarray) -> np.ndarray | None:
    """The CellIndex's 3 sqrt(k) coarse cells, trained on the centroids; None under IVF_FROM_CLUSTERS.
    The dedup stage trains them once and saves them beside the centroids, so that every worker
    assigns with the same cells (k-means on another machine or thread count may differ in its
    last bits, and a row near a boundary would then change cluster between workers)."""
    import faiss

    k, dim = centroids.shape
    if k < IVF_FROM_CLUSTERS:
        return None
    kmeans = faiss.Kmeans(  # the cells train on the centroids themselves
        dim,
        int(IVF_CELLS_PER_ROOT * np.sqrt(k)),
        niter=KMEANS_ITERATIONS,
        spherical=True,
        seed=0,
        min_points_per_centroid=1,
    )
    kmeans.train(np.ascontiguousarray(centroids, dtype=np.float32))
    return kmeans.centroids


def centroid_index(centroids: np.ndarray, cells: np.ndarray | None = None):
    """An index over the centroids for `nearest_centroid`: faiss's exact flat index under
    IVF_FROM_CLUSTERS; above, a CellIndex over `cells` (default: `coarse_cells`), so that
    assigning a row costs ~5 sqrt(k) products, not k (k grows with the rows). It agrees with the
    exact nearest centroid for 98.7 % of the rows of dedup_scale's million (faiss's inverted file
    with 3 probes: 98.9 %); near-duplicates, nearly the same vector, still meet."""
    import faiss

    centroids = np.ascontiguousarray(centroids, dtype=np.float32)
    k, dim = centroids.shape
    if k < IVF_FROM_CLUSTERS:
        index = faiss.IndexFlatIP(dim)
        index.add(centroids)
        return index
    cells = coarse_cells(centroids) if cells is None else np.asarray(cells, dtype=np.float32)
    similarity = cells @ centroids.T
    own = similarity.argmax(0)
    per_cell = int(np.ceil(CANDIDATES_PER_ROOT * np.sqrt(k)))
    nearest = np.argsort(-similarity, axis=1, kind="stable")[:, :per_cell]
    candidates = [np.union1d(nearest[c], np.flatnonzero(own == c)) for c in range(len(cells))]
    return CellIndex(centroids, cells, candidates)


def nearest_centroid(index, vectors: np.ndarray) -> np.ndarray:
    """Index of the closest centroid (largest inner product) for each unit vector."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if not isinstance(index, CellIndex):
        return index.search(vectors, 1)[1][:, 0]
    cell = (vectors @ index.cells.T).argmax(1)
    nearest = np.empty(len(vectors), np.int64)
    for key, rows in key_runs(cell):
        candidates = index.candidates[key]
        nearest[rows] = candidates[(vectors[rows] @ index.centroids[candidates].T).argmax(1)]
    return nearest


def key_runs(keys: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """(key, the positions holding it) for each distinct key, in key order; positions ascending."""
    order = np.argsort(keys, kind="stable")
    starts = [0, *(np.flatnonzero(np.diff(keys[order])) + 1).tolist()] if len(keys) else []
    ends = [*starts[1:], len(order)]
    return [(int(keys[order[a]]), order[a:b]) for a, b in zip(starts, ends, strict=True)]
