"""The held behaviour: the toy-profile pipeline on the demo input gives the same rows as when the golden
file was written (statuses, scores to 1e-4, corruption columns to 1e-3, duplicate groups, column order).

The server listens on a fixed port below Linux's ephemeral range, so urls, and with them uids, are those
of the golden file. After a change that is meant to alter the rows, rewrite the file and review its diff:
`PAIRSMITH_UPDATE_GOLDEN=1 .venv/bin/python -m pytest -q tests/pipelines/test_same_rows.py`.
"""

import json
import math
import os
from pathlib import Path

import polars as pl
import pytest
from conftest import LOCAL

from pairsmith.flows.demo_site import LocalImageServer, write_pairs_parquet
from pairsmith.pipelines.runner import run_all
from pairsmith.schemas.config import load_config

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "demo_rows.json"
PORT = 29517  # fixed: uids hash the url; below 32768, so no port-0 server of another test takes it
# Columns that name this run (paths, run id, version) rather than what it computed.
RUN_BOUND = {
    "source_file",
    "url",
    "error_message",
    "tar",
    "member",
    "run_id",
    "config_hash",
    "pipeline_version",
}
UID_COLUMNS = {
    "dup_exact_group",
    "dup_image_group",
    "dup_caption_group",
    "dup_semantic_group",
    "duplicate_of",
}


def _rows(tmp_path, routes, pairs) -> tuple[list[str], list[dict]]:
    with LocalImageServer(dict(routes), port=PORT) as server:
        write_pairs_parquet(pairs, server.base_url, tmp_path / "pairs.parquet")
        overrides = [f"input.path={tmp_path / 'pairs.parquet'}", "input.shard_size=16", *LOCAL]
        run_all(load_config(None, overrides), str(tmp_path / "out"))
    df = pl.read_parquet(f"{tmp_path}/out/data/*.parquet").sort("source_row")
    row_of = dict(zip(df["uid"], df["source_row"], strict=True))
    rows = []
    for row in df.drop(RUN_BOUND & set(df.columns)).to_dicts():
        for name in UID_COLUMNS & row.keys():  # a group as the source rows of its uid
            row[name] = None if row[name] is None else row_of[row[name]]
        rows.append(row)
    return df.columns, rows


def _rounded(value):
    """Floats to 6 decimals (the file stays small; comparisons allow 1e-4)."""
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return round(value, 6) if isinstance(value, float) else value


def _write(golden: dict) -> None:
    """One row per line, a list of values in the order of `compared` (a changed row is a one-line diff)."""
    compared = sorted(golden["rows"][0])
    lines = ",\n".join(json.dumps([row[k] for k in compared]) for row in golden["rows"])
    head = f'{{"columns": {json.dumps(golden["columns"])},\n"compared": {json.dumps(compared)},\n'
    GOLDEN.write_text(f'{head}"rows": [\n{lines}\n]}}\n')


def _read() -> dict:
    golden = json.loads(GOLDEN.read_text())
    return {
        "columns": golden["columns"],
        "rows": [dict(zip(golden["compared"], r, strict=True)) for r in golden["rows"]],
    }


def _differences(got, want, path: str, tolerance: float) -> list[str]:
    if isinstance(want, dict) and isinstance(got, dict):
        if got.keys() != want.keys():
            return [f"{path}: keys {sorted(got)} != {sorted(want)}"]
        return [d for k in want for d in _differences(got[k], want[k], f"{path}.{k}", tolerance)]
    if isinstance(want, float) and isinstance(got, float):
        return [] if math.isclose(got, want, rel_tol=0, abs_tol=tolerance) else [f"{path}: {got} != {want}"]
    return [] if got == want else [f"{path}: {got!r} != {want!r}"]


@pytest.mark.slow
def test_demo_rows_match_the_golden_file(tmp_path, demo_routes_and_pairs):
    routes, pairs = demo_routes_and_pairs
    columns, rows = _rows(tmp_path, routes, pairs)
    got = json.loads(json.dumps({"columns": columns, "rows": rows}))  # as the file would hold them
    if os.environ.get("PAIRSMITH_UPDATE_GOLDEN") == "1":
        GOLDEN.parent.mkdir(exist_ok=True)
        _write(_rounded(got))
        pytest.skip(f"wrote {GOLDEN}")
    want = _read()
    assert got["columns"] == want["columns"], "column order differs from the golden file"
    assert len(got["rows"]) == len(want["rows"])
    diffs = [
        d
        for g, w in zip(got["rows"], want["rows"], strict=True)
        for k in sorted(w.keys() | g.keys())
        for d in _differences(
            g.get(k), w.get(k), f"row {w['source_row']}.{k}", 1e-3 if k.startswith("corruption_") else 1e-4
        )
    ]
    assert not diffs, f"{len(diffs)} values differ from the golden file:\n" + "\n".join(diffs[:30])
