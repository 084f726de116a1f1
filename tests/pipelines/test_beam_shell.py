"""The Beam shell around the stage functions: a Create spreads its elements over workers only where
there is more than one, and every element is processed once either way."""

import pytest

from pairsmith.pipelines.stages import _one_worker, pipeline_options, run_graph
from pairsmith.schemas.config import RunnerConfig


@pytest.mark.parametrize(
    ("runner", "options", "one"),
    [
        ("DirectRunner", [], True),
        ("DirectRunner", ["--direct_num_workers=2"], False),
        ("DaskRunner", [], False),
        ("DataflowRunner", ["--dry_run=True"], False),
    ],
)
def test_create_reshuffles_only_where_there_are_workers_to_spread_to(runner, options, one):
    assert _one_worker(pipeline_options(RunnerConfig(runner=runner, options=options))) is one


def _write(shard: str, folder) -> str:
    (folder / shard).write_text(
        str(int((folder / shard).read_text()) + 1) if (folder / shard).exists() else "1"
    )
    return shard


@pytest.mark.parametrize("options", [[], ["--direct_num_workers=2", "--direct_running_mode=multi_threading"]])
def test_each_shard_is_processed_once_with_one_worker_or_two(tmp_path, options):
    shards = [f"{i:05d}" for i in range(6)]
    run_graph(
        "Touch",
        shards,
        lambda flow, folder: flow.map("Write", _write, folder),
        RunnerConfig(options=options),
        tmp_path,
    )
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == {s: "1" for s in shards}
