"""The Beam stages. Each stage is a PTransform over shard names (or input files) whose DoFn wraps
plain functions, skips finished shards and writes its outputs atomically, so a rerun resumes."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import apache_beam as beam
import torch

from pairsmith.filters import build_annotators
from pairsmith.pipelines.annotate import annotate_shard
from pairsmith.pipelines.caption_sharing import caption_rows, counts_per_row, write_counts
from pairsmith.pipelines.download import download_shard
from pairsmith.pipelines.ingest import cut_shards
from pairsmith.pipelines.layout import Layout, write_parquet
from pairsmith.pipelines.retry import retry_shard
from pairsmith.pipelines.stage_columns import merge_shard
from pairsmith.schemas.config import (
    AnnotateConfig,
    DownloadConfig,
    InputConfig,
    ModelsConfig,
    RecaptionConfig,
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


class ShareCaptions(beam.PTransform):
    """Data shard names -> the same shards rewritten with `caption_shared_count` (a global join)."""

    def __init__(self, layout: Layout):
        super().__init__()
        self.layout = layout

    def expand(self, shards):
        counts = (
            shards
            | "CaptionRows" >> beam.FlatMap(caption_rows, self.layout)
            | "ByCaption" >> beam.GroupByKey()
            | "CountPerRow" >> beam.FlatMap(counts_per_row)
        )
        every_shard = shards | "EveryShard" >> beam.Map(lambda shard: (shard, None))
        return (
            {"counts": counts, "shard": every_shard}
            | "ByShard" >> beam.CoGroupByKey()
            | "Rewrite"
            >> beam.MapTuple(lambda shard, grouped: write_counts(shard, list(grouped["counts"]), self.layout))
        )
