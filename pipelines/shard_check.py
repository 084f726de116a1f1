"""Is an output folder what it claims? Shard files are checked from their Parquet footers (readable, the
row count of their input shard, the schema the run writes) before a stage trusts them, and a folder
handed to `stats` or `select` must be a pairsmith output.

Writes are atomic (`layout.write_parquet`), so a damaged shard comes from outside the run: a truncated
copy, a full disk of another tool, a file deleted by hand. A damaged shard that the run can make again
is discarded (`run_state.discard_shard`) and remade; one it cannot (an input shard) stops the run.
"""

from __future__ import annotations

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

from pairsmith.pipelines.annotate import IDENTITY
from pairsmith.pipelines.layout import Layout
from pairsmith.schemas.errors import OutputError
from pairsmith.schemas.record import record_schema


def footer(path: str) -> pq.FileMetaData | None:
    """The footer (row count, schema) of a readable Parquet file, else None."""
    fs, p = fsspec.core.url_to_fs(path)
    try:
        with fs.open(p, "rb") as f:
            return pq.ParquetFile(f).metadata
    except (OSError, pa.ArrowException):
        return None


def problem(path: str, rows: int, schema: pa.Schema | None = None) -> str | None:
    """Why the Parquet file at `path` cannot be trusted (missing, unreadable footer, other row count
    than `rows`, other column names or types than `schema`), or None if it can."""
    fs, p = fsspec.core.url_to_fs(path)
    if not fs.exists(p):
        return "missing"
    found = footer(path)
    if found is None:
        return "unreadable (truncated or not Parquet)"
    if found.num_rows != rows:
        return f"{found.num_rows} rows, its input shard has {rows}"
    if schema is not None and _columns(found.schema.to_arrow_schema()) != _columns(schema):
        return "columns differ from the run's schema"
    return None


def _columns(schema: pa.Schema) -> list[tuple[str, pa.DataType]]:
    return [(f.name, f.type) for f in schema]


def input_rows(layout: Layout, shard: str) -> tuple[int, pa.Schema]:
    """Rows and schema of an input shard; OutputError if it is damaged (only a new run remakes it)."""
    path = layout.input_shard(shard)
    found = footer(path)
    if found is None:
        why = "unreadable" if layout.exists(path) else "missing"
        raise OutputError(
            f"input shard {path} is damaged ({why}); it cannot be remade in place: start again with a new --out"
        )
    return found.num_rows, found.schema.to_arrow_schema()


def data_schema(model_fields: list[pa.Field], input_schema: pa.Schema) -> pa.Schema:
    """The columns annotate writes for an input shard: the record contract, the run's model fields,
    the shard's extra input columns."""
    extras = [f for f in input_schema if f.name not in (*IDENTITY, "input_problem")]
    return record_schema(model_fields, pa.schema(extras))


def side_files(layout: Layout, shard: str) -> list[str]:
    """The side-dataset files of a shard (`embeddings/ALIAS/SHARD.parquet`)."""
    fs, pattern = fsspec.core.url_to_fs(layout.side_shard("embeddings/*", shard))
    found = sorted(fs.glob(pattern))
    return [fs.unstrip_protocol(p) for p in found] if "://" in layout.root else found


def damaged_downloads(layout: Layout, shards: list[str]) -> dict[str, str]:
    """Existing download shards that cannot be trusted, with why."""
    found = {}
    for shard in shards:
        path = layout.download_shard(shard)
        if layout.exists(path):
            why = problem(path, input_rows(layout, shard)[0])
            if why:
                found[shard] = f"{path}: {why}"
    return found


def damaged_data(
    layout: Layout, shards: list[str], model_fields: list[pa.Field] | None, side_datasets: list[str]
) -> dict[str, str]:
    """Existing data shards that cannot be trusted, or whose side files (`side_datasets`, e.g.
    `embeddings/toy`) cannot, with why; columns are checked when `model_fields` is given."""
    found = {}
    for shard in shards:
        path = layout.data_shard(shard)
        if not layout.exists(path):
            continue
        rows, schema = input_rows(layout, shard)
        files = [(path, None if model_fields is None else data_schema(model_fields, schema))]
        files += [(layout.side_shard(dataset, shard), None) for dataset in side_datasets]
        for file, expected in files:
            why = problem(file, rows, expected)
            if why:
                found[shard] = f"{file}: {why}"
                break
    return found


def require_output(root: str) -> Layout:
    """The layout of a finished pairsmith output (a run, a subset or a copy, possibly with zero rows),
    else OutputError saying what `root` is instead."""
    layout = Layout(root)
    fs, path = fsspec.core.url_to_fs(root)
    if not fs.exists(path):
        raise OutputError(f"{root}: no such folder")
    if not fs.isdir(path):
        raise OutputError(f"{root} is a file, not a pairsmith output folder")
    shards = layout.shards("data")  # without a manifest: a run still going, or stopped; shards can be read
    if not shards and not layout.exists(layout.manifest):
        if layout.exists(layout.run_file):
            raise OutputError(f"{root} holds a run that has not finished a shard yet: rerun it to resume")
        raise OutputError(f"{root} is not a pairsmith output (no manifest.json, no data/*.parquet)")
    for shard in shards:
        if footer(layout.data_shard(shard)) is None:
            raise OutputError(f"data shard {layout.data_shard(shard)} is damaged (unreadable)")
    return layout
