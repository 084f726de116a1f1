"""Where each stage reads and writes inside the output folder (local path or fsspec URL).

    OUT/run.json                      config and config hash of the run that owns the folder
    OUT/_work/input/SHARD.parquet     ingested rows (uid, url, caption, extras, input status)
    OUT/_work/download/SHARD.parquet  img2dataset's per-row download results
    OUT/images/SHARD.tar              webdataset tar of the stored images
    OUT/embeddings/ALIAS/SHARD.parquet  CLIP embeddings per model, row-aligned with data/SHARD
    OUT/data/SHARD.parquet            annotated rows (the record contract); finalize merges the
                                      global stages' columns into it, once
    OUT/_work/columns/STAGE/SHARD.parquet  a global stage's columns, row-aligned with data/SHARD
    OUT/_work/merged/SHARD.json       finalize merged the global columns into data/SHARD
    OUT/_work/shards/SHARD.json       download+annotate's rows, seconds and worker for the shard
    OUT/_work/dedup/centroids.npy     SemDeDup's k-means centroids (the dedup stage)
    OUT/_work/dedup/centroids_cells.npy  their coarse cells, from 512 centroids (every worker's assignment)
    OUT/corruption.json               estimated corruption ratio and how (the corruption stage)
    OUT/manifest.json                 counts, config hash, versions, model ids, wall time

Every file is written under a temporary name and renamed, so a killed run leaves either the whole
file or none of it; a stage counts a shard as done when its output exists.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


@dataclass(frozen=True)
class Layout:
    """Paths of one output folder."""

    root: str

    def _join(self, *parts: str) -> str:
        return "/".join([self.root.rstrip("/"), *parts])

    @property
    def fs(self) -> fsspec.AbstractFileSystem:
        return fsspec.core.url_to_fs(self.root)[0]

    def input_shard(self, shard: str) -> str:
        return self._join("_work", "input", f"{shard}.parquet")

    def download_shard(self, shard: str) -> str:
        return self._join("_work", "download", f"{shard}.parquet")

    def tar(self, shard: str) -> str:
        return self._join("images", f"{shard}.tar")

    def tar_relative(self, shard: str) -> str:
        return f"images/{shard}.tar"

    def side_shard(self, dataset: str, shard: str) -> str:
        """A side dataset's shard, e.g. `embeddings/toy/SHARD.parquet`."""
        return self._join(*dataset.split("/"), f"{shard}.parquet")

    def data_shard(self, shard: str) -> str:
        return self._join("data", f"{shard}.parquet")

    def stage_columns(self, stage: str, shard: str) -> str:
        """A global stage's columns for one shard (caption_sharing, dedup, corruption)."""
        return self._join("_work", "columns", stage, f"{shard}.parquet")

    @property
    def stage_columns_folder(self) -> str:
        return self._join("_work", "columns")

    @property
    def merged_folder(self) -> str:
        return self._join("_work", "merged")

    def shard_log(self, shard: str) -> str:
        """What download+annotate did with a shard: rows, seconds of each half, the worker."""
        return self._join("_work", "shards", f"{shard}.json")

    def merged(self, shard: str) -> str:
        """The marker that finalize merged the global stages' columns into `data/SHARD.parquet`."""
        return self._join("_work", "merged", f"{shard}.json")

    def scratch(self, name: str) -> str:
        return self._join("_work", "tmp", f"{name}-{uuid.uuid4().hex[:8]}")

    @property
    def ingest_done(self) -> str:
        return self._join("_work", "input", "_DONE.json")

    @property
    def sharing_done(self) -> str:
        return self._join("_work", "caption_sharing_DONE.json")

    @property
    def dedup_done(self) -> str:
        return self._join("_work", "dedup_DONE.json")

    @property
    def corruption_done(self) -> str:
        return self._join("_work", "corruption_DONE.json")

    @property
    def injection(self) -> str:
        """What `pairsmith corrupt` was asked to do in this (copy) folder, for resuming it."""
        return self._join("_work", "injection.json")

    @property
    def corruption_report(self) -> str:
        """The corruption stage's estimate, method and calibration tables (read by `select`)."""
        return self._join("corruption.json")

    @property
    def centroids(self) -> str:
        """SemDeDup's k-means centroids (numpy .npy), read by every worker of the dedup stage."""
        return self._join("_work", "dedup", "centroids.npy")

    @property
    def retry_folder(self) -> str:
        """`pairsmith retry`'s plan and per-shard markers, while a retry is in progress."""
        return self._join("_work", "retry")

    @property
    def retry_plan(self) -> str:
        return self._join("_work", "retry", "plan.json")

    @property
    def retry_log(self) -> str:
        """Every finished retry of this output (copied into the manifest by finalize)."""
        return self._join("_work", "retries.json")

    @property
    def run_file(self) -> str:
        return self._join("run.json")

    @property
    def plan(self) -> str:
        """A dry run's plan: each stage's pipeline as translated, nothing submitted."""
        return self._join("plan.json")

    @property
    def manifest(self) -> str:
        return self._join("manifest.json")

    def shards(self, kind: str = "input") -> list[str]:
        """Names of the shards that have a file of `kind` (input, download, data), sorted."""
        folder = {"input": "_work/input", "download": "_work/download", "data": "data"}[kind]
        fs, path = fsspec.core.url_to_fs(self._join(folder))
        if not fs.exists(path):
            return []
        names = [p.rsplit("/", 1)[-1] for p in fs.ls(path, detail=False)]
        return sorted(n[: -len(".parquet")] for n in names if n.endswith(".parquet"))

    def exists(self, path: str) -> bool:
        fs, p = fsspec.core.url_to_fs(path)
        return fs.exists(p)


