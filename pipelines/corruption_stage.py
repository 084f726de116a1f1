"""Corruption scoring, a global stage: `corruption_*` columns and `OUT/corruption.json`.

The formula and its calibration are in `filters/corruption.py`. The dataset is never in one process:
1. per shard (`ScoringRowsFn`): every row with image and caption embeddings goes to a random bucket
   (hash of seed and uid) with its unit vectors; each shard's histograms of `clip_score` and of the
   recaption similarity go to a global sum (CombineGlobally), which gives the percentiles;
2. per bucket (GroupByKey): rows ordered by hash and dealt into blocks of at least K + 1; each block
   gives ranks, decoys and evidence; each bucket's histograms of evidence and decoy evidence go to a
   second global sum, which gives the ratio and the posterior tables (`finish_stats`);
3. per shard (CoGroupByKey): the rows' components and those tables give each shard's columns (a
   side file that finalize merges), and the tables go to `OUT/corruption.json`.
A bucket holds about BUCKET_BLOCKS blocks, so a worker holds a few thousand vectors whatever the
dataset size. Rerunning recomputes the same values (everything is drawn from hashes of the seed).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pairsmith.filters import corruption as cx
from pairsmith.pipelines.layout import Layout, read_columns, read_parquet, write_json
from pairsmith.pipelines.stage_columns import write_columns
from pairsmith.schemas.config import ClipModelConfig, CorruptionConfig, ModelsConfig

BUCKET_BLOCKS = 64  # blocks per bucket: ~2,100 rows at K = 32
METHOD = (
    "corruption_score is the local false discovery rate of corruption_evidence against decoys (each "
    "row's image with another row's caption, ranked in the same random block); the ratio is "
    "P(evidence >= t) / P(decoy evidence >= t), t the decoys' 10 % quantile; see filters/corruption.py"
)


def unit_vectors(column: pa.ChunkedArray | pa.Array, normalise: bool = True) -> np.ndarray:
    """rows x dim float32 (unit) vectors from a list column; rows where it is null are NaN."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    present = ~np.asarray(array.is_null())
    dim = int(pc.max(pc.list_value_length(array)).as_py() or 0)
    out = np.full((len(array), dim), np.nan, np.float32)
    if present.any():
        flat = pc.list_flatten(array.filter(pa.array(present))).to_numpy(zero_copy_only=False)
        out[present] = flat.astype(np.float32).reshape(-1, dim)
        if normalise:
            out[present] /= np.maximum(np.linalg.norm(out[present], axis=1, keepdims=True), 1e-12)
    return out


def count_rows(layout: Layout, shards: list[str]) -> int:
    """Rows of the data shards, from the Parquet footers."""
    total = 0
    for shard in shards:
        with layout.fs.open(layout.data_shard(shard), "rb") as f:
            total += pq.ParquetFile(f).metadata.num_rows
    return total


