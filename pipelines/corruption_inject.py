"""Controlled corruption (`pairsmith corrupt`): a copy of a dataset with a fraction of captions replaced
as in Chen et al.'s slight-corruption study (../shared/ANCHORS.md), for running that study on one's data.

Which rows, and with what, is decided without the dataset in one process: every training pair (a row
with an image embedding and a caption) goes to a random bucket (hash of seed and uid) of about
BUCKET_ROWS rows; inside a bucket, rows ordered by hash, a generator seeded with (seed, bucket)
- `swap`: exchanges captions between round(ratio * n / 2) random pairs of rows
  (`caption_swap.swap_captions`, the same function the CLIP proofs use);
- `rewrite`: gives round(ratio * n) random rows the caption of another row from a different semantic
  cluster (`dup_semantic_cluster`, or k-means over the image embeddings when the dataset has none).
Buckets are random samples of the dataset, so partners are random across it; per-bucket rounding
moves the total by at most half a row per bucket. The same seed gives the same copy.

Each data shard is then copied once (`copy_shard`) with what depends on the caption recomputed:
the caption annotators (lengths, ftfy, boilerplate, language, the published rules) for every row, and
for the corrupted rows the text embeddings of every CLIP model, `clip_score` / `clip_score_<alias>`
(dot product with the stored image embedding: images are not decoded again) and the recaption
similarity. The global stages (caption sharing, dedup, corruption) then run on the copy.
"""

from __future__ import annotations

import functools

import numpy as np
import pyarrow as pa

from pairsmith.filters import corruption as cx
from pairsmith.filters.clip_score import clip_score_column, half_vectors
from pairsmith.filters.vectors import recaption_alt_similarity, unit_vectors
from pairsmith.pipelines.annotate import annotate_rows
from pairsmith.pipelines.caption_swap import swap_captions
from pairsmith.pipelines.layout import Layout, read_columns, read_parquet, write_parquet
from pairsmith.pipelines.semantic_clusters import load_centroid_index, nearest_centroid, shard_embeddings
from pairsmith.schemas.config import ClipModelConfig, ModelsConfig
from pairsmith.schemas.record import validate_table

BUCKET_ROWS = 100_000


def injection_members(
    shard: str, layout: Layout, alias: str, seed: int, buckets: int, centroids_path: str | None
) -> list[tuple[int, tuple]]:
    """Shard -> (bucket, (hash, shard, row, caption, cluster)) for every row with an image and caption.

    The cluster is `dup_semantic_cluster`, or the nearest of the k-means centroids in `centroids_path`.
    """
    wanted = ("uid", "caption", "clip_score", "dup_semantic_cluster")
    data = read_columns(layout, layout.data_shard(shard), wanted)
    uids, captions, scores, clusters = (data.column(c).to_pylist() for c in data.column_names)
    if centroids_path is not None:
        rows, vectors = shard_embeddings(layout, alias, shard)
        clusters = [None] * data.num_rows
        if len(rows):
            nearest = nearest_centroid(load_centroid_index(centroids_path), vectors)
            for row, cluster in zip(rows.tolist(), nearest.tolist(), strict=True):
                clusters[row] = cluster
    members = []
    for row, (uid, caption, score) in enumerate(zip(uids, captions, scores, strict=True)):
        if caption is not None and score is not None:
            key = cx.stable_hash(seed, uid)
            members.append((key % buckets, (key, shard, row, caption, clusters[row])))
    return members


def corrupt_bucket(element, mode: str, ratio: float, seed: int):
    """One bucket's members -> (shard, (row, new caption, mode)) for every corrupted row."""
    bucket, members = element
    members = sorted(members, key=lambda m: (m[0], m[1], m[2]))
    captions = [m[3] for m in members]
    rng = np.random.default_rng([seed, bucket])
    if mode == "swap":
        new, changed = swap_captions(captions, ratio, rng)
    else:
        new, changed = cx.rewrite_captions(captions, [m[4] for m in members], ratio, rng)
    return [
        (member[1], (member[2], caption, mode))
        for member, caption, hit in zip(members, new, changed, strict=True)
        if hit
    ]


@functools.lru_cache(maxsize=2)
def _caption_annotators(models_json: str) -> tuple[list, tuple[str, ...]]:
    """The caption annotators of a models config, set up once per process, and the stored columns
    they read besides the caption (e.g. the image's size for DataComp's rule)."""
    from pairsmith.filters import caption_annotators

    annotators = caption_annotators(ModelsConfig.model_validate_json(models_json))
    for annotator in annotators:
        annotator.setup()
    written = {f.name for a in annotators for f in a.fields}
    read = {n for a in annotators for n in (*a.needs, *a.uses)} - written - {"caption"}
    return annotators, tuple(sorted(read))


