"""Finalize: check row conservation over all shards and write `manifest.json`."""

from __future__ import annotations

import platform
import time
from collections import Counter
from importlib.metadata import version

import fsspec
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pairsmith.pipelines.download_errors import opt_out_source
from pairsmith.pipelines.layout import Layout, read_json, write_json
from pairsmith.schemas import PIPELINE_VERSION
from pairsmith.schemas.record import SCHEMA_VERSION


class RowConservationError(RuntimeError):
    """Output rows differ from input rows: a bug, reported loudly."""


def _rows(layout: Layout, kind: str, path_of) -> tuple[int, Counter, int]:
    """(rows, rows per status, rows marked duplicate) over the shards of `kind`."""
    total, statuses, duplicates = 0, Counter(), 0
    for shard in layout.shards(kind):
        fs, path = fsspec.core.url_to_fs(path_of(shard))
        with fs.open(path, "rb") as f:
            pf = pq.ParquetFile(f)
            total += pf.metadata.num_rows
            if kind == "data":
                table = pf.read(columns=["status", "is_duplicate"])
                statuses.update(table.column("status").to_pylist())
                duplicates += sum(v is True for v in table.column("is_duplicate").to_pylist())
    return total, statuses, duplicates


def _opt_outs(layout: Layout) -> dict[str, int]:
    """Rows blocked by each kind of opt-out: `robots_txt` and `x_robots_tag`."""
    counts = Counter({"robots_txt": 0, "x_robots_tag": 0})
    for shard in layout.shards("data"):
        fs, path = fsspec.core.url_to_fs(layout.data_shard(shard))
        with fs.open(path, "rb") as f:
            table = pq.read_table(f, columns=["error_kind", "error_message"])
        blocked = table.filter(pc.equal(table.column("error_kind"), "opt_out"))
        counts.update(opt_out_source(m) for m in blocked.column("error_message").to_pylist())
    return dict(counts)


def _workers(layout: Layout) -> list[str]:
    """The processes (`host:pid`) that downloaded and annotated this output's shards."""
    logs = [layout.shard_log(s) for s in layout.shards("input")]
    return sorted({read_json(p)["worker"] for p in logs if layout.exists(p)})


def stage_seconds_path(layout: Layout) -> str:
    """Wall seconds of each stage in the last run that ran it (`runner.timed` writes it)."""
    return f"{layout.root.rstrip('/')}/_work/stage_seconds.json"


def _versions() -> dict[str, str]:
    names = ("apache-beam", "img2dataset", "pyarrow", "prefect", "polars", "imagehash", "langid")
    return {"pairsmith": PIPELINE_VERSION, "python": platform.python_version()} | {
        n: version(n) for n in names
    }


def write_manifest(layout: Layout, run: dict, model_ids: dict[str, str], started: float) -> dict:
    """Count rows per status, check that every input row is in the output, write the manifest."""
    input_rows, _, _ = _rows(layout, "input", layout.input_shard)
    output_rows, statuses, duplicates = _rows(layout, "data", layout.data_shard)
    if output_rows != input_rows or layout.shards("data") != layout.shards("input"):
        raise RowConservationError(f"{input_rows} input rows but {output_rows} output rows in {layout.root}")
    manifest = {
        "input_rows": input_rows,
        "output_rows": output_rows,
        "rows_per_status": dict(sorted(statuses.items())),
        "duplicate_rows": duplicates,
        "opt_out_rows": _opt_outs(layout),
        "estimated_corruption_ratio": (
            read_json(layout.corruption_report).get("estimated_corruption_ratio")
            if layout.exists(layout.corruption_report)
            else None
        ),
        "shards": len(layout.shards("data")),
        "run_id": run["run_id"],
        "config_hash": run["config_hash"],
        "config": run["config"],
        "schema_version": SCHEMA_VERSION,
        "versions": _versions(),
        "model_ids": model_ids,
        "wall_time_s": round(time.time() - started, 3),
        "stage_seconds": read_json(seconds) if layout.exists(seconds := stage_seconds_path(layout)) else {},
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "retries": read_json(layout.retry_log)["retries"] if layout.exists(layout.retry_log) else [],
        "workers": _workers(layout),
    }
    write_json(manifest, layout.manifest)
    return manifest
