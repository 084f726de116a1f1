"""`pairsmith demo` as a newcomer runs it: a subprocess, the real CLI, the ephemeral Prefect API."""

import json
import subprocess
import sys

import polars as pl
import pyarrow.parquet as pq
import pytest

from pairsmith.flows.demo_site import build_demo_site
from pairsmith.schemas.record import validate_table

pytestmark = pytest.mark.slow  # every test here runs the whole pipeline


def test_demo_runs_end_to_end_and_its_output_passes_the_schema(tmp_path):
    out = tmp_path / "demo"
    done = subprocess.run(
        [sys.executable, "-m", "pairsmith.flows.cli", "demo", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "pairsmith stats" in done.stdout and "pl.scan_parquet" in done.stdout
    _, pairs = build_demo_site()
    df = pl.read_parquet(out / "dataset" / "data" / "*.parquet").sort("source_row")
    assert df.height == len(pairs)
    assert df["status"].to_list() == df["expected_status"].to_list()
    for path in (out / "dataset" / "data").glob("*.parquet"):
        validate_table(pq.read_table(path))
    manifest = json.loads((out / "dataset" / "manifest.json").read_text())
    assert manifest["input_rows"] == manifest["output_rows"] == len(pairs)
    stages = {"ingest", "download+annotate", "caption_sharing", "dedup", "corruption", "merge"}
    assert set(manifest["stage_seconds"]) == stages and manifest["stage_seconds"]["download+annotate"] > 0
    # the demo ends by writing the report and printing its path
    assert (out / "dataset" / "report.html").exists()
    assert done.stdout.strip().splitlines()[-1].startswith(f"report:   {out}/dataset/report.html")
    # a second demo run replaces its own previous output, with the same rows (on its fixed port)
    first = df.drop("run_id")
    estimate = json.loads((out / "dataset" / "corruption.json").read_text())
    again = subprocess.run(
        [sys.executable, "-m", "pairsmith.flows.cli", "demo", "--out", str(out)],
        capture_output=True,
        timeout=300,
        check=False,
    )
    assert again.returncode == 0
    second = pl.read_parquet(out / "dataset" / "data" / "*.parquet").sort("source_row").drop("run_id")
    assert second.equals(first)
    assert json.loads((out / "dataset" / "corruption.json").read_text()) == estimate