def copy_shard(
    element: tuple[str, list],
    source: Layout,
    target: Layout,
    clips: list[ClipModelConfig],
    models: ModelsConfig,
) -> str:
    """(shard, [(row, caption, mode)]) -> the shard copied into `target`, with every caption-dependent
    column recomputed (see the module doc). Skips shards the target already has."""
    shard, changes = element
    if target.exists(target.data_shard(shard)):
        return shard
    changes = sorted(changes)
    table = read_parquet(source.data_shard(shard))
    captions = table.column("caption").to_pylist()
    injected = table.column("injected_corruption").to_pylist()
    for row, caption, mode in changes:
        captions[row], injected[row] = caption, mode
    table = _set(table, "caption", pa.array(captions, pa.string()))
    table = _set(table, "injected_corruption", pa.array(injected, pa.string()))
    annotators, stored = _caption_annotators(models.model_dump_json())
    new = annotate_rows(
        table.select(["caption"]),
        table.select([c for c in stored if c in table.column_names]),
        iter([None] * table.num_rows),
        annotators,
        max(table.num_rows, 1),
    )
    for name, array in new.items():
        table = _set(table, name, array)
    rows = [row for row, _, _ in changes]
    for index, clip in enumerate(clips):
        table = _rescore(source, target, shard, table, clip, models, index == 0, rows)
    validate_table(table)
    write_parquet(table, target.data_shard(shard))
    return shard


def _rescore(source, target, shard, table, clip: ClipModelConfig, models: ModelsConfig, primary: bool, rows):
    """New text embeddings and CLIP scores of one model for the changed rows; its side shard copied."""
    dataset = f"embeddings/{clip.alias}"
    side = read_parquet(source.side_shard(dataset, shard))
    if rows:
        from pairsmith.filters.clip_models import ClipEmbedder  # torch loads only when needed

        embedder = ClipEmbedder(clip.spec, models.device, models.precision).load()
        captions = table.column("caption").to_pylist()
        vectors = embedder.embed_texts([captions[r] for r in rows])
        stored = unit_vectors(side.column("text_embedding"), normalise=False)  # float16 values, exact
        if stored.shape[1] == 0:
            stored = np.full((side.num_rows, vectors.shape[1]), np.nan, np.float32)
        stored[rows] = vectors
        present = np.flatnonzero(~np.isnan(stored[:, 0]))
        side = _set(side, "text_embedding", half_vectors(stored[present], present, side.num_rows))
        images = unit_vectors(side.column("image_embedding"))[rows]
        name = clip_score_column(clip.alias, primary)
        scores = table.column(name).to_pylist()
        for row, score in zip(rows, (images * vectors).sum(1).tolist(), strict=True):
            scores[row] = None if np.isnan(score) else score
        table = _set(table, name, pa.array(scores, pa.float32()))
        if primary and "recaption_alt_similarity" in table.column_names:
            table = _recaption_similarity(table, rows, vectors, embedder)
    write_parquet(side, target.side_shard(dataset, shard))
    return table


def _recaption_similarity(table: pa.Table, rows, vectors: np.ndarray, embedder) -> pa.Table:
    recaptions = table.column("recaption").to_pylist()
    similarity = table.column("recaption_alt_similarity").to_pylist()
    with_recaption = [k for k, row in enumerate(rows) if recaptions[row]]
    if with_recaption:
        embedded = embedder.embed_texts([recaptions[rows[k]] for k in with_recaption])
        computed = recaption_alt_similarity(vectors[with_recaption], embedded)
        for j, k in enumerate(with_recaption):
            similarity[rows[k]] = float(computed[j])
    return _set(table, "recaption_alt_similarity", pa.array(similarity, pa.float32()))


def _set(table: pa.Table, name: str, array: pa.Array) -> pa.Table:
    index = table.schema.get_field_index(name)
    return table.set_column(index, table.schema.field(index), array)


def inject_corruption(
    shards,
    source: Layout,
    target: Layout,
    clips: list[ClipModelConfig],
    models: ModelsConfig,
    mode: str,
    ratio: float,
    seed: int,
    buckets: int,
    centroids_path: str | None,
):
    """The injection graph: a Flow of source data shard names -> the Flow of shards copied into
    `target` (data and embeddings)."""
    return (
        shards.flat_map("Members", injection_members, source, clips[0].alias, seed, buckets, centroids_path)
        .group_by_key("ByBucket")
        .flat_map("Corrupt", corrupt_bucket, mode, ratio, seed)
        .group_by_shard("ByShard", shards)
        .map("Copy", copy_shard, source, target, clips, models)
    )
