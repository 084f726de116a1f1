"""Models on workers: four DoFn threads of one worker process load each model once."""

import pytest
from conftest import LOCAL

from pairsmith.filters.clip_models import _open_clip_model
from pairsmith.pipelines import shared_models
from pairsmith.pipelines.runner import run_all
from pairsmith.schemas.config import load_config

pytestmark = pytest.mark.slow  # a whole toy pipeline


def _delta(counter, before) -> dict:
    return {k: v - before.get(k, 0) for k, v in counter.items() if v != before.get(k, 0)}


def test_four_dofn_threads_in_one_process_load_each_model_once(tmp_path, demo_input):
    made, asked = dict(shared_models.made), dict(shared_models.asked)
    clip_loads = _open_clip_model.cache_info().misses
    threads = '["--direct_num_workers=4", "--direct_running_mode=multi_threading"]'
    overrides = [f"input.path={demo_input}", "input.shard_size=4", *LOCAL, "annotate.batch_size=5"]
    overrides += [f"runner.options={threads}", "runner.shard_group=1"]  # one shard per element
    manifest = run_all(load_config(None, overrides), str(tmp_path / "out"))
    assert manifest["shards"] >= 8 and len(manifest["workers"]) == 1  # one process ...
    ((key, set_ups),) = _delta(shared_models.asked, asked).items()  # ... several DoFn instances asked
    assert key.startswith("annotators:") and set_ups > 1
    assert _delta(shared_models.made, made) == {key: 1}  # the toy profile's annotators: set up once
    assert _open_clip_model.cache_info().misses - clip_loads <= 1  # the toy CLIP: built once at most
