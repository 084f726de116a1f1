"""Dedup, a global stage: exact, near-image, near-caption and semantic duplicate groups, one row kept.

Each kind turns rows into edges between duplicate rows without an all-pairs step:
- exact: rows sharing a sha256, a normalised URL or a (URL, caption) meet under GroupByKey;
- image: rows with the same pHash meet first; each distinct pHash then goes to its k + 1 band buckets
  (multi-index hashing, `near_duplicates.close_pairs`) and pairs are verified inside each bucket;
- caption: the same with the normalised caption text, then MinHash LSH bands over distinct captions;
- semantic: rows go to their nearest k-means centroid and SemDeDup runs inside each cluster.
A bucket's verified pairs leave as star edges (root -> member), so a group of n rows costs n - 1
edges. The edges of a kind meet in one GroupByKey whose worker joins them (union-find over the rows
that have a duplicate, not the dataset); group ids are the smallest uid, so reruns give the same ids.
The kinds in `dedup.mark` are joined again to pick one kept row per group (highest clip_score, then
smallest uid); each shard's columns then go to a side file that finalize merges.
"""

from __future__ import annotations

from collections.abc import Iterator

import apache_beam as beam
import numpy as np
import pyarrow as pa

from pairsmith.pipelines import near_duplicates as nd
from pairsmith.pipelines.dedup_keys import (
    Node,
    caption_key,
    caption_keys,
    exact_keys,
    make_node,
    minhash_signature,
    normalise_url,
    phash_keys,
)
from pairsmith.pipelines.layout import Layout, read_columns, read_parquet
from pairsmith.pipelines.semantic_clusters import load_centroid_index, nearest_centroid, shard_embeddings
from pairsmith.pipelines.stage_columns import write_columns
from pairsmith.schemas.config import DedupConfig

KINDS = ("exact", "image", "caption", "semantic")
KEEP = "keep"  # the kinds of `dedup.mark`, joined


def check_config(cfg: DedupConfig) -> None:
    """ConfigError before any work for caption settings that datasketch's LSH cannot band."""
    if "caption" in cfg.kinds:
        nd.lsh_params(cfg.caption_jaccard, cfg.minhash_perms)


def star(kind: str, nodes) -> Iterator[tuple[str, tuple[Node, Node]]]:
    """Rows under one key are all duplicates of each other: edges from the smallest to the rest."""
    nodes = sorted(nodes)
    for node in nodes[1:]:
        yield kind, (nodes[0], node)


def rep_and_star(element, kind: str) -> Iterator:
    """For rows sharing one exact value: star edges (main output) and (value, representative) on the
    side, so that the banding step sees each distinct value once."""
    value, nodes = element
    nodes = sorted(nodes)
    yield from star(kind, nodes)
    yield beam.pvalue.TaggedOutput("distinct", (value, nodes[0]))


def _verified_edges(kind: str, members, find_pairs, dtype=None) -> Iterator[tuple[str, tuple[Node, Node]]]:
    """Star edges among the (node, payload) members of one bucket that `find_pairs` pairs up."""
    members = sorted(members, key=lambda m: m[0])
    if len(members) < 2:  # most buckets: nothing to compare
        return
    payloads = np.array([payload for _, payload in members], dtype=dtype)
    for edge in nd.star_edges([node for node, _ in members], find_pairs(payloads)):
        yield kind, edge


def image_band_keys(element, max_distance: int):
    value, rep = element
    for band in nd.phash_bands(value, max_distance):
        yield band, (rep, value)


def verify_image_bucket(element, max_distance: int):
    (band, _), members = element
    free = nd.FULL_64 & ~nd.band_mask(band, max_distance)
    yield from _verified_edges(
        "image", members, lambda values: nd.close_pairs(values, max_distance, free), dtype=np.uint64
    )


def caption_signature(element, cfg: DedupConfig):
    text, rep = element
    return rep, minhash_signature(text, cfg.caption_shingle_words, cfg.minhash_perms, cfg.seed)


def caption_band_keys(element, bands: int, rows: int):
    rep, signature = element
    for band in nd.minhash_bands(signature, bands, rows):
        yield band, (rep, signature)


def verify_caption_bucket(element, threshold: float):
    _, members = element
    yield from _verified_edges("caption", members, lambda s: nd.similar_signature_pairs(s, threshold))


