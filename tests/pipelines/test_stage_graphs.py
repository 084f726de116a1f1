"""The global stages' graphs run in memory (`graph.LocalFlow`) on small hand-made shards, and
finalize's merge of their side files: no Beam, no download."""

import pyarrow as pa
import pytest

from pairsmith.pipelines.caption_sharing import share_captions
from pairsmith.pipelines.graph import LocalFlow
from pairsmith.pipelines.layout import Layout, read_parquet, write_json, write_parquet
from pairsmith.pipelines.stage_columns import finish_stage, merge_shard, stage_done
from pairsmith.schemas.record import record_schema


def _shard(captions: list[str | None], statuses: list[str]) -> pa.Table:
    """A data shard of the record contract with only what caption sharing reads filled."""
    schema = record_schema([], pa.schema([]))
    n = len(captions)
    columns = {f.name: pa.nulls(n, f.type) for f in schema}
    columns |= {
        "uid": pa.array([f"u{i}" for i in range(n)]),
        "caption_fixed": pa.array(captions, pa.string()),
        "status": pa.array(statuses),
        "align_ok": pa.array([True] * n),
    }
    return pa.table(columns, schema=schema)


@pytest.fixture
def layout(tmp_path) -> Layout:
    layout = Layout(str(tmp_path / "out"))
    shards = {
        "a": _shard(["A cat", "a  CAT", "a dog"], ["success", "success", "failed_to_download"]),
        "b": _shard(["a cat", None], ["success", "success"]),
    }
    for name, table in shards.items():
        write_parquet(table, layout.data_shard(name))
        write_parquet(table.select(["uid"]), layout.input_shard(name))
    write_json({"shards": sorted(shards)}, layout.ingest_done)
    return layout


def test_caption_sharing_counts_images_across_shards_in_memory(layout):
    written = share_captions(LocalFlow(["a", "b"]), layout).items
    assert sorted(written) == ["a", "b"]
    a, b = (read_parquet(layout.stage_columns("caption_sharing", s)) for s in "ab")
    assert a.column("caption_shared_count").to_pylist() == [3, 3, 0]  # a dog: no image shares it
    assert b.column("caption_shared_count").to_pylist() == [3, None]
    assert read_parquet(layout.data_shard("a")).column("caption_shared_count").null_count == 3  # untouched


def test_merge_writes_the_stage_columns_into_the_data_shard_once(layout):
    share_captions(LocalFlow(["a", "b"]), layout)
    finish_stage(layout, "caption_sharing", ["a", "b"])
    assert stage_done(layout, "caption_sharing")
    merge_shard(layout, "a")
    merged = read_parquet(layout.data_shard("a"))
    assert merged.column("caption_shared_count").to_pylist() == [3, 3, 0]
    assert merged.schema == record_schema([], pa.schema([]))  # validated against the contract
    assert layout.exists(layout.merged("a")) and not layout.exists(layout.merged("b"))


def test_a_damaged_side_file_makes_its_stage_run_again(layout):
    share_captions(LocalFlow(["a", "b"]), layout)
    finish_stage(layout, "caption_sharing", ["a", "b"])
    path = layout.stage_columns("caption_sharing", "b")
    with open(path, "r+b") as f:
        f.truncate(20)
    assert not stage_done(layout, "caption_sharing")
    assert not layout.exists(layout.sharing_done)
