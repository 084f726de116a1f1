"""Damaged or half-written outputs are repaired by a rerun, never finished wrongly: a deleted or damaged
shard is remade and the global stages redone; a SIGKILL inside a global stage resumes to the same rows."""

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
import pyarrow.parquet as pq
import pytest
from conftest import LOCAL

from pairsmith.flows.demo_site import LocalImageServer, write_pairs_parquet
from pairsmith.pipelines import runner
from pairsmith.pipelines.layout import Layout, read_json
from pairsmith.pipelines.shard_check import OutputError
from pairsmith.schemas.config import RunConfig, load_config

pytestmark = pytest.mark.slow

RUN_SCRIPT = """
import sys
from pairsmith.pipelines.runner import run_all
from pairsmith.schemas.config import load_config
run_all(load_config(None, sys.argv[2:]), sys.argv[1])
"""


@dataclass(frozen=True)
class Built:
    settings: list[str]
    cfg: RunConfig
    clean: Path  # a finished run
    annotated: Path  # the same run stopped after annotate, before the global stages
    shards: list[str]


@pytest.fixture(scope="module")
def server(demo_routes_and_pairs):
    routes, _ = demo_routes_and_pairs
    with LocalImageServer(dict(routes)) as server:
        yield server


@pytest.fixture(scope="module")
def built(tmp_path_factory, server, demo_routes_and_pairs) -> Built:
    folder = tmp_path_factory.mktemp("damaged")
    write_pairs_parquet(demo_routes_and_pairs[1], server.base_url, folder / "pairs.parquet")
    settings = [f"input.path={folder / 'pairs.parquet'}", "input.shard_size=16", *LOCAL]
    cfg = load_config(None, settings)
    layout = Layout(str(folder / "clean"))
    run = runner.start(layout, cfg)
    shards = runner.ingest(layout, cfg)
    runner.download_and_annotate(layout, cfg, shards, run)
    shutil.copytree(folder / "clean", folder / "annotated")
    manifest = runner.run_all(cfg, layout.root)
    assert manifest["duplicate_rows"] > 0 and len(shards) >= 4
    return Built(settings, cfg, folder / "clean", folder / "annotated", shards)


def _rows(out: Path) -> pl.DataFrame:
    return pl.read_parquet(out / "data" / "*.parquet").sort("uid", "source_row")


def _assert_same_output(out: Path, clean: Path) -> None:
    assert _rows(out).equals(_rows(clean))
    assert sorted(p.relative_to(out) for p in out.rglob("*.parquet") if "_work/tmp" not in str(p)) == sorted(
        p.relative_to(clean) for p in clean.rglob("*.parquet") if "_work/tmp" not in str(p)
    )
    for path in out.rglob("*.parquet"):
        assert pq.read_table(path).num_rows == pq.read_table(clean / path.relative_to(out)).num_rows
    done, expected = read_json(str(out / "manifest.json")), read_json(str(clean / "manifest.json"))
    for key in ("output_rows", "rows_per_status", "duplicate_rows", "estimated_corruption_ratio"):
        assert done[key] == expected[key], key


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _fewer_rows(path: Path) -> None:
    table = pq.read_table(path)
    pq.write_table(table.slice(0, table.num_rows - 1), path)


def _other_columns(path: Path) -> None:
    table = pq.read_table(path)
    pq.write_table(table.drop_columns(["is_duplicate"]), path)


DAMAGES = {  # each group in one rerun, the i-th damage on the i-th shard
    "data": [
        ("data/{s}.parquet", Path.unlink),
        ("data/{s}.parquet", _truncate),
        ("data/{s}.parquet", _fewer_rows),
        ("data/{s}.parquet", _other_columns),
    ],
    "embeddings and download results": [
        ("embeddings/toy/{s}.parquet", _truncate),
        ("embeddings/toy/{s}.parquet", Path.unlink),
        ("_work/download/{s}.parquet", _truncate),
    ],
}


@pytest.mark.parametrize("damaged", DAMAGES)
def test_a_rerun_remakes_damaged_shards_and_redoes_the_global_stages(built, tmp_path, damaged):
    """Deleted, truncated, short of a row or of a column: each shard is remade (the download again from
    the server), and caption sharing, dedup and corruption are redone over every shard."""
    out = tmp_path / "out"
    shutil.copytree(built.clean, out)
    for shard, (where, harm) in zip(built.shards, DAMAGES[damaged], strict=False):
        harm(out / where.format(s=shard))
    runner.run_all(built.cfg, str(out))
    _assert_same_output(out, built.clean)


def test_a_damaged_input_shard_stops_the_run_in_one_line_and_leaves_no_manifest(built, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(built.clean, out)
    _truncate(out / "_work" / "input" / f"{built.shards[1]}.parquet")
    with pytest.raises(OutputError, match=f"input shard .*{built.shards[1]}.parquet is damaged") as error:
        runner.run_all(built.cfg, str(out))
    assert "\n" not in str(error.value)
    assert not (out / "manifest.json").exists()


def _kill_inside(out: Path, settings: list[str], stage: str, k: int) -> int:
    """Run the pipeline in a child and SIGKILL it once the global `stage` wrote `k` shards' side files
    (`_work/columns/STAGE/`); returns the side files written by then."""
    columns = out / "_work" / "columns" / stage
    proc = subprocess.Popen([sys.executable, "-c", RUN_SCRIPT, str(out), *settings], start_new_session=True)
    deadline, written = time.time() + 300, 0
    try:
        while proc.poll() is None and time.time() < deadline:
            written = len(list(columns.glob("*.parquet")))
            if written >= k:
                break
            time.sleep(0.005)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, f"the child ended by itself ({proc.returncode})"
    assert not (out / "_work" / f"{stage}_DONE.json").exists(), "the kill must land inside the stage"
    return written


STAGES = ("caption_sharing", "dedup", "corruption")


@pytest.mark.parametrize("stage", STAGES)
def test_sigkill_inside_a_global_stage_then_a_rerun_gives_the_rows_of_an_uninterrupted_run(
    built, tmp_path, stage
):
    seed = int(os.environ.get("PAIRSMITH_KILL_SEED", time.time_ns() % 10_000))
    k = random.Random(seed).randint(1, len(built.shards) - 1)  # kill after k of the stage's side files
    out = tmp_path / "out"
    shutil.copytree(built.annotated, out)
    written = _kill_inside(out, built.settings, stage, k)
    assert written >= 1, f"seed {seed}: the stage had written no side file when killed"
    runner.run_all(built.cfg, str(out))
    _assert_same_output(out, built.clean)
