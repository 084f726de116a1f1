"""`pairsmith select OUT --where EXPR --out SUBSET`: a subset with the same schema and a manifest."""

from __future__ import annotations

import polars as pl
import pyarrow.parquet as pq

from pairsmith.pipelines.layout import Layout, read_json, write_json, write_parquet


class SelectionError(ValueError):
    """A bad --where expression (syntax, unknown column); the message says which."""


def parse_where(text: str) -> pl.Expr:
    """Evaluate a polars expression such as `(pl.col("status") == "success") & pl.col("align_ok")`."""
    try:
        expr = eval(text, {"__builtins__": {}}, {"pl": pl, "col": pl.col, "lit": pl.lit})  # noqa: S307
    except Exception as exc:
        raise SelectionError(f"cannot parse --where {text!r}: {exc}") from None
    if not isinstance(expr, pl.Expr):
        raise SelectionError(f"--where must be a polars expression, got {type(expr).__name__}")
    return expr


def select(source: str, where: str, target: str) -> dict:
    """Write the rows of `source` matching `where` to `target`, shard by shard, keeping the schema."""
    src, dst = Layout(source), Layout(target)
    expr = parse_where(where)
    if not src.shards("data"):
        raise SelectionError(f"{source} has no data shards (is it a pairsmith output folder?)")
    rows_in = rows_out = 0
    for shard in src.shards("data"):
        table = pq.read_table(src.data_shard(shard))
        try:
            kept = pl.from_arrow(table).filter(expr).to_arrow()
        except pl.exceptions.ColumnNotFoundError as exc:
            raise SelectionError(f"unknown column in --where: {str(exc).splitlines()[0]}") from None
        except pl.exceptions.PolarsError as exc:
            raise SelectionError(f"--where failed: {str(exc).splitlines()[0]}") from None
        rows_in += table.num_rows
        rows_out += kept.num_rows
        write_parquet(kept.cast(table.schema), dst.data_shard(shard))
    manifest = {
        "selection": {"source": source, "where": where},
        "source_manifest": read_json(src.manifest) if src.exists(src.manifest) else None,
        "input_rows": rows_in,
        "output_rows": rows_out,
        "note": "tar paths in the rows are relative to the source folder",
    }
    write_json(manifest, dst.manifest)
    return manifest
