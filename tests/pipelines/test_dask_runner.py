"""Beam's DaskRunner on a real dask.distributed cluster: a scheduler and two worker processes on
127.0.0.1 (free ports), started and stopped here. The whole flow gives the rows DirectRunner gives,
its shards are spread over both workers, and every stage's writes happen (Beam 2.77's DaskRunner
computes only the last collection of a pipeline, so a branch that did not flow into it would be
silently skipped: its columns would then be null here)."""

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
from conftest import LOCAL
from distributed import Client
from polars.testing import assert_frame_equal

from pairsmith.pipelines.runner import run_all
from pairsmith.schemas.config import load_config

pytestmark = pytest.mark.slow
DASK = str(Path(sys.executable).with_name("dask"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """The scheduler's address; two single-threaded worker processes."""
    logs = tmp_path_factory.mktemp("dask")
    address = f"tcp://127.0.0.1:{_free_port()}"
    commands = [[DASK, "scheduler", "--host", "127.0.0.1", "--port", address.rsplit(":", 1)[1]]]
    commands[0] += ["--dashboard-address", f"127.0.0.1:{_free_port()}"]
    for i in range(2):
        commands.append([DASK, "worker", address, "--host", "127.0.0.1", "--nthreads", "1"])
        commands[-1] += ["--name", f"worker-{i}", "--dashboard-address", f"127.0.0.1:{_free_port()}"]
    procs = []
    try:
        for i, command in enumerate(commands):
            with open(logs / f"{i}.log", "w") as log:
                procs.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT))
            if i == 0:
                time.sleep(2)
        with Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=120)
        yield address
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def _run(tmp_path, demo_input, name: str, runner: list[str]) -> tuple[pl.DataFrame, dict]:
    overrides = [f"input.path={demo_input}", "input.shard_size=8", *LOCAL, *runner]
    manifest = run_all(load_config(None, overrides), str(tmp_path / name))
    rows = pl.read_parquet(f"{tmp_path / name}/data/*.parquet").sort("source_file", "source_row")
    return rows.drop("run_id"), manifest


def test_a_dask_cluster_gives_the_rows_of_direct_runner_on_both_workers(tmp_path, demo_input, cluster):
    direct, _ = _run(tmp_path, demo_input, "direct", [])
    options = json.dumps([f"--dask_client_address={cluster}"])
    on_dask, manifest = _run(
        tmp_path, demo_input, "dask", ["runner.runner=DaskRunner", f"runner.options={options}"]
    )
    exact = ["uid", "status", "phash", "dup_exact_group", "dup_image_group", "dup_caption_group"]
    exact += ["dup_semantic_group", "is_duplicate", "caption_shared_count", "align_ok"]
    assert on_dask.select(exact).equals(direct.select(exact))
    assert on_dask["is_duplicate"].any() and on_dask["corruption_score"].null_count() < on_dask.height
    assert_frame_equal(on_dask.select("clip_score"), direct.select("clip_score"), abs_tol=1e-4)
    corruption = [c for c in direct.columns if c.startswith("corruption_")]
    assert_frame_equal(on_dask.select(corruption), direct.select(corruption), abs_tol=1e-3)
    assert_frame_equal(on_dask, direct, check_exact=False, abs_tol=1e-3)  # every other column too
    assert len(manifest["workers"]) == 2, f"shards were not spread over both workers: {manifest['workers']}"
    shards = manifest["shards"]
    for stage in ("caption_sharing", "dedup", "corruption"):
        assert len(list((tmp_path / "dask" / "_work" / "columns" / stage).glob("*.parquet"))) == shards
    assert (tmp_path / "dask" / "corruption.json").exists()
