"""Every piece of Beam in pairsmith: thin adapters around the stages' plain functions.

- per-shard stages: a DoFn per stage (ingest, download, download+annotate, retry, recaption, merge)
  that loads its models once per worker process (`setup`, through `shared_models`) and calls the
  stage's function on each element;
  `run_shards` spreads the elements over workers (Reshuffle) in one pipeline;
- global stages: `BeamFlow` runs a stage graph (`pipelines/graph.py`: caption sharing, dedup,
  corruption, `corrupt`'s injection) as Beam transforms; `run_graph` makes it one pipeline.
Every function called here skips finished shards and writes its outputs atomically, so a rerun resumes.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import apache_beam as beam
import torch
from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions, StandardOptions, TestOptions

from pairsmith.filters import build_annotators
from pairsmith.filters.devices import annotate_batch_size
from pairsmith.pipelines.annotate import annotate_shard
from pairsmith.pipelines.download import download_shard
from pairsmith.pipelines.early_images import EarlyImages, early_annotators
from pairsmith.pipelines.ingest import cut_shards
from pairsmith.pipelines.layout import Layout, write_json, write_parquet
from pairsmith.pipelines.recaption import build_recaptioners, recaption_key, recaption_shard
from pairsmith.pipelines.retry import retry_shard
from pairsmith.pipelines.shared_models import shared
from pairsmith.pipelines.stage_columns import merge_shard
from pairsmith.schemas.config import (
    AnnotateConfig,
    DownloadConfig,
    InputConfig,
    ModelsConfig,
    RecaptionConfig,
    RunnerConfig,
)


class IngestFileFn(beam.DoFn):
    """(file index, path) -> names of the input shards written for that file."""

    def __init__(self, layout: Layout, cfg: InputConfig):
        self.layout, self.cfg = layout, cfg

    def process(self, element: tuple[int, str]):
        index, path = element
        for name, table in cut_shards(index, path, self.cfg):
            write_parquet(table, self.layout.input_shard(name))
            yield name


class DownloadShardFn(beam.DoFn):
    def __init__(self, layout: Layout, cfg: DownloadConfig):
        self.layout, self.cfg = layout, cfg

    def process(self, shard: str):
        yield download_shard(shard, self.layout, self.cfg)


class RetryShardFn(beam.DoFn):
    """(shard, input rows) -> the shard's failed downloads fetched again (`pipelines/retry.py`)."""

    def __init__(self, layout: Layout, cfg: DownloadConfig):
        self.layout, self.cfg = layout, cfg

    def process(self, element: tuple[str, list[int]]):
        shard, rows = element
        yield retry_shard(self.layout, shard, rows, self.cfg)


