"""`pairsmith select OUT [--recipe NAME] [--where EXPR] [--target-corruption R] [--keep-duplicates] --out SUBSET
[--export parquet|webdataset] [--overwrite]`: a subset with the same schema and a manifest that counts, rule by
rule, the rows each rule removes. Recipes: `flows/recipes.py`; targets: `flows/corruption_target.py`; the
--where grammar: `flows/where.py`; what is written (and resuming): `flows/export.py`."""

from __future__ import annotations

import functools
import operator
import os
import re
import time

import fsspec
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from pairsmith.filters.clip_score import clip_score_column
from pairsmith.filters.profiles import clip_models
from pairsmith.flows import corruption_target, export, recipes, summary
from pairsmith.flows import where as grammar
from pairsmith.pipelines.layout import Layout, read_json, read_parquet, write_json
from pairsmith.pipelines.shard_check import require_output
from pairsmith.schemas.config import ClipModelConfig, ModelsConfig
from pairsmith.schemas.errors import SelectionError

PARTIAL = re.compile(r"\.tmp-[0-9a-f]{8}$")


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


def _plan_file(layout: Layout) -> str:
    """The selection being written into a subset folder, until its manifest is (to resume it)."""
    return f"{layout.root.rstrip('/')}/_work/select.json"


def _same_selection(dst: Layout, record: dict) -> bool:
    """Whether `dst` holds an export (finished or not) of exactly this selection of this source run."""
    for path in (_plan_file(dst), dst.manifest):
        if dst.exists(path):
            try:
                return read_json(path).get("selection") == record
            except (ValueError, AttributeError):  # not a pairsmith file
                return False
    return False


def _check_target(src: Layout, target: str, overwrite: bool, record: dict) -> bool:
    """Refuse a target that is the source, inside it, or a folder that is not empty (unless `overwrite`
    and it does not hold the source, or it holds this very selection: then it is resumed). Returns True
    when the target must be emptied first."""
    source, there = _place(src.root), _place(target)
    if _within(there, source):
        where = "the source folder" if there == source else f"inside the source folder {src.root}"
        raise SelectionError(f"--out {target} is {where}: choose a folder outside it")
    fs, path = fsspec.core.url_to_fs(target)
    if not fs.exists(path):
        return False
    if not fs.isdir(path):
        raise SelectionError(f"--out {target} is a file: choose a folder")
    if not fs.ls(path) or (not overwrite and _same_selection(Layout(target), record)):
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


def recipe_context(layout: Layout, shards: list[str], clip_column: str | None) -> recipes.Context:
    """What the recipes' rules read from the dataset in `layout`: its CLIP score columns and quantiles."""
    models = _clip_models(layout)
    columns = [clip_score_column(m.alias, i == 0) for i, m in enumerate(models)]
    b32 = next((c for c, m in zip(columns, models, strict=True) if "ViT-B-32" in m.spec), None)
    files = [layout.data_shard(s) for s in shards]

    def quantile(column: str, q: float) -> float:
        return pl.scan_parquet(files).select(pl.col(column).quantile(q)).collect().item()

    return recipes.Context("clip_score", clip_column or b32, quantile, tuple(m.spec for m in models))


def evaluate(frame: pl.DataFrame, expr: pl.Expr) -> pl.Series:
    """The boolean mask of `expr` on one shard; polars errors become SelectionErrors."""
    try:
        keep = frame.select(expr.fill_null(False).alias("keep"))["keep"]
    except pl.exceptions.ColumnNotFoundError as exc:
        raise SelectionError(f"unknown column in the selection: {str(exc).splitlines()[0]}") from None
    except pl.exceptions.PolarsError as exc:
        raise SelectionError(f"the selection failed: {str(exc).splitlines()[0]}") from None
    if keep.dtype != pl.Boolean:
        raise SelectionError(f"the selection failed: it must be true or false for each row, not {keep.dtype}")
    if keep.len() == 1 and frame.height != 1:  # a constant holds for every row
        keep = pl.repeat(keep[0], frame.height, eager=True).alias("keep")
    return keep