class AssignClusters(beam.DoFn):
    """Shard -> (cluster, (node, vector)) for SemDeDup, and (shard, (row, cluster)) on the side."""

    def __init__(self, layout: Layout, alias: str, centroids_path: str):
        self.layout, self.alias, self.centroids_path = layout, alias, centroids_path

    def setup(self):
        self.index = load_centroid_index(self.centroids_path)

    def process(self, shard: str):
        rows, vectors = shard_embeddings(self.layout, self.alias, shard)
        if not len(rows):
            return
        clusters = nearest_centroid(self.index, vectors)
        data = read_parquet(self.layout.data_shard(shard)).select(["uid", "clip_score"])
        uids, scores = data.column("uid").to_pylist(), data.column("clip_score").to_pylist()
        for row, cluster, vector in zip(rows.tolist(), clusters.tolist(), vectors, strict=True):
            yield cluster, (make_node(uids[row], shard, row, scores[row]), vector.astype(np.float16))
            yield beam.pvalue.TaggedOutput("clusters", (shard, ("cluster", row, cluster)))


def semantic_cluster_edges(element, eps: float):
    _, members = element
    yield from _verified_edges("semantic", members, lambda v: nd.semantic_pairs(v, eps), dtype=np.float32)


def components(element) -> Iterator[tuple[str, tuple]]:
    """All edges of one kind -> (shard, ("group", row, kind, group uid)) per row with a duplicate; the
    joined kinds go on as (root, node) for the keep rule."""
    kind, edges = element
    groups = nd.UnionFind()
    for a, b in edges:
        groups.union(a, b)
    for node, root in groups.roots().items():
        if kind == KEEP:
            yield beam.pvalue.TaggedOutput(KEEP, (root, node))
        else:
            yield node[1], ("group", node[2], kind, root[0])


def keep_one(element) -> Iterator[tuple[str, tuple]]:
    """One kept row per joined group: highest clip_score, then smallest uid (then position)."""
    _, nodes = element
    nodes = list(nodes)
    kept = min(nodes, key=lambda n: (-n[3], n[0], n[1], n[2]))
    for node in nodes:
        yield node[1], ("keep", node[2], kept[0], node != kept)


class Deduplicate(beam.PTransform):
    """Data shard names -> the same shards rewritten with the dedup columns."""

    def __init__(self, layout: Layout, cfg: DedupConfig, alias: str | None, centroids_path: str | None):
        super().__init__()
        self.layout, self.cfg, self.alias, self.centroids_path = layout, cfg, alias, centroids_path

    def _banded(self, shards, kind, keys_fn, bands_fn, bucket_fn, prepare=lambda e: e):
        grouped = (
            shards
            | f"{kind}Keys" >> beam.FlatMap(keys_fn, self.layout)
            | f"{kind}ByValue" >> beam.GroupByKey()
        )
        exact = grouped | f"{kind}Same" >> beam.FlatMap(rep_and_star, kind).with_outputs(
            "distinct", main="edges"
        )
        near = (
            exact.distinct
            | f"{kind}Prepare" >> beam.Map(prepare)
            | f"{kind}Bands" >> beam.FlatMap(bands_fn)
            | f"{kind}ByBand" >> beam.GroupByKey()
            | f"{kind}Verify" >> beam.FlatMap(bucket_fn)
        )
        return [exact.edges, near]

    def expand(self, shards):
        cfg, edges, side = self.cfg, [], []
        if "exact" in cfg.kinds:
            edges.append(
                shards
                | "ExactKeys" >> beam.FlatMap(exact_keys, self.layout)
                | "ExactByKey" >> beam.GroupByKey()
                | "ExactEdges" >> beam.FlatMapTuple(lambda _, nodes: star("exact", nodes))
            )
        if "image" in cfg.kinds:
            k = cfg.phash_distance
            edges += self._banded(
                shards,
                "image",
                phash_keys,
                lambda e: image_band_keys(e, k),
                lambda e: verify_image_bucket(e, k),
            )
        if "caption" in cfg.kinds:
            bands, rows = nd.lsh_params(cfg.caption_jaccard, cfg.minhash_perms)
            edges += self._banded(
                shards,
                "caption",
                caption_keys,
                lambda e: caption_band_keys(e, bands, rows),
                lambda e: verify_caption_bucket(e, cfg.caption_jaccard),
                prepare=lambda e: caption_signature(e, cfg),
            )
        if "semantic" in cfg.kinds and self.centroids_path is not None:
            members = shards | "AssignClusters" >> beam.ParDo(
                AssignClusters(self.layout, self.alias, self.centroids_path)
            ).with_outputs("clusters", main="members")
            side.append(members.clusters)
            edges.append(
                members.members
                | "ByCluster" >> beam.GroupByKey()
                | "SemDeDup" >> beam.FlatMap(semantic_cluster_edges, cfg.semantic_eps)
            )
        every_edge = (
            edges
            | "AllEdges" >> beam.Flatten(pipeline=shards.pipeline)
            | "AlsoJoined"
            >> beam.FlatMapTuple(lambda kind, e: [(kind, e)] + ([(KEEP, e)] if kind in cfg.mark else []))
        )
        groups = (
            every_edge
            | "ByKind" >> beam.GroupByKey()
            | "Components" >> beam.FlatMap(components).with_outputs(KEEP, main="groups")
        )
        kept = groups[KEEP] | "ByGroup" >> beam.GroupByKey() | "KeepOne" >> beam.FlatMap(keep_one)
        marks = (groups.groups, kept, *side) | "AllMarks" >> beam.Flatten()
        every_shard = shards | "EveryShard" >> beam.Map(lambda shard: (shard, None))
        return (
            {"marks": marks, "shard": every_shard}
            | "ByShard" >> beam.CoGroupByKey()
            | "Rewrite"
            >> beam.MapTuple(
                lambda shard, grouped: write_dedup_columns(shard, grouped["marks"], self.layout, self.cfg)
            )
        )