def worker_name() -> str:
    """Which process did the work: `host:pid`."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _set_up(annotators: list) -> list:
    """The annotators with their models loaded (`setup`)."""
    for annotator in annotators:
        annotator.setup()
    return annotators


def _json(*configs) -> str:
    return "|".join(c.model_dump_json() if c is not None else "-" for c in configs)


class DownloadAnnotateFn(beam.DoFn):
    """A group of shards -> each one downloaded, then annotated. Each stored image is decoded and
    measured by the per-image annotators as soon as it is written (`early_images`), the next shard
    downloads in a background thread while the current one is annotated, and the models load once
    per worker (`shared_models`) beside the first download, so the network overlaps decoding and
    model work."""

    def __init__(
        self,
        layout: Layout,
        download: DownloadConfig,
        cfg: AnnotateConfig,
        models: ModelsConfig,
        provenance: dict,
        recaption: RecaptionConfig | None = None,
    ):
        self.layout, self.download, self.cfg, self.models = layout, download, cfg, models
        self.provenance, self.recaption = provenance, recaption

    def setup(self):
        if self.models.threads:
            torch.set_num_threads(self.models.threads)
        key = "annotators:" + _json(self.models, self.cfg, self.recaption)
        built = build_annotators(self.models, self.cfg, self.recaption)  # cheap: no model loaded yet
        self.early = bool(early_annotators(built))
        self.loader = ThreadPoolExecutor(1, thread_name_prefix="models")
        self.annotators = self.loader.submit(shared, key, lambda: _set_up(built))
        self.pool = ThreadPoolExecutor(self.cfg.threads or os.cpu_count(), thread_name_prefix="images")
        self.batch_size = annotate_batch_size(self.cfg, self.models)  # larger on a GPU

    def _download(self, shard: str) -> tuple[float, EarlyImages | None]:
        """Download `shard`: its seconds, and its early per-image values (None if it was done before
        or no annotator runs early)."""
        began, early = time.perf_counter(), EarlyImages(self.annotators, self.pool) if self.early else None
        done = download_shard(shard, self.layout, self.download, on_image=early.add if early else None)
        return time.perf_counter() - began, None if done.get("skipped") else early

    def process(self, shards: list[str]):
        fetcher = ThreadPoolExecutor(1, thread_name_prefix="download")
        try:
            downloads = [fetcher.submit(self._download, s) for s in shards]
            for shard, download in zip(shards, downloads, strict=True):
                (download_s, early), began = download.result(), time.perf_counter()
                annotators = self.annotators.result()
                done = annotate_shard(
                    shard, self.layout, annotators, self.batch_size, self.provenance, self.pool, early
                )
                if not done.get("skipped"):
                    seconds = {"download_s": download_s, "annotate_s": time.perf_counter() - began}
                    write_json(done | seconds | {"worker": worker_name()}, self.layout.shard_log(shard))
                yield shard
        finally:
            fetcher.shutdown(cancel_futures=True)

    def teardown(self):
        self.pool.shutdown()
        self.loader.shutdown()


class MergeShardFn(beam.DoFn):
    """Shard -> the global stages' columns merged into its data shard (`stage_columns.merge_shard`)."""

    def __init__(self, layout: Layout):
        self.layout = layout

    def process(self, shard: str):
        merge_shard(self.layout, shard)
        yield shard


class ForEachShard(beam.PTransform):
    """Spread elements over workers (Reshuffle) and apply one DoFn to each."""

    def __init__(self, fn: beam.DoFn):
        super().__init__()
        self.fn = fn

    def expand(self, pcoll):
        return pcoll | "Spread" >> beam.Reshuffle() | "Apply" >> beam.ParDo(self.fn)


class RecaptionShardFn(beam.DoFn):
    """Loads the captioner and the CLIP embedder once per worker, then recaptions shard after shard."""

    def __init__(
        self, layout: Layout, spec: str, cfg: RecaptionConfig, models: ModelsConfig, batch_size: int
    ):
        self.layout, self.spec, self.cfg, self.models, self.batch_size = layout, spec, cfg, models, batch_size
        self.key = recaption_key(spec, cfg)

    def setup(self):
        if self.models.threads:
            torch.set_num_threads(self.models.threads)
        key = "recaptioners:" + _json(self.cfg, self.models)
        self.annotators = shared(key, lambda: _set_up(build_recaptioners(self.cfg, self.models)))

    def process(self, shard: str):
        yield recaption_shard(shard, self.layout, self.annotators, self.batch_size, self.key)


class BeamFlow:
    """A Flow over a PCollection: each operation adds the Beam transform of that name."""

    def __init__(self, pcoll):
        self.pcoll = pcoll

    @staticmethod
    def _side(side: BeamFlow | None) -> tuple:
        return () if side is None else (beam.pvalue.AsSingleton(side.pcoll),)

    def map(self, label: str, fn: Callable, *args, side: BeamFlow | None = None) -> BeamFlow:
        return BeamFlow(self.pcoll | label >> beam.Map(fn, *args, *self._side(side)))

    def flat_map(self, label: str, fn: Callable, *args, side: BeamFlow | None = None) -> BeamFlow:
        return BeamFlow(self.pcoll | label >> beam.FlatMap(fn, *args, *self._side(side)))

    def group_by_key(self, label: str) -> BeamFlow:
        return BeamFlow(self.pcoll | label >> beam.GroupByKey())

    def combine(self, label: str, fn: Callable[[Iterable], Any]) -> BeamFlow:
        return BeamFlow(self.pcoll | label >> beam.CombineGlobally(fn))

    def flatten(self, label: str, *others: BeamFlow) -> BeamFlow:
        return BeamFlow([self.pcoll, *(o.pcoll for o in others)] | label >> beam.Flatten())

    def group_by_shard(self, label: str, shards: BeamFlow) -> BeamFlow:
        every = shards.pcoll | f"{label}EveryShard" >> beam.Map(lambda shard: (shard, None))
        joined = {"values": self.pcoll, "shard": every} | label >> beam.CoGroupByKey()
        return BeamFlow(joined | f"{label}Values" >> beam.MapTuple(lambda s, g: (s, list(g["values"]))))


