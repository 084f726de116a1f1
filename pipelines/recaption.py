"""Recaption an existing output, alone: the work of `pairsmith recaption OUT`.

Per data shard: read its rows, the primary CLIP model's side shard (image and alt-text embeddings,
row-aligned) and each row's image from the webdataset tar its `tar` and `member` columns name; decode
each image once; run `CaptionNouns`, `Recaption`, `RecaptionNouns` and, when grounding is on,
`GroundRecaption` over batches (the same annotators as in the annotate stage); set their columns; validate; rewrite the shard atomically (`write_parquet`); then
write a marker `_work/recaption/KEY/SHARD.json`. KEY hashes the captioner and its settings, so a rerun
with the same settings skips the shards it finished (resume) and other settings redo every shard.
Download, the other annotators and the global stages are not redone; their columns stay as they are.
"""

from __future__ import annotations

import hashlib
import json
import time

import pyarrow as pa

from pairsmith.captioners.annotator import Recaption, recaption_annotators
from pairsmith.filters.base import Annotator
from pairsmith.filters.clip_score import ClipScore
from pairsmith.filters.profiles import clip_models
from pairsmith.pipelines.annotate import annotate_rows, image_loader
from pairsmith.pipelines.layout import Layout, read_parquet, write_json, write_parquet
from pairsmith.schemas.config import ModelsConfig, RecaptionConfig
from pairsmith.schemas.record import FIELDS, validate_table

EMBEDDINGS = ("image_embedding", "text_embedding")


def recaption_key(spec: str, cfg: RecaptionConfig) -> str:
    """Names the captioner and every setting that changes its output (not the device)."""
    settings = cfg.model_dump(mode="json", exclude={"device"}) | {"model": spec}
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]


def marker(layout: Layout, key: str, shard: str) -> str:
    """The file whose presence says that `shard` has the recaptions of settings `key`."""
    return f"{layout.root.rstrip('/')}/_work/recaption/{key}/{shard}.json"


def _side_columns(layout: Layout, dataset: str | None, shard: str, uids: list[str]) -> dict[str, pa.Array]:
    """The primary CLIP side shard's embeddings as batch columns `DATASET/COLUMN`, if row-aligned."""
    if dataset is None or not layout.exists(layout.side_shard(dataset, shard)):
        return {}
    side = read_parquet(layout.side_shard(dataset, shard))
    if side.column("uid").to_pylist() != uids:
        return {}  # not aligned (should not happen): embed afresh instead
    return {f"{dataset}/{c}": side.column(c) for c in EMBEDDINGS if c in side.column_names}


def with_columns(table: pa.Table, new: dict[str, pa.Array]) -> pa.Table:
    """`table` with `new` columns set; core columns in the record contract's order, missing core
    columns (a shard written before they existed) as nulls, other columns after them as they were."""
    core = {f.name: f for f in FIELDS}
    names = [*core, *(n for n in table.column_names if n not in core)]
    fields, arrays = [], []
    for name in names:
        field = core.get(name) or table.schema.field(name)
        if name in new:
            array = new[name]
        elif name in table.column_names:
            array = table.column(name)
        else:
            array = pa.nulls(table.num_rows, field.type)
        fields.append(field)
        arrays.append(array)
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields, metadata=table.schema.metadata))


def recaption_shard(
    shard: str, layout: Layout, annotators: list[Annotator], batch_size: int, key: str
) -> dict:
    """Recaption one data shard in place (atomically), then mark it done for settings `key`."""
    done = marker(layout, key, shard)
    if layout.exists(done):
        return {"shard": shard, "skipped": True}
    started = time.time()
    table = read_parquet(layout.data_shard(shard))
    recaptioner = next((a for a in annotators if isinstance(a, Recaption)), None)
    dataset = recaptioner.dataset if recaptioner else None
    side = pa.table(_side_columns(layout, dataset, shard, table.column("uid").to_pylist()))
    images = image_loader(layout, shard, table.column("member").to_pylist())
    # the annotate stage's own loop: batches of rows, each image decoded once, side vectors as columns
    new = annotate_rows(table.select(["caption"]), side, images, annotators, batch_size)
    table = with_columns(table, new)
    validate_table(table)
    write_parquet(table, layout.data_shard(shard))
    rows = len(table.column("recaption")) - table.column("recaption").null_count
    write_json(
        {"shard": shard, "key": key, "recaptioned_rows": rows, "seconds": round(time.time() - started, 2)},
        done,
    )
    return {"shard": shard, "rows": table.num_rows, "recaptioned_rows": rows}


def build_recaptioners(cfg: RecaptionConfig, models: ModelsConfig) -> list[Annotator]:
    """The run's recaption annotators, judged by its primary CLIP model (if it has one)."""
    primary = next(iter(clip_models(models)), None)
    clip = ClipScore(primary.alias, primary.spec, True, models.device, models.precision) if primary else None
    return recaption_annotators(models, cfg, clip)
