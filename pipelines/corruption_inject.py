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

Each data shard is then copied once (`CopyShardFn`) with what depends on the caption recomputed:
the caption annotators (lengths, ftfy, boilerplate, language, the published rules) for every row, and
for the corrupted rows the text embeddings of every CLIP model, `clip_score` / `clip_score_<alias>`
(dot product with the stored image embedding: images are not decoded again) and the recaption
similarity. The global stages (caption sharing, dedup, corruption) then run on the copy.
"""

from __future__ import annotations

import apache_beam as beam
import numpy as np
import pyarrow as pa

from pairsmith.filters import corruption as cx
from pairsmith.filters.clip_score import clip_score_column, half_vectors
from pairsmith.pipelines.annotate import annotate_rows
from pairsmith.pipelines.caption_swap import swap_captions
from pairsmith.pipelines.corruption_stage import unit_vectors
from pairsmith.pipelines.layout import Layout, read_columns, read_parquet, write_parquet
from pairsmith.pipelines.semantic_clusters import load_centroid_index, nearest_centroid, shard_embeddings
from pairsmith.schemas.config import ClipModelConfig, ModelsConfig
from pairsmith.schemas.record import validate_table

BUCKET_ROWS = 100_000
IMAGE_COLUMNS = ("original_width", "original_height", "aspect_ratio", "image_bytes")


class InjectionMembersFn(beam.DoFn):
    """Shard -> (bucket, (hash, shard, row, caption, cluster)) for every row with an image and caption.

    The cluster is `dup_semantic_cluster`, or the nearest of the k-means centroids in `centroids_path`.
    """

    def __init__(self, layout: Layout, alias: str, seed: int, buckets: int, centroids_path: str | None):
        self.layout, self.alias, self.seed, self.buckets = layout, alias, seed, buckets
        self.centroids_path = centroids_path

    def setup(self):
        self.index = load_centroid_index(self.centroids_path) if self.centroids_path is not None else None

    def process(self, shard: str):
        wanted = ("uid", "caption", "clip_score", "dup_semantic_cluster")
        data = read_columns(self.layout, self.layout.data_shard(shard), wanted)
        uids, captions, scores, clusters = (data.column(c).to_pylist() for c in data.column_names)
        if self.index is not None:
            rows, vectors = shard_embeddings(self.layout, self.alias, shard)
            clusters = [None] * data.num_rows
            if len(rows):
                for row, cluster in zip(
                    rows.tolist(), nearest_centroid(self.index, vectors).tolist(), strict=True
                ):
                    clusters[row] = cluster
        for row, (uid, caption, score) in enumerate(zip(uids, captions, scores, strict=True)):
            if caption is not None and score is not None:
                key = cx.stable_hash(self.seed, uid)
                yield key % self.buckets, (key, shard, row, caption, clusters[row])


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
    for member, caption, hit in zip(members, new, changed, strict=True):
        if hit:
            yield member[1], (member[2], caption, mode)


class CopyShardFn(beam.DoFn):
    """(shard, {"changes": [(row, caption, mode)], ...}) -> the shard copied into `target`, with every
    caption-dependent column recomputed (see the module doc). Skips shards the target already has."""

    def __init__(self, source: Layout, target: Layout, clips: list[ClipModelConfig], models: ModelsConfig):
        self.source, self.target, self.clips, self.models = source, target, clips, models

    def setup(self):
        from pairsmith.filters import caption_annotators

        self.caption_annotators = caption_annotators(self.models)
        for annotator in self.caption_annotators:
            annotator.setup()
        self.embedders = {}

    def _embedder(self, spec: str):
        if spec not in self.embedders:
            from pairsmith.filters.clip_models import ClipEmbedder

            self.embedders[spec] = ClipEmbedder(spec, self.models.device, self.models.precision).load()
        return self.embedders[spec]

    def process(self, element):
        shard, grouped = element
        if self.target.exists(self.target.data_shard(shard)):
            return
        changes = sorted(grouped["changes"])
        table = read_parquet(self.source.data_shard(shard))
        captions = table.column("caption").to_pylist()
        injected = table.column("injected_corruption").to_pylist()
        for row, caption, mode in changes:
            captions[row], injected[row] = caption, mode
        table = _set(table, "caption", pa.array(captions, pa.string()))
        table = _set(table, "injected_corruption", pa.array(injected, pa.string()))
        new = annotate_rows(
            table.select(["caption"]),
            table.select(list(IMAGE_COLUMNS)),
            iter([None] * table.num_rows),
            self.caption_annotators,
            max(table.num_rows, 1),
        )
        for name, array in new.items():
            table = _set(table, name, array)
        rows = [row for row, _, _ in changes]
        for index, clip in enumerate(self.clips):
            table = self._rescore(shard, table, clip, index == 0, rows, [captions[r] for r in rows])
        validate_table(table)
        write_parquet(table, self.target.data_shard(shard))
        yield shard

    def _rescore(self, shard: str, table: pa.Table, clip: ClipModelConfig, primary: bool, rows, texts):
        """New text embeddings and CLIP scores of one model for the changed rows; its side shard copied."""
        dataset = f"embeddings/{clip.alias}"
        side = read_parquet(self.source.side_shard(dataset, shard))
        if rows:
            vectors = self._embedder(clip.spec).embed_texts(texts)
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
                table = self._recaption_similarity(table, rows, vectors, clip.spec)
        write_parquet(side, self.target.side_shard(dataset, shard))
        return table

    def _recaption_similarity(self, table: pa.Table, rows, vectors: np.ndarray, spec: str) -> pa.Table:
        recaptions = table.column("recaption").to_pylist()
        similarity = table.column("recaption_alt_similarity").to_pylist()
        with_recaption = [k for k, row in enumerate(rows) if recaptions[row]]
        if with_recaption:
            embedded = self._embedder(spec).embed_texts([recaptions[rows[k]] for k in with_recaption])
            for k, vector in zip(with_recaption, embedded, strict=True):
                similarity[rows[k]] = float(vectors[k] @ vector)
        return _set(table, "recaption_alt_similarity", pa.array(similarity, pa.float32()))


def _set(table: pa.Table, name: str, array: pa.Array) -> pa.Table:
    index = table.schema.get_field_index(name)
    return table.set_column(index, table.schema.field(index), array)


class InjectCorruption(beam.PTransform):
    """Source data shard names -> the corrupted copy's data and embeddings shards in `target`."""

    def __init__(
        self,
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
        super().__init__()
        self.source, self.target, self.clips, self.models = source, target, clips, models
        self.mode, self.ratio, self.seed, self.buckets = mode, ratio, seed, buckets
        self.centroids_path = centroids_path

    def expand(self, shards):
        members = InjectionMembersFn(
            self.source, self.clips[0].alias, self.seed, self.buckets, self.centroids_path
        )
        changes = (
            shards
            | "Members" >> beam.ParDo(members)
            | "ByBucket" >> beam.GroupByKey()
            | "Corrupt" >> beam.FlatMap(corrupt_bucket, self.mode, self.ratio, self.seed)
        )
        every_shard = shards | "EveryShard" >> beam.Map(lambda shard: (shard, None))
        return (
            {"changes": changes, "shard": every_shard}
            | "ByShard" >> beam.CoGroupByKey()
            | "Copy" >> beam.ParDo(CopyShardFn(self.source, self.target, self.clips, self.models))
        )
