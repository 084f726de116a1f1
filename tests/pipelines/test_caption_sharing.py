"""The global caption-sharing stage: counts across shards and ALIGN's 'shared by > 10 images' rule."""

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import LOCAL

from pairsmith.pipelines.runner import run_all
from pairsmith.schemas.config import load_config

pytestmark = pytest.mark.slow  # every test here runs the whole pipeline


def test_counts_span_shards_and_complete_the_align_flag(tmp_path, demo_server, demo_routes_and_pairs):
    _, pairs = demo_routes_and_pairs
    photo = demo_server.url(next(p.path for p in pairs if p.path == "/photo/astronaut"))
    stock = ["a stock photo of a sunset over the sea"] * 12
    car = [
        "A red car parked on the street",
        "a red CAR  parked on the street",
        "a red car parked on the street ",
    ]
    unique = ["an astronaut posing in front of a flag", None]
    captions = stock + car + unique
    pq.write_table(pa.table({"url": [photo] * len(captions), "caption": captions}), tmp_path / "in.parquet")
    settings = [
        f"input.path={tmp_path / 'in.parquet'}",
        "input.shard_size=4",
        *LOCAL,
        "models.profile=none",
        "annotate.ocr=off",
    ]
    run_all(load_config(None, settings), str(tmp_path / "out"))
    df = pl.read_parquet(tmp_path / "out" / "data" / "*.parquet").sort("source_row")
    assert df["caption_shared_count"].to_list() == [12] * 12 + [3] * 3 + [1, None]
    assert df["align_ok"].to_list() == [False] * 12 + [True] * 3 + [True, False]
