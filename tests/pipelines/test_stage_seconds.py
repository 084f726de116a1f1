"""Per-stage wall seconds: `runner.timed` records each stage of the last run for the manifest."""

import time

from pairsmith.pipelines import runner
from pairsmith.pipelines.finalize import stage_seconds_path
from pairsmith.pipelines.layout import Layout, read_json


def test_timed_records_each_stage_and_a_rerun_replaces_its_time(tmp_path):
    layout = Layout(str(tmp_path / "out"))

    @runner.timed("sleepy")
    def sleepy(layout: Layout, delay: float) -> float:
        time.sleep(delay)
        return delay

    @runner.timed("quick")
    def quick(layout: Layout) -> str:
        return "done"

    assert sleepy(layout, 0.3) == 0.3 and quick(layout) == "done"
    first = read_json(stage_seconds_path(layout))
    assert set(first) == {"sleepy", "quick"} and first["sleepy"] >= 0.3 and first["quick"] < 0.3
    sleepy(layout, 0.0)  # a resumed run that finds the stage done reports its own (short) time
    again = read_json(stage_seconds_path(layout))
    assert again["sleepy"] < 0.3 and again["quick"] == first["quick"]