def selection_rules(
    layout: Layout,
    shards: list[str],
    where: str | None,
    recipe: str | None,
    clip_column: str | None,
    keep_duplicates: bool = False,
    target_corruption: float | None = None,
) -> list[tuple[str, pl.Expr]]:
    """(text, expression) of each rule in the order `select` applies them: the recipe's (less its agreement
    rules under a corruption target), `--where`, then one row per duplicate group (unless `keep_duplicates`)."""
    rules = []
    if recipe is not None:
        try:
            chosen = recipes.get_recipe(recipe).rules
            context = recipe_context(layout, shards, clip_column) if shards else None
            rules = [
                # an empty output has no quantile to take, and no row for a rule to judge
                (r.text, r.build(context) if context else pl.lit(True))
                for r in chosen
                if not (target_corruption is not None and r.agreement)
            ]
        except recipes.RecipeError as exc:
            raise SelectionError(f"recipe {recipe}: {exc}") from None
    if where is not None:
        rules.append((f"--where {where}", parse_where(where)))
    if not keep_duplicates:
        rules.append((recipes.NOT_DUPLICATE.text, recipes.NOT_DUPLICATE.build(None)))
    return rules


def _drop_partial_files(dst: Layout) -> None:
    """Remove the temporary files that a killed export leaves (`layout.atomic_path`'s `NAME.tmp-XXXXXXXX`)."""
    fs, root = fsspec.core.url_to_fs(dst.root)
    if fs.exists(root):
        for path in fs.find(root):
            if PARTIAL.search(path):
                fs.rm(path)


def _schema(layout: Layout, shard: str) -> pa.Schema:
    fs, path = fsspec.core.url_to_fs(layout.data_shard(shard))
    with fs.open(path, "rb") as f:
        return pq.read_schema(f)


def _check_export(src: Layout, shards: list[str], options: dict) -> None:
    if options["export"] not in export.FORMATS:
        raise SelectionError(f"--export {options['export']}: choose one of {', '.join(export.FORMATS)}")
    if options["export_embeddings"] not in (None, "npy"):
        raise SelectionError(f"--export-embeddings {options['export_embeddings']}: the one choice is npy")
    if options["shard_size"] < 1:
        raise SelectionError(f"--shard-size {options['shard_size']}: give a positive number of samples")
    column = options["caption_column"]
    if shards and options["export"] == "webdataset":
        schema = _schema(src, shards[0])
        if column not in schema.names or schema.field(column).type != pa.string():
            texts = [f.name for f in schema if f.type == pa.string()]
            raise SelectionError(
                f"--caption-column {column}: not a text column of the rows ({', '.join(texts)})"
            )


def _record(src: Layout, source: str, rules: list[tuple[str, pl.Expr]], options: dict) -> dict:
    """What the subset holds, as its manifest's `selection` (a rerun resumes only the same one)."""
    run = read_json(src.manifest) if src.exists(src.manifest) else {}
    webdataset = options["export"] == "webdataset"
    return options | {
        "source": export.absolute_root(source),
        "source_run": {k: run.get(k) for k in ("run_id", "finished_at")},
        "rules": [text for text, _ in rules],
        "shard_size": options["shard_size"] if webdataset else None,
        "caption_column": options["caption_column"] if webdataset else None,
    }


def _exporter(src: Layout, dst: Layout, shards: list[str], options: dict) -> export.Export:
    models = [m.alias for m in _clip_models(src)]
    aliases = [a for a in models if all(src.exists(src.side_shard(f"embeddings/{a}", s)) for s in shards)]
    common = (src, dst, _schema(src, shards[0]), aliases, options["export_embeddings"] == "npy")
    if options["export"] == "parquet":
        return export.ParquetExport(*common)
    return export.WebDatasetExport(
        *common, shard_size=options["shard_size"], caption_column=options["caption_column"]
    )


