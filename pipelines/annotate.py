"""Annotate: decode each stored image once, run every annotator over batches, write the final shard.

The per-image annotators may have run already, while the shard downloaded (`early_images`): their
columns are taken from there, and the images are read back from the tar only for the others."""

from __future__ import annotations

import io
import tarfile
import tempfile
from collections.abc import Iterator
from concurrent.futures import Executor
from typing import TYPE_CHECKING

import fsspec
import pyarrow as pa
from PIL import Image

from pairsmith.filters.base import Annotator, Batch
from pairsmith.pipelines.layout import Layout, read_parquet, write_parquet
from pairsmith.schemas import PIPELINE_VERSION
from pairsmith.schemas.record import CORE_NAMES, record_schema, validate_table

if TYPE_CHECKING:
    from pairsmith.pipelines.early_images import EarlyImages

IDENTITY = ("uid", "url", "caption", "source_file", "source_row")


def decode(data: bytes | None) -> Image.Image | None:
    """The stored image as RGB; None without bytes or when they do not decode."""
    if data is None:
        return None
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            return img if img.mode == "RGB" else img.convert("RGB")  # a JPEG is RGB already: no copy
    except (OSError, ValueError, Image.DecompressionBombError):
        return None


def image_loader(layout: Layout, shard: str, members: list[str | None]) -> Iterator[bytes | None]:
    """Image bytes per row, in row order, read lazily from the shard's tar (a local copy if remote)."""
    if all(m is None for m in members):
        yield from (None for _ in members)
        return
    fs, path = fsspec.core.url_to_fs(layout.tar(shard))
    with tempfile.TemporaryDirectory() as scratch:
        local = (
            path
            if "file" in fs.protocol
            else fs.get_file(path, f"{scratch}/shard.tar") or f"{scratch}/shard.tar"
        )
        with tarfile.open(local, mode="r") as tar:
            index = {info.name: info for info in tar.getmembers() if info.isfile()}
            for member in members:
                info = index.get(member) if member is not None else None
                yield tar.extractfile(info).read() if info is not None else None


def annotate_rows(
    rows: pa.Table,
    results: pa.Table,
    images: Iterator[bytes | None],
    annotators: list[Annotator],
    batch_size: int,
    pool: Executor | None = None,
    early: EarlyImages | None = None,
) -> dict[str, pa.Array]:
    """New columns for all rows (side-dataset columns keyed "dataset/column"); each image is
    decoded once and shared by every annotator; `pool` decodes and measures a batch's images.
    `early`: the per-image annotators' values, computed while the shard downloaded."""
    base = {"caption": rows.column("caption").to_pylist()}
    base |= {name: results.column(name).to_pylist() for name in results.column_names}
    done_early = [a for a in annotators if early is not None and early.takes(a)]
    read_images = any(a.reads_image for a in annotators if a not in done_early)
    chunks: dict[str, list[pa.Array]] = {}
    for start in range(0, rows.num_rows, batch_size):
        stop = min(start + batch_size, rows.num_rows)
        batch = Batch({k: v[start:stop] for k, v in base.items()}, [None] * (stop - start), pool)
        if read_images:
            batch.images = batch.map(decode, [next(images) for _ in range(start, stop)])
        for annotator in annotators:
            arrays = (
                annotator.arrays(early.columns(annotator, range(start, stop)))
                if annotator in done_early
                else annotator(batch)
            )
            for name, array in arrays.items():
                chunks.setdefault(name, []).append(array)
                batch.columns[name] = array.to_pylist()
    return {name: pa.concat_arrays(parts) for name, parts in chunks.items()}


def _record_table(
    rows: pa.Table, results: pa.Table, new: dict[str, pa.Array], annotators, provenance
) -> pa.Table:
    n = rows.num_rows
    model_fields = [f for a in annotators for f in a.fields if f.name not in CORE_NAMES]
    extras = rows.drop_columns([*IDENTITY, "input_problem"])
    schema = record_schema(model_fields, extras.schema)
    columns: dict[str, pa.Array] = {}
    for field in schema:
        if field.name in IDENTITY:
            columns[field.name] = rows.column(field.name)
        elif field.name in results.column_names:
            columns[field.name] = results.column(field.name)
        elif field.name in new:
            columns[field.name] = new[field.name]
        elif field.name in provenance:
            columns[field.name] = pa.array([provenance[field.name]] * n, field.type)
        elif field.name in extras.column_names:
            columns[field.name] = extras.column(field.name)
        else:
            columns[field.name] = pa.nulls(n, field.type)
    return pa.table(columns, schema=schema)


def _side_tables(
    rows: pa.Table, new: dict[str, pa.Array], annotators: list[Annotator]
) -> dict[str, pa.Table]:
    """Side datasets (embeddings), row-aligned with the data shard and keyed by uid."""
    tables = {}
    for annotator in annotators:
        for dataset, fields in annotator.side_fields.items():
            columns = {"uid": rows.column("uid"), "source_row": rows.column("source_row")}
            for f in fields:
                columns[f.name] = new.get(f"{dataset}/{f.name}", pa.nulls(rows.num_rows, f.type))
            tables[dataset] = pa.table(
                columns, schema=pa.schema([("uid", pa.string()), ("source_row", pa.int64()), *fields])
            )
    return tables


def annotate_shard(
    shard: str,
    layout: Layout,
    annotators: list[Annotator],
    batch_size: int,
    provenance: dict,
    pool: Executor | None = None,
    early: EarlyImages | None = None,
) -> dict:
    """Write the side datasets, then `data/SHARD.parquet` (its presence marks the shard done).
    `early`: per-image values computed during this shard's download (used if it saw every image)."""
    if layout.exists(layout.data_shard(shard)):
        return {"shard": shard, "skipped": True}
    rows = read_parquet(layout.input_shard(shard))
    results = read_parquet(layout.download_shard(shard))
    members = results.column("member").to_pylist()
    if early is not None and not early.has(i for i, m in enumerate(members) if m is not None):
        early = None  # not every stored image passed through it: compute everything from the tar
    images = image_loader(layout, shard, members)
    new = annotate_rows(rows, results, images, annotators, batch_size, pool, early)
    table = _record_table(rows, results, new, annotators, provenance)
    validate_table(table)
    for dataset, side in _side_tables(rows, new, annotators).items():
        write_parquet(side, layout.side_shard(dataset, shard))
    write_parquet(table, layout.data_shard(shard))
    return {"shard": shard, "rows": rows.num_rows}


def provenance(run_id: str, config_hash: str) -> dict:
    return {"run_id": run_id, "config_hash": config_hash, "pipeline_version": PIPELINE_VERSION}
