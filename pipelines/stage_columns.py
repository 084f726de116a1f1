"""The global stages' columns, one side file per stage and shard, merged into the data shard once.

Caption sharing, dedup and corruption each compute a few columns that depend on every row. Each writes
them for a shard to `_work/columns/STAGE/SHARD.parquet` (row-aligned with `data/SHARD.parquet`) and
never touches the data shard; finalize merges every stage's columns into the data shard in one write,
validated against the record contract, and marks the shard merged. A stage is done when its marker
exists and each of its side files is intact, so a damaged side file makes the stage run again.
"""

from __future__ import annotations

import pyarrow as pa

from pairsmith.pipelines.layout import Layout, read_json, read_parquet, write_json, write_parquet
from pairsmith.pipelines.run_state import drop_merged
from pairsmith.pipelines.shard_check import footer, problem
from pairsmith.schemas.record import validate_table

GLOBAL_STAGES = ("caption_sharing", "dedup", "corruption")


def done_marker(layout: Layout, stage: str) -> str:
    return {
        "caption_sharing": layout.sharing_done,
        "dedup": layout.dedup_done,
        "corruption": layout.corruption_done,
    }[stage]


def write_columns(layout: Layout, stage: str, shard: str, columns: dict[str, pa.Array]) -> str:
    """Write one stage's columns for one shard (atomically); returns the shard."""
    write_parquet(pa.table(columns), layout.stage_columns(stage, shard))
    return shard


def finish_stage(layout: Layout, stage: str, shards: list[str], **details) -> None:
    """Mark `stage` done over `shards` (`columns=False`: it wrote no side files, e.g. no CLIP model);
    every shard must then be merged again."""
    drop_merged(layout)
    write_json({"shards": shards, "columns": True} | details, done_marker(layout, stage))


def stage_done(layout: Layout, stage: str) -> bool:
    """Whether `stage` finished and its side files can be trusted; a damaged one drops the marker."""
    marker = done_marker(layout, stage)
    if not layout.exists(marker):
        return False
    done = read_json(marker)
    if not done.get("columns", True):
        return True
    for shard in done["shards"]:
        rows = footer(layout.data_shard(shard))
        if rows is None or problem(layout.stage_columns(stage, shard), rows.num_rows) is not None:
            layout.fs.rm(marker)
            return False
    return True


def merge_shard(layout: Layout, shard: str) -> None:
    """Set every finished stage's columns in `data/SHARD.parquet`, validate, write once, mark merged."""
    table = read_parquet(layout.data_shard(shard))
    for stage in GLOBAL_STAGES:
        path = layout.stage_columns(stage, shard)
        if not layout.exists(done_marker(layout, stage)) or not layout.exists(path):
            continue
        side = read_parquet(path)
        for name in side.column_names:
            index = table.schema.get_field_index(name)
            table = table.set_column(index, table.schema.field(index), side.column(name))
    validate_table(table)
    write_parquet(table, layout.data_shard(shard))
    write_json(
        {"stages": [s for s in GLOBAL_STAGES if layout.exists(done_marker(layout, s))]}, layout.merged(shard)
    )


def merge_pending(layout: Layout, shards: list[str]) -> int:
    """Merge every shard not merged yet; returns how many were written."""
    pending = [s for s in shards if not layout.exists(layout.merged(s))]
    for shard in pending:
        merge_shard(layout, shard)
    return len(pending)
