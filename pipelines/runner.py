"""Run each stage as its own Beam pipeline on the configured runner, with a progress bar.

Stages hand over through files in the output folder (see `layout`), so each one can be retried or
resumed alone, and Prefect can run them as separate tasks.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass

from pairsmith.filters import build_annotators, check_models
from pairsmith.filters.profiles import clip_models
from pairsmith.pipelines.annotate import provenance
from pairsmith.pipelines.caption_sharing import share_captions as share_captions_graph
from pairsmith.pipelines.corruption_stage import BUCKET_BLOCKS, bucket_count, count_rows
from pairsmith.pipelines.corruption_stage import score_corruption as corruption_graph
from pairsmith.pipelines.dedup import check_config, deduplicate
from pairsmith.pipelines.finalize import stage_seconds_path, write_manifest
from pairsmith.pipelines.ingest import list_input_files, read_input_file
from pairsmith.pipelines.layout import Layout, read_json, write_json, write_npy
from pairsmith.pipelines.progress import shard_progress
from pairsmith.pipelines.run_state import (
    check_output,
    claim_output,
    discard_shard,
    drop_manifest,
    invalidate_global_stages,
)
from pairsmith.pipelines.semantic_clusters import train_centroids, write_cells
from pairsmith.pipelines.shard_check import OutputError, damaged_data, damaged_downloads, input_rows
from pairsmith.pipelines.stage_columns import finish_stage, stage_done
from pairsmith.pipelines.stages import (
    DownloadAnnotateFn,
    DownloadShardFn,
    IngestFileFn,
    MergeShardFn,
    dry_run,
    pipeline_options,
    run_graph,
    run_shards,
    translated,
)
from pairsmith.schemas.config import ConfigError, RunConfig, RunnerConfig


def timed(stage: str):
    """Decorate a stage function (first argument: the Layout) to record its wall seconds under
    `stage` in `_work/stage_seconds.json`, which finalize copies into the manifest."""

    def wrap(fn):
        @functools.wraps(fn)
        def run(layout: Layout, *args, **kwargs):
            began = time.time()
            result = fn(layout, *args, **kwargs)
            path = stage_seconds_path(layout)
            seconds = read_json(path) if layout.exists(path) else {}
            write_json(seconds | {stage: round(time.time() - began, 3)}, path)
            return result

        return run

    return wrap


def check_input(layout: Layout, cfg: RunConfig) -> list[str]:
    """The input files, each opened once here so that a bad file fails fast with a clear message."""
    if cfg.input.path is None:
        raise ConfigError("no input: pass --input PATH or set input.path")
    files = list_input_files(cfg.input.path, cfg.input.format, exclude=layout.root)
    for path in files:
        next(read_input_file(path, cfg.input), None)
    return files


def preflight(layout: Layout, cfg: RunConfig) -> None:
    """Every check that needs no work done: config vs output folder, models, input files (or shards)."""
    check_output(layout, cfg)
    check_config(cfg.dedup)
    check_models(cfg.models, cfg.recaption)
    if layout.exists(layout.ingest_done):
        try:
            for shard in read_json(layout.ingest_done)["shards"]:
                input_rows(layout, shard)
        except OutputError:
            drop_manifest(layout)  # the output is no longer whole: no manifest may say it is
            raise
    else:
        check_input(layout, cfg)


@timed("ingest")
def ingest(layout: Layout, cfg: RunConfig) -> list[str]:
    """Cut the input into shards (once: a finished ingest is not redone). Returns shard names."""
    if layout.exists(layout.ingest_done):
        return read_json(layout.ingest_done)["shards"]
    files = check_input(layout, cfg)
    local = RunnerConfig() if dry_run(cfg.runner) else cfg.runner  # a dry run still needs the shards
    run_shards("Ingest", list(enumerate(files)), IngestFileFn(layout, cfg.input), local)
    shards = layout.shards("input")
    write_json({"files": files, "shards": shards}, layout.ingest_done)
    return shards


@timed("download")
def download(layout: Layout, cfg: RunConfig, shards: list[str]) -> None:
    for shard in damaged_downloads(layout, shards):
        discard_shard(layout, shard, download=True)
    pending = [s for s in shards if not layout.exists(layout.download_shard(s))]
    with shard_progress("download", len(shards), lambda: len(layout.shards("download"))):
        run_shards("Download", pending, DownloadShardFn(layout, cfg.download), cfg.runner)


@timed("download+annotate")
def download_and_annotate(layout: Layout, cfg: RunConfig, shards: list[str], run: dict) -> None:
    """Download and annotate every shard without an intact data shard, in groups of
    `runner.shard_group` per worker (the next shard downloads while one is annotated). When any data
    shard is (re)made, the global stages are invalidated, since their columns depend on every row."""
    for shard in damaged_downloads(layout, shards):
        discard_shard(layout, shard, download=True)
    fields = [f for a in build_annotators(cfg.models, cfg.annotate, cfg.recaption) for f in a.fields]
    embeddings = [f"embeddings/{m.alias}" for m in clip_models(cfg.models)]  # ClipScore's side datasets
    for shard in damaged_data(layout, shards, fields, embeddings):
        discard_shard(layout, shard)
    pending = [s for s in shards if not layout.exists(layout.data_shard(s))]
    if pending:
        invalidate_global_stages(layout)
    size = cfg.runner.shard_group
    groups = [pending[i : i + size] for i in range(0, len(pending), size)]
    fn = DownloadAnnotateFn(
        layout,
        cfg.download,
        cfg.annotate,
        cfg.models,
        provenance(run["run_id"], run["config_hash"]),
        cfg.recaption,
    )
    with shard_progress("download+annotate", len(shards), lambda: len(layout.shards("data"))):
        run_shards("DownloadAnnotate", groups, fn, cfg.runner)


def start(layout: Layout, cfg: RunConfig) -> dict:
    """Check that every model loads here (before any download), then claim the output folder."""
    model_ids = check_models(cfg.models, cfg.recaption)
    model_ids |= {
        type(a).__name__: a.model_id
        for a in build_annotators(cfg.models, cfg.annotate, cfg.recaption)
        if type(a).model_id
    }
    run = claim_output(layout, cfg)
    write_json({}, stage_seconds_path(layout))  # this run's stages, even those it finds done
    return run | {"model_ids": model_ids}


@timed("caption_sharing")
def share_captions(layout: Layout, cfg: RunConfig, shards: list[str]) -> None:
    """The global caption-sharing stage (once: a finished one is not redone)."""
    if stage_done(layout, "caption_sharing") or not shards:
        return
    run_graph("CaptionSharing", shards, share_captions_graph, cfg.runner, layout)
    if not dry_run(cfg.runner):
        finish_stage(layout, "caption_sharing", shards)


@timed("dedup")
def dedup(layout: Layout, cfg: RunConfig, shards: list[str]) -> None:
    """The global dedup stage (once: a finished one is not redone). k-means for SemDeDup trains here,
    on a sample, and its centroids go to a file that every worker reads."""
    if stage_done(layout, "dedup") or not shards:
        return
    primary = clip_models(cfg.models)[0].alias if clip_models(cfg.models) else None
    centroids_path, centroids = None, []
    if "semantic" in cfg.dedup.kinds and primary is not None and dry_run(cfg.runner):
        centroids_path = layout.centroids  # a dry run trains nothing: the path the workers would read
    elif "semantic" in cfg.dedup.kinds and primary is not None:
        centroids = train_centroids(layout, primary, shards, cfg.dedup.semantic_clusters, cfg.dedup.seed)
        if centroids is not None:
            centroids_path = layout.centroids
            write_npy(centroids, centroids_path)
            write_cells(centroids, centroids_path)
    run_graph("Dedup", shards, deduplicate, cfg.runner, layout, cfg.dedup, primary, centroids_path)
    if dry_run(cfg.runner):
        return
    finish_stage(
        layout, "dedup", shards, semantic_clusters=None if centroids_path is None else len(centroids)
    )


@timed("corruption")
def score_corruption(layout: Layout, cfg: RunConfig, shards: list[str], again: bool = False) -> dict | None:
    """The global corruption stage (once: a finished one is not redone unless `again`, e.g. after
    `pairsmith recaption` or on a corrupted copy). Returns the report (`OUT/corruption.json`)."""
    if again and layout.exists(layout.corruption_done):
        layout.fs.rm(layout.corruption_done)
    if stage_done(layout, "corruption") or not shards:
        return read_json(layout.corruption_report) if layout.exists(layout.corruption_report) else None
    models = clip_models(cfg.models)
    if models:
        rows = (
            sum(input_rows(layout, s)[0] for s in shards)
            if dry_run(cfg.runner)
            else count_rows(layout, shards)
        )
        buckets = bucket_count(rows, BUCKET_BLOCKS * (cfg.corruption.block_size + 1))
        graph = corruption_graph
        run_graph(
            "Corruption", shards, graph, cfg.runner, layout, cfg.corruption, models[0], cfg.models, buckets
        )
    if dry_run(cfg.runner):
        return None
    finish_stage(layout, "corruption", shards, columns=bool(models))
    return read_json(layout.corruption_report) if models else None


@timed("merge")
def merge(layout: Layout, cfg: RunConfig, shards: list[str]) -> None:
    """Merge the global stages' columns into each data shard not merged since they changed."""
    pending = [s for s in shards if not layout.exists(layout.merged(s))]
    run_shards("Merge", pending, MergeShardFn(layout), cfg.runner)