def _own_group(kind: str, table: pa.Table) -> list[bool]:
    """Rows that have the signal of `kind` (a row alone in its group gets its own uid as group id)."""
    if kind == "exact":
        return [
            normalise_url(u) is not None or d is not None
            for u, d in zip(table.column("url").to_pylist(), table.column("sha256").to_pylist(), strict=True)
        ]
    if kind == "image":
        return [v is not None for v in table.column("phash").to_pylist()]
    if kind == "caption":
        return [caption_key(v) is not None for v in table.column("caption_fixed").to_pylist()]
    return [False] * table.num_rows  # semantic: set from the cluster marks


def write_dedup_columns(shard: str, marks, layout: Layout, cfg: DedupConfig) -> str:
    """Write the dedup columns of one shard (a side file) from the marks the global steps sent it."""
    table = read_columns(layout, layout.data_shard(shard), ("uid", "url", "sha256", "phash", "caption_fixed"))
    n, uids = table.num_rows, table.column("uid").to_pylist()
    groups = {k: [None] * n for k in KINDS}
    in_group = {k: [False] * n for k in KINDS}
    cluster, kept_uid, duplicate = [None] * n, [None] * n, [False] * n
    for mark in marks:
        if mark[0] == "group":
            _, row, kind, group = mark
            groups[kind][row], in_group[kind][row] = group, True
        elif mark[0] == "keep":
            _, row, kept_uid[row], duplicate[row] = mark
        else:
            _, row, cluster[row] = mark
    for kind in cfg.kinds:
        has = [c is not None for c in cluster] if kind == "semantic" else _own_group(kind, table)
        groups[kind] = [
            g if g is not None else (uid if h else None)
            for g, uid, h in zip(groups[kind], uids, has, strict=True)
        ]
    kinds_of = [[k for k in KINDS if in_group[k][row]] if duplicate[row] else [] for row in range(n)]
    columns = {
        "dup_exact_group": pa.array(groups["exact"], pa.string()),
        "dup_image_group": pa.array(groups["image"], pa.string()),
        "dup_caption_group": pa.array(groups["caption"], pa.string()),
        "dup_semantic_group": pa.array(groups["semantic"], pa.string()),
        "dup_semantic_cluster": pa.array(cluster, pa.int32()),
        "is_duplicate": pa.array(duplicate, pa.bool_()),
        "duplicate_kinds": pa.array(kinds_of, pa.list_(pa.string())),
        "duplicate_of": pa.array(kept_uid, pa.string()),
    }
    return write_columns(layout, "dedup", shard, columns)
