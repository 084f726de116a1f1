"""`pairsmith select OUT [--recipe NAME] [--where EXPR] [--target-corruption R] --out SUBSET [--overwrite]`:
a subset with the same schema and a manifest. Recipes: `flows/recipes.py`; targets:
`flows/corruption_target.py`; the --where grammar: `flows/where.py`."""

from __future__ import annotations

import functools
import operator
import os

import fsspec
import polars as pl

from pairsmith.filters.clip_score import clip_score_column
from pairsmith.filters.profiles import clip_models
from pairsmith.flows import corruption_target, recipes
from pairsmith.flows import where as grammar
from pairsmith.pipelines.layout import Layout, read_json, read_parquet, write_json, write_parquet
from pairsmith.pipelines.shard_check import require_output
from pairsmith.schemas.config import ClipModelConfig, ModelsConfig
from pairsmith.schemas.errors import SelectionError


def parse_where(text: str) -> pl.Expr:
    """The polars expression of a --where text, in the grammar of `flows/where.py` (never executed)."""
    try:
        return grammar.parse_where(text)
    except grammar.WhereError as exc:
        raise SelectionError(f"cannot parse --where {text!r}: {exc}") from None


def _place(path: str) -> tuple[str, str]:
    """(protocol, absolute path without a trailing slash) of a folder, to compare two folders."""
    fs, p = fsspec.core.url_to_fs(path)
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    return protocol, (os.path.realpath(p) if protocol in ("file", "local") else p.rstrip("/"))


def _within(inner: tuple[str, str], outer: tuple[str, str]) -> bool:
    return inner[0] == outer[0] and (inner[1] + "/").startswith(outer[1].rstrip("/") + "/")


def _check_target(src: Layout, target: str, overwrite: bool) -> bool:
    """Refuse a target that is the source, inside it, or a folder that is not empty (unless `overwrite`
    and it does not hold the source). Returns True when the target must be emptied first."""
    source, there = _place(src.root), _place(target)
    if _within(there, source):
        where = "the source folder" if there == source else f"inside the source folder {src.root}"
        raise SelectionError(f"--out {target} is {where}: choose a folder outside it")
    fs, path = fsspec.core.url_to_fs(target)
    if not fs.exists(path):
        return False
    if not fs.isdir(path):
        raise SelectionError(f"--out {target} is a file: choose a folder")
    if not fs.ls(path):
        return False
    if not overwrite:
        raise SelectionError(
            f"--out {target} is not empty: choose a new folder, or pass --overwrite to replace it"
        )
    if _within(source, there):
        raise SelectionError(
            f"--out {target} holds the source folder {src.root}: --overwrite would delete it"
        )
    return True


def _clip_models(layout: Layout) -> list[ClipModelConfig]:
    """The CLIP models of the run that wrote `layout` (or the source of a subset), primary first."""
    for path in (layout.run_file, layout.manifest):
        if layout.exists(path):
            data = read_json(path)
            config = data.get("config") or (data.get("source_manifest") or {}).get("config")
            if config:
                return clip_models(ModelsConfig.model_validate(config["models"]))
    return []


def _context(layout: Layout, shards: list[str], clip_column: str | None) -> recipes.Context:
    models = _clip_models(layout)
    columns = [clip_score_column(m.alias, i == 0) for i, m in enumerate(models)]
    b32 = next((c for c, m in zip(columns, models, strict=True) if "ViT-B-32" in m.spec), None)
    files = [layout.data_shard(s) for s in shards]

    def quantile(column: str, q: float) -> float:
        return pl.scan_parquet(files).select(pl.col(column).quantile(q)).collect().item()

    return recipes.Context("clip_score", clip_column or b32, quantile, tuple(m.spec for m in models))


def _evaluate(frame: pl.DataFrame, expr: pl.Expr) -> pl.Series:
    """The boolean mask of `expr` on one shard; polars errors become SelectionErrors."""
    try:
        return frame.select(expr.fill_null(False).alias("keep"))["keep"]
    except pl.exceptions.ColumnNotFoundError as exc:
        raise SelectionError(f"unknown column in the selection: {str(exc).splitlines()[0]}") from None
    except pl.exceptions.PolarsError as exc:
        raise SelectionError(f"the selection failed: {str(exc).splitlines()[0]}") from None


def select(
    source: str,
    where: str | None,
    target: str,
    recipe: str | None = None,
    target_corruption: float | None = None,
    clip_column: str | None = None,
    overwrite: bool = False,
) -> dict:
    """Write the rows of `source` that pass the recipe's rules and `where` (and, with a target, the
    least likely mismatched of them up to the target ratio) to `target`, shard by shard, keeping the schema.
    `target` must be a new or empty folder (with `overwrite`, any folder that does not hold the source)."""
    src, dst = require_output(source), Layout(target)
    clear = _check_target(src, target, overwrite)
    shards = src.shards("data")
    rules, parts = [], []
    if recipe is not None:
        try:
            chosen = recipes.get_recipe(recipe)
            rules = [r for r in chosen.rules if not (target_corruption is not None and r.agreement)]
            if shards:  # an empty output has no quantile to take: every rule keeps its zero rows
                context = _context(src, shards, clip_column)
                parts += [r.build(context) for r in rules]
        except recipes.RecipeError as exc:
            raise SelectionError(f"recipe {recipe}: {exc}") from None
    if where is not None:
        parts.append(parse_where(where))
    expr = functools.reduce(operator.and_, parts, pl.lit(True))
    plan = None
    if target_corruption is not None:
        try:
            plan = corruption_target.plan(src, shards, lambda f: _evaluate(f, expr), target_corruption)
        except corruption_target.TargetError as exc:
            raise SelectionError(str(exc)) from None
    if clear:
        dst.fs.rm(fsspec.core.url_to_fs(target)[1], recursive=True)
    rows_in = rows_out = 0
    score_sum = 0.0
    for shard in shards:
        table = read_parquet(src.data_shard(shard))
        frame = pl.from_arrow(table)
        mask = _evaluate(frame, expr)
        kept = frame.filter(mask & plan.keep(frame) if plan else mask)
        rows_in += table.num_rows
        rows_out += kept.height
        if plan:
            score_sum += float(kept["corruption_score"].sum())
        write_parquet(kept.to_arrow().cast(table.schema), dst.data_shard(shard))
    manifest = {
        "selection": {
            "source": source,
            "where": where,
            "recipe": recipe,
            "rules": [r.text for r in rules],
            "target_corruption": target_corruption,
            "clip_column": clip_column,
        },
        "source_manifest": read_json(src.manifest) if src.exists(src.manifest) else None,
        "input_rows": rows_in,
        "output_rows": rows_out,
        "note": "tar paths in the rows are relative to the source folder",
    }
    if plan:
        manifest["corruption"] = corruption_target.report(plan, rows_out, score_sum, src)
    write_json(manifest, dst.manifest)
    return manifest