def write_plan(layout: Layout, cfg: RunConfig, shards: list[str]) -> dict:
    """A dry run's result, `OUT/plan.json`: the runner, its options and each stage's pipeline as
    translated (its top-level transforms); nothing was submitted."""
    plan = {
        "runner": cfg.runner.runner,
        "options": pipeline_options(cfg.runner).get_all_options(drop_default=True),
        "shards": len(shards),
        "ingest": "ran here on DirectRunner, to know the shards (OUT/_work/input)",
        "pipelines": list(translated),
    }
    write_json(plan, layout.plan)
    return plan


def finalize(layout: Layout, cfg: RunConfig, run: dict, started: float) -> dict:
    """Merge the global stages' columns into every data shard not merged yet (one write each,
    validated), check every data shard's footer and row count, then write the manifest (a dry run:
    the plan)."""
    shards = layout.shards("input")
    merge(layout, cfg, shards)
    if dry_run(cfg.runner):
        return write_plan(layout, cfg, shards)
    damaged = damaged_data(layout, shards, None, [])
    if damaged:
        raise OutputError(
            f"damaged data shard {next(iter(damaged.values()))} ({len(damaged)} in all); rerun with the "
            "same config to remake it"
        )
    return write_manifest(layout, run, run["model_ids"], started)


