"""The small demo site (60 pairs: every failure kind, duplicates) through the whole pipeline (Beam
DirectRunner, toy models, a local server), for the tests of what reads an output."""

from pathlib import Path

from conftest import LOCAL

from pairsmith.flows.demo_site import LocalImageServer, write_pairs_parquet
from pairsmith.pipelines.runner import run_all
from pairsmith.schemas.config import load_config


def build_toy_output(folder: Path, routes: dict, pairs: list) -> str:
    """Build it in `folder/out` (3 shards of 20 rows) and return that path."""
    with LocalImageServer(dict(routes)) as server:
        path = folder / "pairs.parquet"
        write_pairs_parquet(pairs, server.base_url, path)
        run_all(load_config(None, [f"input.path={path}", "input.shard_size=20", *LOCAL]), str(folder / "out"))
    return str(folder / "out")
