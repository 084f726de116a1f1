"""Corruption scoring, a global stage: `corruption_*` columns and `OUT/corruption.json`.

The formula and its calibration are in `filters/corruption.py`. The dataset is never in one process:
1. per shard (`scoring_rows`): every row with image and caption embeddings goes to a random bucket
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

import operator
from collections.abc import Iterable, Iterator
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pairsmith.filters import corruption as cx
from pairsmith.filters.vectors import recaption_alt_similarity, unit_vectors
from pairsmith.pipelines.layout import Layout, read_columns, read_parquet, write_json
from pairsmith.pipelines.stage_columns import write_columns
from pairsmith.schemas.config import ClipModelConfig, CorruptionConfig, ModelsConfig

BUCKET_BLOCKS = 64  # blocks per bucket: ~2,100 rows at K = 32
METHOD = (
    "corruption_score is the local false discovery rate of corruption_evidence against decoys (each "
    "row's image with another row's caption, ranked in the same random block); the ratio is "
    "P(evidence >= t) / P(decoy evidence >= t), t the decoys' 10 % quantile; see filters/corruption.py"
)


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


class Member(NamedTuple):
    """A scored row on its way to its bucket: unit vectors as float16, NaN where it has no recaption."""

    key: int  # order inside the bucket (hash of seed and uid)
    shard: str
    row: int
    image: np.ndarray
    text: np.ndarray
    clip_score: float
    recaption_similarity: float
    recaption: np.ndarray | None


def _recaptions(data: pa.Table, texts: np.ndarray, rows: np.ndarray, embed) -> tuple[np.ndarray, list]:
    """(recaption_alt_similarity, recaption vector) per row in `rows`: NaN / None without a recaption;
    the stored similarity where the shard has it, else computed from the embedded recaption."""
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
    embedded = embed([recaptions[rows[k]] for k in with_text])
    computed = recaption_alt_similarity(texts[rows[with_text]], embedded)
    for j, (k, vector) in enumerate(zip(with_text, embedded, strict=True)):
        vectors[k] = vector.astype(np.float16)
        stored = given[rows[k]]
        similarity[k] = stored if stored is not None else float(computed[j])
    return similarity, vectors


def scoring_rows(
    shard: str, layout: Layout, model: ClipModelConfig, models: ModelsConfig, seed: int, buckets: int
) -> tuple[list[tuple[int, Member]], dict[str, np.ndarray]]:
    """Shard -> ([(bucket, Member)] for every row with both embeddings, its histograms). Recaptions
    (column `recaption`, when present) are embedded with the primary CLIP model's text tower, loaded
    only if a shard has any."""
    wanted = ("uid", "clip_score", "recaption", "recaption_alt_similarity")
    data = read_columns(layout, layout.data_shard(shard), wanted)
    side = read_parquet(layout.side_shard(f"embeddings/{model.alias}", shard))
    images, texts = unit_vectors(side.column("image_embedding")), unit_vectors(side.column("text_embedding"))
    scores = data.column("clip_score").to_numpy(zero_copy_only=False).astype(np.float64)
    usable = ~np.isnan(scores)
    if images.shape[1] and texts.shape[1]:
        usable &= ~np.isnan(images[:, 0]) & ~np.isnan(texts[:, 0])
    else:
        usable[:] = False
    rows = np.flatnonzero(usable)

    def embed(captions: list[str]) -> np.ndarray:
        from pairsmith.filters.clip_models import ClipEmbedder  # torch loads only when needed

        return ClipEmbedder(model.spec, models.device, models.precision).load().embed_texts(captions)

    similarity, recaptions = _recaptions(data, texts, rows, embed)
    uids = data.column("uid").to_pylist()
    members = []
    for k, row in enumerate(rows.tolist()):
        key = cx.stable_hash(seed, uids[row])
        member = Member(
            key,
            shard,
            row,
            images[row].astype(np.float16),
            texts[row].astype(np.float16),
            float(scores[row]),
            float(similarity[k]),
            recaptions[k],
        )
        members.append((key % buckets, member))
    histograms = {"clip": cx.histogram(scores[rows]), "recaption": cx.histogram(similarity)}
    return members, histograms


def score_bucket(element, block_size: int, histograms: dict) -> tuple[list, dict]:
    """One bucket -> ([(shard, (row, components...))] per member, its stats histograms)."""
    _, members = element
    members = sorted(members, key=lambda m: (m.key, m.shard, m.row))
    blocks = max(1, len(members) // (block_size + 1))
    parts: list[dict[str, np.ndarray]] = []
    rows = [out for b in range(blocks) for out in _score_block(members[b::blocks], histograms, parts)]
    return rows, merge_histograms(parts)


def _score_block(block: list, histograms: dict, parts: list) -> Iterator:
    """One block's rows -> (shard, (row, components...)); the block's histograms appended to `parts`."""
    images = np.stack([m.image for m in block]).astype(np.float32)
    texts = np.stack([m.text for m in block]).astype(np.float32)
    signals = cx.block_signals(images, texts)
    clip_pct = cx.percentiles(np.array([m.clip_score for m in block]), histograms.get("clip", np.zeros(1)))
    decoy_pct = cx.percentiles(signals["decoy_cosine"], histograms.get("clip", np.zeros(1)))
    recaption = np.array([m.recaption_similarity for m in block])
    recaption_pct = cx.percentiles(recaption, histograms.get("recaption", np.zeros(1)))
    decoy_recaption = np.full(len(block), np.nan)
    for i, (member, j) in enumerate(zip(block, signals["decoy_partner"].tolist(), strict=True)):
        if member.recaption is not None and j >= 0:
            decoy_recaption[i] = float(recaption_alt_similarity(texts[j], member.recaption))
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
        yield member.shard, (member.row, *values, cx.KINDS[int(kind[i])])


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


def write_corruption_columns(element: tuple[str, list], layout: Layout, report: dict) -> str:
    """Write the corruption columns of one shard to a side file (nulls for rows that were not scored)."""
    shard, items = element
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


def write_report(report: dict, path: str) -> dict:
    """Write `OUT/corruption.json`; returns the report for the shards' columns."""
    write_json(report, path)
    return report


def score_corruption(
    shards, layout: Layout, cfg: CorruptionConfig, model: ClipModelConfig, models: ModelsConfig, buckets: int
):
    """The corruption graph: a Flow of data shard names -> the Flow of shards written (after the
    report: every branch ends in that one Flow, which some runners need to run them all)."""
    rows = shards.map("Rows", scoring_rows, layout, model, models, cfg.seed, buckets)
    histograms = rows.map("Histograms", operator.itemgetter(1)).combine("SumHistograms", merge_histograms)
    scored = (
        rows.flat_map("Members", operator.itemgetter(0))
        .group_by_key("ByBucket")
        .map("Blocks", score_bucket, cfg.block_size, side=histograms)
    )
    meta = {"block_size": cfg.block_size, "seed": cfg.seed, "clip_model": model.spec}
    report = (
        scored.map("Stats", operator.itemgetter(1))
        .combine("SumStats", merge_histograms)
        .map("Finish", finish_stats, meta)
        .map("Report", write_report, layout.corruption_report)
    )
    return (
        scored.flat_map("ScoredRows", operator.itemgetter(0))
        .group_by_shard("ByShard", shards)
        .map("Write", write_corruption_columns, layout, side=report)
    )
