"""Ownership of an output folder (one config per folder, so a rerun resumes instead of mixing runs),
and what must be done again when part of it is remade."""

from __future__ import annotations

import time
import uuid

import fsspec

from pairsmith.pipelines.layout import Layout, read_json, write_json
from pairsmith.pipelines.shard_check import side_files
from pairsmith.schemas.config import ConfigError, RunConfig


def check_output(layout: Layout, cfg: RunConfig) -> dict | None:
    """The folder's `run.json` if it records this config (a resume), None if new; else ConfigError."""
    if not layout.exists(layout.run_file):
        return None
    run = read_json(layout.run_file)
    if run["config_hash"] != cfg.config_hash():
        raise ConfigError(
            f"output folder {layout.root} holds a run with another config (hash {run['config_hash']}, "
            f"this one is {cfg.config_hash()}); use a new --out, or the same config to resume"
        )
    return run


def claim_output(layout: Layout, cfg: RunConfig) -> dict:
    """Create `run.json`, or reuse it when it records the same config (resume: the old manifest is
    removed, finalize writes it again, so a resumed run that fails never leaves one). Returns it."""
    run = check_output(layout, cfg)
    if run is not None:
        drop_manifest(layout)
        return run
    config_hash = cfg.config_hash()
    run = {
        "run_id": time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6],
        "config_hash": config_hash,
        "config": cfg.output_affecting(),
    }
    write_json(run, layout.run_file)
    return run


def invalidate_global_stages(layout: Layout) -> list[str]:
    """Make the next run redo caption sharing, dedup and corruption over every shard (their columns
    depend on all rows) and merge them again, and drop the manifest until finalize writes it again.
    Call it whenever a data shard is (re)written outside those stages. Returns the markers it removed."""
    markers = [layout.sharing_done, layout.dedup_done, layout.corruption_done]
    removed = [m for m in markers if layout.exists(m)]
    for path in removed:
        _remove(layout, path)
    if layout.exists(layout.stage_columns_folder):
        fs, p = fsspec.core.url_to_fs(layout.stage_columns_folder)
        fs.rm(p, recursive=True)
    drop_merged(layout)
    drop_manifest(layout)
    return removed


def drop_merged(layout: Layout) -> None:
    """Make finalize merge every shard again (a global stage is being redone)."""
    if layout.exists(layout.merged_folder):
        fs, p = fsspec.core.url_to_fs(layout.merged_folder)
        fs.rm(p, recursive=True)


def discard_shard(layout: Layout, shard: str, download: bool = False) -> None:
    """Remove a shard's annotate outputs (data and side files), and with `download` its download
    results too, so that the next run makes them again; then invalidate the global stages."""
    paths = [layout.data_shard(shard), *side_files(layout, shard)]
    if download:
        paths.append(layout.download_shard(shard))
    for path in paths:
        _remove(layout, path)
    invalidate_global_stages(layout)


def drop_manifest(layout: Layout) -> None:
    """Remove `manifest.json`, the claim that the folder holds a finished output."""
    _remove(layout, layout.manifest)


def _remove(layout: Layout, path: str) -> None:
    if layout.exists(path):
        fs, p = fsspec.core.url_to_fs(path)
        fs.rm(p)