def select(
    source: str,
    where: str | None,
    target: str,
    recipe: str | None = None,
    target_corruption: float | None = None,
    clip_column: str | None = None,
    overwrite: bool = False,
    keep_duplicates: bool = False,
    export_format: str = "parquet",
    shard_size: int = export.SHARD_SIZE,
    caption_column: str = "caption",
    export_embeddings: str | None = None,
) -> dict:
    """Write the rows of `source` that pass the recipe's rules, `where` and (unless `keep_duplicates`) are
    not marked duplicate (and, with a target, the least likely mismatched of them up to the target ratio)
    to `target`, shard by shard, keeping the schema, as `export_format` (see `flows/export.py`).
    `target` must be a new or empty folder (with `overwrite`, any folder that does not hold the source),
    or hold an unfinished export of the same selection, which is resumed."""
    src, dst = require_output(source), Layout(target)
    shards = src.shards("data")
    options = {
        "where": where,
        "recipe": recipe,
        "keep_duplicates": keep_duplicates,
        "target_corruption": target_corruption,
        "clip_column": clip_column,
        "export": export_format,
        "shard_size": shard_size,
        "caption_column": caption_column,
        "export_embeddings": export_embeddings,
    }
    _check_export(src, shards, options)
    rules = selection_rules(src, shards, where, recipe, clip_column, keep_duplicates, target_corruption)
    record = _record(src, source, rules, options)
    clear = _check_target(src, target, overwrite, record)
    expr = functools.reduce(operator.and_, [e for _, e in rules], pl.lit(True))
    plan = None
    if target_corruption is not None:
        try:
            plan = corruption_target.plan(src, shards, lambda f: evaluate(f, expr), target_corruption)
        except corruption_target.TargetError as exc:
            raise SelectionError(str(exc)) from None
    if clear:
        dst.fs.rm(fsspec.core.url_to_fs(target)[1], recursive=True)
    _drop_partial_files(dst)
    write_json({"selection": record}, _plan_file(dst))
    if dst.exists(dst.manifest):
        dst.fs.rm(fsspec.core.url_to_fs(dst.manifest)[1])
    started = time.time()
    writer = _exporter(src, dst, shards, options) if shards else None
    counts = [{"rule": text, "removed": 0, "removed_alone": 0, "left": 0} for text, _ in rules]
    rows_in = rows_out = by_target = 0
    score_sum = 0.0
    for shard in shards:
        table = read_parquet(src.data_shard(shard))
        frame = pl.from_arrow(table)
        for count, effect in zip(counts, summary.rule_effects(frame, rules, evaluate), strict=True):
            count["removed"] += effect.removed.height
            count["removed_alone"] += effect.removed_alone
            count["left"] += effect.left
        mask = evaluate(frame, expr)
        if plan:
            by_target += int(mask.sum())
            mask = mask & plan.keep(frame)
            by_target -= int(mask.sum())
        kept = frame.filter(mask)
        rows_in += table.num_rows
        rows_out += kept.height
        if plan:
            score_sum += float(kept["corruption_score"].sum())
        try:
            sides = export.side_tables(src, shard, writer.aliases, table.column("uid"), mask.to_arrow())
        except ValueError as exc:
            raise SelectionError(str(exc)) from None
        writer.add(shard, kept, sides)
    if plan:
        counts.append(
            {"rule": f"--target-corruption {target_corruption}", "removed": by_target, "removed_alone": None}
            | {"left": rows_out}
        )
    manifest = {
        "selection": record,
        "rules": counts,
        "source_manifest": read_json(src.manifest) if src.exists(src.manifest) else None,
        "input_rows": rows_in,
        "output_rows": rows_out,
        "export": (writer.finish() if writer else {"format": export_format})
        | {"seconds": round(time.time() - started, 3)},
    }
    if plan:
        manifest["corruption"] = corruption_target.report(plan, rows_out, score_sum, src)
    write_json(manifest, dst.manifest)
    dst.fs.rm(fsspec.core.url_to_fs(_plan_file(dst))[1].rsplit("/", 1)[0], recursive=True)  # _work/
    return manifest