# Runners Beam ships but does not resolve by short name.
RUNNER_PATHS = {"daskrunner": "apache_beam.runners.dask.dask_runner.DaskRunner"}


def pipeline_options(runner: RunnerConfig) -> PipelineOptions:
    """Beam's options from `runner`: its options verbatim, the runner by short name or path. On Dask,
    one bag partition per element unless the options say otherwise (shards spread over workers); a
    dry run looks for no credentials."""
    name = runner.runner.lower()
    path = RUNNER_PATHS.get(name, RUNNER_PATHS.get(f"{name}runner", runner.runner))
    options = list(runner.options)
    if path.endswith(".DaskRunner") and not any(
        o.startswith(("--dask_npartitions", "--dask_partition_size")) for o in options
    ):
        options.append("--dask_partition_size=1")
    parsed = PipelineOptions([f"--runner={path}", *options])
    if parsed.view_as(TestOptions).dry_run and "--no_auth" not in " ".join(options):
        options.append("--no_auth")  # translating needs no credentials (and no network to look for them)
    return PipelineOptions([f"--runner={path}", *options])


translated: list[dict] = []  # dry runs: each pipeline this process translated (finalize writes them)


def dry_run(runner: RunnerConfig) -> bool:
    """Whether `runner` only translates pipelines (Beam's `--dry_run=True`, e.g. on Dataflow)."""
    return pipeline_options(runner).view_as(TestOptions).dry_run


def _one_worker(options: PipelineOptions) -> bool:
    """Whether the pipeline runs on DirectRunner with a single worker: nowhere to spread elements to."""
    runner = options.view_as(StandardOptions).runner or "DirectRunner"
    return runner.endswith("DirectRunner") and options.view_as(DirectOptions).direct_num_workers == 1


def _run(
    label: str, runner: RunnerConfig, elements: list, build: Callable[[beam.PCollection], object]
) -> None:
    """One pipeline: `build` applied to a PCollection of `elements`, run (a dry run translates it and
    records its transforms). The elements are reshuffled, which spreads them over workers, except
    on a single-worker DirectRunner, where that shuffle has nowhere to send them (~50 ms each)."""
    options = pipeline_options(runner)
    with beam.Pipeline(options=options) as pipeline:
        build(pipeline | f"{label}Inputs" >> beam.Create(elements, reshuffle=not _one_worker(options)))
    if options.view_as(TestOptions).dry_run:
        transforms = pipeline.to_runner_api().components.transforms.values()
        top = [t.unique_name for t in transforms if t.unique_name and "/" not in t.unique_name]
        translated.append({"pipeline": label, "transforms": top})


def run_shards(label: str, elements: list, fn: beam.DoFn, runner: RunnerConfig) -> None:
    """One Beam pipeline applying `fn` to each element (spread over workers); nothing when empty."""
    if elements:
        _run(label, runner, elements, lambda inputs: inputs | label >> ForEachShard(fn))


def run_graph(label: str, shards: list[str], graph, runner: RunnerConfig, *args) -> None:
    """One Beam pipeline running a stage graph (`graph(flow of shard names, *args)`, see `graph.py`)."""
    _run(label, runner, shards, lambda inputs: graph(BeamFlow(inputs), *args))
