"""Every piece of Beam in pairsmith: thin adapters around the stages' plain functions.

- per-shard stages: a DoFn per stage (ingest, download, download+annotate, retry, recaption, merge)
  that loads its models once per worker (`setup`) and calls the stage's function on each element;
  `run_shards` spreads the elements over workers (Reshuffle) in one pipeline;
- global stages: `BeamFlow` runs a stage graph (`pipelines/graph.py`: caption sharing, dedup,
  corruption, `corrupt`'s injection) as Beam transforms; `run_graph` makes it one pipeline.
Every function called here skips finished shards and writes its outputs atomically, so a rerun resumes.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import apache_beam as beam
import torch
from apache_beam.options.pipeline_options import PipelineOptions

from pairsmith.filters import build_annotators
from pairsmith.pipelines.annotate import annotate_shard
from pairsmith.pipelines.download import download_shard
from pairsmith.pipelines.ingest import cut_shards
from pairsmith.pipelines.layout import Layout, write_parquet
from pairsmith.pipelines.recaption import build_recaptioners, recaption_key, recaption_shard
from pairsmith.pipelines.retry import retry_shard
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


class DownloadAnnotateFn(beam.DoFn):
    """A group of shards -> each one downloaded, then annotated. The next shard downloads in a
    background thread while the current one is annotated, so the network overlaps decoding and
    model work; the annotators load once per worker (`setup`)."""

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
        self.annotators = build_annotators(self.models, self.cfg, self.recaption)
        for annotator in self.annotators:
            annotator.setup()
        self.pool = ThreadPoolExecutor(self.cfg.threads or os.cpu_count(), thread_name_prefix="images")

    def process(self, shards: list[str]):
        fetcher = ThreadPoolExecutor(1, thread_name_prefix="download")
        try:
            downloads = [fetcher.submit(download_shard, s, self.layout, self.download) for s in shards]
            for shard, download in zip(shards, downloads, strict=True):
                download.result()
                yield annotate_shard(
                    shard, self.layout, self.annotators, self.cfg.batch_size, self.provenance, self.pool
                )
        finally:
            fetcher.shutdown(cancel_futures=True)

    def teardown(self):
        self.pool.shutdown()


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
        self.annotators = build_recaptioners(self.cfg, self.models)
        for annotator in self.annotators:
            annotator.setup()

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


def pipeline_options(runner: RunnerConfig) -> PipelineOptions:
    return PipelineOptions([f"--runner={runner.runner}", *runner.options])


def run_shards(label: str, elements: list, fn: beam.DoFn, runner: RunnerConfig) -> None:
    """One Beam pipeline applying `fn` to each element (spread over workers); nothing when empty."""
    if not elements:
        return
    with beam.Pipeline(options=pipeline_options(runner)) as p:
        _ = p | f"{label}Inputs" >> beam.Create(elements) | label >> ForEachShard(fn)


def run_graph(label: str, shards: list[str], graph, runner: RunnerConfig, *args) -> None:
    """One Beam pipeline running a stage graph (`graph(flow of shard names, *args)`, see `graph.py`)."""
    with beam.Pipeline(options=pipeline_options(runner)) as p:
        graph(BeamFlow(p | f"{label}Shards" >> beam.Create(shards)), *args)
