"""What a user sees on stderr: no library chatter by default, all of it with --verbose."""

import importlib.util
import os
import subprocess
import sys

import pytest
from conftest import LOCAL

from pairsmith.flows.demo_site import write_pairs_parquet


def _pairsmith(*args: str) -> subprocess.CompletedProcess:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("TRANSFORMERS_VERBOSITY", "HF_HUB_DISABLE_PROGRESS_BARS")
    }
    code = "import sys\nfrom pairsmith.flows.cli import main\nsys.exit(main(sys.argv[1:]))"
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=900, env=env
    )


def test_a_user_error_is_the_only_line_on_stderr(tmp_path):
    done = _pairsmith("rescore", str(tmp_path / "missing"))  # imports Beam before it fails
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"pairsmith: error: {tmp_path / 'missing'} is not a pairsmith output folder (no run.json or data shards)"
    ]


@pytest.mark.skipif(
    importlib.util.find_spec("apitools") is not None,
    reason="the gcp extra is installed: Beam then has no apitools note to bring back",
)
def test_verbose_brings_the_library_notes_back(tmp_path):
    done = _pairsmith("--verbose", "rescore", str(tmp_path / "missing"))
    assert done.returncode == 2
    assert "apitools not found" in done.stderr
    assert done.stderr.splitlines()[-1].startswith("pairsmith: error: ")


@pytest.mark.slow
def test_a_run_shows_named_task_lines_and_no_loading_chatter(tmp_path, demo_server, demo_routes_and_pairs):
    _, pairs = demo_routes_and_pairs
    write_pairs_parquet(pairs[:12], demo_server.base_url, tmp_path / "pairs.parquet")
    sets = [arg for s in LOCAL for arg in ("--set", s)]
    done = _pairsmith(
        "run", "--input", str(tmp_path / "pairs.parquet"), "--out", str(tmp_path / "out"), *sets
    )
    assert done.returncode == 0, done.stderr
    err = done.stderr
    assert "Task run 'ingest-" in err and "Task run 'finalize-" in err  # Prefect's lines name their task
    assert "INFO:prefect" not in err and "Finished in state" in err
    assert "apitools" not in err and "Loading weights" not in err and "faiss" not in err