@dataclass(frozen=True)
class Context:
    """What every stage of one run reads: the output folder, the config, the claimed run."""

    layout: Layout
    cfg: RunConfig
    run: dict
    started: float

    @property
    def shards(self) -> list[str]:
        """The input shards once ingest is done; in a folder without input (a corrupted copy) its
        data shards."""
        if self.layout.exists(self.layout.ingest_done):
            return read_json(self.layout.ingest_done)["shards"]
        return self.layout.shards("data")


@dataclass(frozen=True)
class Stage:
    """One step of a run: `run(context)`; `retries` for Prefect (the step resumes, so a retry is safe)."""

    name: str
    run: Callable[[Context], object]
    retries: int = 0


STAGES = (
    Stage("ingest", lambda c: ingest(c.layout, c.cfg)),
    Stage("download+annotate", lambda c: download_and_annotate(c.layout, c.cfg, c.shards, c.run), retries=2),
    Stage("caption_sharing", lambda c: share_captions(c.layout, c.cfg, c.shards)),
    Stage("dedup", lambda c: dedup(c.layout, c.cfg, c.shards)),
    Stage("corruption", lambda c: score_corruption(c.layout, c.cfg, c.shards)),
    Stage("finalize", lambda c: finalize(c.layout, c.cfg, c.run, c.started)),
)


def named(*names: str) -> tuple[Stage, ...]:
    """The stages of `names`, in the order of STAGES (for commands that redo part of a run)."""
    unknown = set(names) - {s.name for s in STAGES}
    if unknown:
        raise KeyError(f"no stage {sorted(unknown)}")
    return tuple(s for s in STAGES if s.name in names)


GLOBAL_STAGES = named("caption_sharing", "dedup", "corruption")  # over every row of the dataset


def begin(cfg: RunConfig, out: str) -> Context:
    """Check the models and claim the output folder: the context of a run's stages."""
    started = time.time()
    layout = Layout(out)
    return Context(layout, cfg, start(layout, cfg), started)


def run_stages(context: Context, stages: tuple[Stage, ...] = STAGES) -> None:
    """Run `stages` in order without Prefect (the Prefect flow runs the same list)."""
    for stage in stages:
        stage.run(context)


def result(context: Context) -> dict:
    """What a finished run wrote: its manifest, or for a dry run its plan."""
    return read_json(context.layout.plan if dry_run(context.cfg.runner) else context.layout.manifest)


def run_all(cfg: RunConfig, out: str) -> dict:
    """Every stage of a run, in order; returns the manifest (a dry run: the plan)."""
    context = begin(cfg, out)
    run_stages(context)
    return result(context)
