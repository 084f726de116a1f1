"""`pairsmith retry`: rows that failed for a passing reason are fetched again, and the output then equals
a run in which those fetches had succeeded the first time, also after a SIGKILL at any point."""

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest
from conftest import LOCAL

from pairsmith.flows.cli import main
from pairsmith.flows.demo_site import LocalImageServer, Route, write_pairs_parquet
from pairsmith.flows.retry import retry
from pairsmith.pipelines.layout import Layout, read_json
from pairsmith.pipelines.retry import is_retried
from pairsmith.pipelines.runner import run_all
from pairsmith.schemas.config import load_config

pytestmark = pytest.mark.slow

FLAKY = 6  # photo and shape routes that answer 503 during the first run
RETRY_SCRIPT = "import sys; from pairsmith.flows.retry import retry; retry(sys.argv[1])"


@dataclass(frozen=True)
class Runs:
    server: LocalImageServer
    failed: Path  # the run made while FLAKY routes answered 503 (not retried)
    clean: Path  # the run made while every route worked
    flaky_paths: list[str]


def _rows(out: Path) -> pl.DataFrame:
    return pl.read_parquet(out / "data" / "*.parquet").sort("source_file", "source_row").drop("run_id")


@pytest.fixture(scope="module")
def runs(tmp_path_factory, demo_routes_and_pairs):
    routes, pairs = demo_routes_and_pairs
    flaky = [p.path for p in pairs if p.kind == "photo"][:FLAKY]  # the first rows: one or two shards to redo
    assert len(flaky) == FLAKY
    folder = tmp_path_factory.mktemp("retry")
    with LocalImageServer(dict(routes)) as server:
        write_pairs_parquet(pairs, server.base_url, folder / "pairs.parquet")
        settings = [f"input.path={folder / 'pairs.parquet'}", "input.shard_size=16", *LOCAL]
        for path in flaky:
            server.add_route(path, Route(status=503, body=b"busy"))
        run_all(load_config(None, settings), str(folder / "failed"))
        for path in flaky:
            server.add_route(path, routes[path])
        run_all(load_config(None, settings), str(folder / "clean"))
        yield Runs(server, folder / "failed", folder / "clean", flaky)


def test_retry_recovers_the_failed_rows_and_equals_a_run_without_failures(runs, tmp_path):
    out = tmp_path / "retried"
    shutil.copytree(runs.failed, out)
    failed, clean_rows = _rows(out), _rows(runs.clean)
    busy = failed.filter(pl.col("error_kind") == "http_503").height  # the flaky photos, and a redirect to one
    assert busy > FLAKY and clean_rows.filter(pl.col("error_kind") == "http_503").height == 0
    before = len(runs.server.hits)

    assert main(["retry", str(out)]) == 0

    fetched = {h for h in runs.server.hits[before:] if not h.endswith("/robots.txt")}
    retried = {
        r["url"].removeprefix(runs.server.base_url)
        for r in failed.iter_rows(named=True)
        if is_retried(r["error_kind"], ("timeout", "deadline", "connection", "http_5xx", "dns"))
    }
    assert fetched == retried, "only the rows that failed with a retryable kind are requested again"
    assert set(runs.flaky_paths) <= retried
    assert _rows(out).equals(clean_rows)
    manifest, clean = read_json(str(out / "manifest.json")), read_json(str(runs.clean / "manifest.json"))
    for key in ("rows_per_status", "duplicate_rows", "estimated_corruption_ratio", "opt_out_rows"):
        assert manifest[key] == clean[key], key
    [entry] = manifest["retries"]
    # the 503s, and any row that a loaded machine let time out in the first run only (rows align:
    # the output equals the clean run, row by row)
    recoverable = ((failed["status"] != "success") & (clean_rows["status"] == "success")).sum()
    assert entry["tried"] == len(retried) and entry["recovered"] == recoverable >= busy
    assert not (out / "_work" / "retry").exists()


def test_retry_of_only_some_kinds_leaves_the_others(runs, tmp_path):
    out = tmp_path / "dns-only"
    shutil.copytree(runs.failed, out)
    before = len(runs.server.hits)
    manifest = retry(str(out), "dns")
    assert [h for h in runs.server.hits[before:] if not h.endswith("/robots.txt")] == []
    assert manifest["retries"][-1]["recovered"] == 0
    assert _rows(out).equals(_rows(runs.failed))


def test_an_unknown_kind_is_one_line_and_exit_2(runs, capsys):
    assert main(["retry", str(runs.failed), "--kinds", "http_404"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "http_404 cannot be retried" in err


# Points at which a retry is killed: the first file that it writes there (any older copy is stale).
KILL_POINTS = {
    "while fetching": "_work/retry/plan.json",
    "in the global stages": "_work/caption_sharing_DONE.json",
}


@pytest.mark.parametrize("point", KILL_POINTS)
def test_sigkill_during_retry_then_a_rerun_equals_a_run_without_failures(runs, tmp_path, point):
    out = tmp_path / "killed"
    shutil.copytree(runs.failed, out)
    reached = out / KILL_POINTS[point]
    started = time.time()
    proc = subprocess.Popen([sys.executable, "-c", RETRY_SCRIPT, str(out)], start_new_session=True)
    deadline = started + 300
    while not (reached.exists() and reached.stat().st_mtime >= started) and proc.poll() is None:
        assert time.time() < deadline
        time.sleep(0.02)
    time.sleep(random.Random(point).uniform(0.0, 0.3))
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert (out / "_work" / "retry" / "plan.json").exists(), "the kill must land before the retry ends"

    retry(str(out))
    assert _rows(out).equals(_rows(runs.clean))
    assert Layout(str(out)).exists(str(out / "manifest.json"))