def bucket_count(rows: int, rows_per_bucket: int) -> int:
    """Buckets of about `rows_per_bucket` rows for `rows` rows (at least one)."""
    return max(1, -(-rows // rows_per_bucket))


def merge_histograms(parts: Iterable[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Sum dicts of histograms key by key (a CombineGlobally function: associative, commutative)."""
    total: dict[str, np.ndarray] = {}
    for part in parts:
        for key, counts in part.items():
            total[key] = total[key] + counts if key in total else np.array(counts)
    return total


class ScoringRowsFn(beam.DoFn):
    """Shard -> (bucket, member) for every row with both embeddings; its histograms on the side.

    A member is (order key, shard, row, image vector, text vector, clip_score, recaption similarity,
    recaption vector or None). Recaptions (column `recaption`, when present) are embedded here with the
    primary CLIP model's text tower, loaded only if a shard has any.
    """

    def __init__(self, layout: Layout, model: ClipModelConfig, models: ModelsConfig, seed: int, buckets: int):
        self.layout, self.model, self.models, self.seed, self.buckets = layout, model, models, seed, buckets
        self.embedder = None

    def _embed(self, texts: list[str]) -> np.ndarray:
        if self.embedder is None:
            from pairsmith.filters.clip_models import ClipEmbedder

            self.embedder = ClipEmbedder(self.model.spec, self.models.device, self.models.precision).load()
        return self.embedder.embed_texts(texts)

    def _recaptions(self, data: pa.Table, texts: np.ndarray, rows: np.ndarray):
        """(similarity, vector) per row in `rows`: NaN / None without a recaption."""
        similarity = np.full(len(rows), np.nan)
        vectors: list[np.ndarray | None] = [None] * len(rows)
        if "recaption" not in data.column_names:
            return similarity, vectors
        recaptions = data.column("recaption").to_pylist()
        given = (
            data.column("recaption_alt_similarity").to_pylist()
            if "recaption_alt_similarity" in data.column_names
            else [None] * data.num_rows
        )
        with_text = [k for k, row in enumerate(rows.tolist()) if recaptions[row]]
        if not with_text:
            return similarity, vectors
        embedded = self._embed([recaptions[rows[k]] for k in with_text])
        for k, vector in zip(with_text, embedded, strict=True):
            vectors[k] = vector.astype(np.float16)
            stored = given[rows[k]]
            similarity[k] = stored if stored is not None else float(texts[rows[k]] @ vector)
        return similarity, vectors

    def process(self, shard: str):
        wanted = ("uid", "clip_score", "recaption", "recaption_alt_similarity")
        data = read_columns(self.layout, self.layout.data_shard(shard), wanted)
        side = read_parquet(self.layout.side_shard(f"embeddings/{self.model.alias}", shard))
        images, texts = (
            unit_vectors(side.column("image_embedding")),
            unit_vectors(side.column("text_embedding")),
        )
        scores = data.column("clip_score").to_numpy(zero_copy_only=False).astype(np.float64)
        usable = ~np.isnan(scores)
        if images.shape[1] and texts.shape[1]:
            usable &= ~np.isnan(images[:, 0]) & ~np.isnan(texts[:, 0])
        else:
            usable[:] = False
        rows = np.flatnonzero(usable)
        recaption_similarity, recaption_vectors = self._recaptions(data, texts, rows)
        uids = data.column("uid").to_pylist()
        for k, row in enumerate(rows.tolist()):
            key = cx.stable_hash(self.seed, uids[row])
            member = (key, shard, row, images[row].astype(np.float16), texts[row].astype(np.float16))
            member += (float(scores[row]), float(recaption_similarity[k]), recaption_vectors[k])
            yield key % self.buckets, member
        yield beam.pvalue.TaggedOutput(
            "histograms",
            {"clip": cx.histogram(scores[rows]), "recaption": cx.histogram(recaption_similarity)},
        )


def score_bucket(element, block_size: int, histograms: dict) -> Iterator:
    """One bucket -> (shard, (row, components...)) per member; its stats histograms on the side."""
    _, members = element
    members = sorted(members, key=lambda m: (m[0], m[1], m[2]))
    blocks = max(1, len(members) // (block_size + 1))
    parts: list[dict[str, np.ndarray]] = []
    for b in range(blocks):
        block = members[b::blocks]
        yield from _score_block(block, histograms, parts)
    yield beam.pvalue.TaggedOutput("stats", merge_histograms(parts))


def _score_block(block: list, histograms: dict, parts: list) -> Iterator:
    """One block's rows -> (shard, (row, components...)); the block's histograms appended to `parts`."""
    images = np.stack([m[3] for m in block]).astype(np.float32)
    texts = np.stack([m[4] for m in block]).astype(np.float32)
    signals = cx.block_signals(images, texts)
    clip_pct = cx.percentiles(np.array([m[5] for m in block]), histograms.get("clip", np.zeros(1)))
    decoy_pct = cx.percentiles(signals["decoy_cosine"], histograms.get("clip", np.zeros(1)))
    recaption = np.array([m[6] for m in block])
    recaption_pct = cx.percentiles(recaption, histograms.get("recaption", np.zeros(1)))
    decoy_recaption = np.full(len(block), np.nan)
    for i, (member, j) in enumerate(zip(block, signals["decoy_partner"].tolist(), strict=True)):
        if member[7] is not None and j >= 0:
            decoy_recaption[i] = float(texts[j] @ member[7].astype(np.float32))
    decoy_recaption_pct = cx.percentiles(decoy_recaption, histograms.get("recaption", np.zeros(1)))
    observed = cx.evidence(clip_pct, signals["caption_rank"], signals["image_rank"], recaption_pct)
    decoys = cx.evidence(
        decoy_pct, signals["decoy_caption_rank"], signals["decoy_image_rank"], decoy_recaption_pct
    )
    kind = ~np.isnan(recaption)
    stats = {
        "decoy_cosine": cx.histogram(signals["decoy_cosine"]),
        "decoy_recaption": cx.histogram(decoy_recaption),
    }
    for k, name in enumerate(cx.KINDS):
        mine = kind == bool(k)
        stats[f"observed/{name}"] = cx.evidence_histogram(observed[mine])
        stats[f"decoys/{name}"] = cx.evidence_histogram(decoys[mine])
    parts.append(stats)
    columns = (clip_pct, signals["caption_rank"], signals["image_rank"], recaption_pct, observed, recaption)
    for i, member in enumerate(block):
        values = tuple(None if np.isnan(c[i]) else float(c[i]) for c in columns)
        yield member[1], (member[2], *values, cx.KINDS[int(kind[i])])


def finish_stats(stats: dict[str, np.ndarray], meta: dict) -> dict:
    """The estimate per population and overall, posterior tables and flag thresholds (JSON-able)."""
    kinds, rows, expected = {}, 0, 0.0
    empty = np.zeros(cx.EVIDENCE_BINS, np.int64)
    for name in cx.KINDS:
        observed, decoys = stats.get(f"observed/{name}", empty), stats.get(f"decoys/{name}", empty)
        estimate = cx.estimate_ratio(observed, decoys)
        if estimate["rows"]:
            estimate["posterior"] = [
                float(v) for v in cx.posterior_table(observed, decoys, estimate["ratio"])
            ]
            rows += estimate["rows"]
            expected += (estimate["ratio"] or 0.0) * estimate["rows"]
        kinds[name] = estimate
    return meta | {
        "estimated_corruption_ratio": expected / rows if rows else None,
        "rows_scored": rows,
        "method": METHOD,
        "weights": cx.WEIGHTS,
        "null_quantile": cx.NULL_QUANTILE,
        "posterior_bins": cx.POSTERIOR_BINS,
        "populations": kinds,
        "decoy_clip_top": cx.quantile_of(stats.get("decoy_cosine", np.zeros(1)), 1 - cx.NULL_QUANTILE),
        "decoy_recaption_top": cx.quantile_of(
            stats.get("decoy_recaption", np.zeros(1)), 1 - cx.NULL_QUANTILE
        ),
    }


CORRUPTION_COLUMNS = {
    "corruption_score": pa.float32(),
    "corruption_evidence": pa.float32(),
    "corruption_clip_percentile": pa.float32(),
    "corruption_caption_rank": pa.float32(),
    "corruption_image_rank": pa.float32(),
    "corruption_recaption_percentile": pa.float32(),
    "corruption_flags": pa.list_(pa.string()),
}


def write_corruption_columns(shard: str, items: list, layout: Layout, report: dict) -> str:
    """Write the corruption columns of one shard to a side file (nulls for rows that were not scored)."""
    table = read_columns(layout, layout.data_shard(shard), ("clip_score",))
    n = table.num_rows
    columns: dict[str, list] = {name: [None] * n for name in CORRUPTION_COLUMNS}
    clip = table.column("clip_score").to_pylist()
    tables = {k: np.array(v.get("posterior") or [np.nan]) for k, v in report["populations"].items()}
    for row, clip_pct, caption_rank, image_rank, recaption_pct, evidence, recaption, kind in items:
        score = float(cx.posterior([evidence], tables[kind])[0])
        columns["corruption_score"][row] = None if np.isnan(score) else score
        columns["corruption_evidence"][row] = evidence
        columns["corruption_clip_percentile"][row] = clip_pct
        columns["corruption_caption_rank"][row] = caption_rank
        columns["corruption_image_rank"][row] = image_rank
        columns["corruption_recaption_percentile"][row] = recaption_pct
        columns["corruption_flags"][row] = cx.signal_flags(
            clip[row],
            caption_rank,
            image_rank,
            recaption,
            report["decoy_clip_top"],
            report["decoy_recaption_top"],
        )
    arrays = {name: pa.array(columns[name], type_) for name, type_ in CORRUPTION_COLUMNS.items()}
    return write_columns(layout, "corruption", shard, arrays)


class ScoreCorruption(beam.PTransform):
    """Data shard names -> the same shards rewritten with the corruption columns; the report written."""

    def __init__(
        self,
        layout: Layout,
        cfg: CorruptionConfig,
        model: ClipModelConfig,
        models: ModelsConfig,
        buckets: int,
    ):
        super().__init__()
        self.layout, self.cfg, self.model, self.models, self.buckets = layout, cfg, model, models, buckets

    def expand(self, shards):
        rows = shards | "Rows" >> beam.ParDo(
            ScoringRowsFn(self.layout, self.model, self.models, self.cfg.seed, self.buckets)
        ).with_outputs("histograms", main="members")
        histograms = rows.histograms | "SumHistograms" >> beam.CombineGlobally(merge_histograms)
        scored = (
            rows.members
            | "ByBucket" >> beam.GroupByKey()
            | "Blocks"
            >> beam.FlatMap(
                score_bucket, self.cfg.block_size, beam.pvalue.AsSingleton(histograms)
            ).with_outputs("stats", main="rows")
        )
        meta = {"block_size": self.cfg.block_size, "seed": self.cfg.seed, "clip_model": self.model.spec}
        report = (
            scored.stats
            | "SumStats" >> beam.CombineGlobally(merge_histograms)
            | "Finish" >> beam.Map(finish_stats, meta)
        )
        _ = report | "Report" >> beam.Map(write_json, self.layout.corruption_report)
        every_shard = shards | "EveryShard" >> beam.Map(lambda shard: (shard, None))
        return (
            {"rows": scored.rows, "shard": every_shard}
            | "ByShard" >> beam.CoGroupByKey()
            | "Rewrite"
            >> beam.Map(
                lambda element, report: write_corruption_columns(
                    element[0], list(element[1]["rows"]), self.layout, report
                ),
                beam.pvalue.AsSingleton(report),
            )
        )
