"""Caption sharing, a global stage: how many images carry the same caption.

ALIGN drops alt-texts shared by more than 10 images (../shared/ANCHORS.md). That needs a count over
the whole dataset, so it runs after annotate as a Beam join that never gathers the dataset in one
place: (caption key -> rows) grouped by key gives each count, (shard -> counts) grouped by shard
writes each shard's columns to a side file (`stage_columns`). Rerunning recomputes the same values.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pyarrow as pa

from pairsmith.filters.basic_rules import complete_align
from pairsmith.pipelines.layout import Layout, read_columns
from pairsmith.pipelines.stage_columns import write_columns


def caption_key(caption: str | None) -> str | None:
    """Captions that differ only in case and spacing count as the same text."""
    if caption is None:
        return None
    key = re.sub(r"\s+", " ", caption).strip().casefold()
    return key or None


def caption_rows(shard: str, layout: Layout) -> Iterator[tuple[str, tuple[str, int, bool]]]:
    """(caption key, (shard, row, has image)) for every row with a caption."""
    table = read_columns(layout, layout.data_shard(shard), ("caption_fixed", "status"))
    for row, (caption, status) in enumerate(
        zip(*(table.column(c).to_pylist() for c in table.column_names), strict=True)
    ):
        key = caption_key(caption)
        if key is not None:
            yield key, (shard, row, status == "success")


def counts_per_row(element: tuple[str, list[tuple[str, int, bool]]]) -> Iterator[tuple[str, tuple[int, int]]]:
    """(shard, (row, images sharing the caption)) for every row of one caption key."""
    _, rows = element
    images = sum(1 for _, _, has_image in rows if has_image)
    for shard, row, _ in rows:
        yield shard, (row, images)


def write_counts(element: tuple[str, list[tuple[int, int]]], layout: Layout) -> str:
    """Write `caption_shared_count` and `align_ok` completed with ALIGN's sharing rule (a side file)."""
    shard, counts = element
    table = read_columns(layout, layout.data_shard(shard), ("align_ok",))
    shared = [None] * table.num_rows
    for row, images in counts:
        shared[row] = images
    shared_array = pa.array(shared, pa.int32())
    columns = {
        "caption_shared_count": shared_array,
        "align_ok": complete_align(table.column("align_ok"), shared_array),
    }
    return write_columns(layout, "caption_sharing", shard, columns)


def share_captions(shards, layout: Layout):
    """The caption-sharing graph: a Flow of data shard names -> the Flow of shards written."""
    return (
        shards.flat_map("CaptionRows", caption_rows, layout)
        .group_by_key("ByCaption")
        .flat_map("CountPerRow", counts_per_row)
        .group_by_shard("ByShard", shards)
        .map("Write", write_counts, layout)
    )