@contextlib.contextmanager
def atomic_path(path: str) -> Iterator[str]:
    """Yield a temporary sibling path; rename it onto `path` only if the block succeeds."""
    fs, final = fsspec.core.url_to_fs(path)
    tmp = f"{final}.tmp-{uuid.uuid4().hex[:8]}"
    fs.makedirs(final.rsplit("/", 1)[0], exist_ok=True)
    try:
        yield tmp
        fs.mv(tmp, final)
    finally:
        if fs.exists(tmp):
            fs.rm(tmp)


def write_parquet(table: pa.Table, path: str) -> None:
    """Write a zstd Parquet file atomically."""
    fs, _ = fsspec.core.url_to_fs(path)
    with atomic_path(path) as tmp, fs.open(tmp, "wb") as f:
        pq.write_table(table, f, compression="zstd")


def write_json(data: dict, path: str) -> None:
    """Write a JSON file atomically."""
    fs, _ = fsspec.core.url_to_fs(path)
    with atomic_path(path) as tmp, fs.open(tmp, "w") as f:
        json.dump(data, f, indent=2, sort_keys=True, default=str)


def read_json(path: str) -> dict:
    fs, p = fsspec.core.url_to_fs(path)
    with fs.open(p) as f:
        return json.load(f)


def read_parquet(path: str) -> pa.Table:
    fs, p = fsspec.core.url_to_fs(path)
    with fs.open(p, "rb") as f:
        return pq.read_table(f)


def read_columns(layout: Layout, path: str, wanted: tuple[str, ...]) -> pa.Table:
    """The columns of `wanted` that the Parquet file has (and only those are read)."""
    with layout.fs.open(path, "rb") as f:
        parquet = pq.ParquetFile(f)
        return parquet.read(columns=[c for c in wanted if c in parquet.schema_arrow.names])


def write_npy(array, path: str) -> None:
    """Write a numpy array atomically."""
    fs, _ = fsspec.core.url_to_fs(path)
    with atomic_path(path) as tmp, fs.open(tmp, "wb") as f:
        np.save(f, array)
