"""Dedup, a global stage: exact, near-image, near-caption and semantic duplicate groups, one row kept.

Each kind turns rows into edges between duplicate rows without an all-pairs step:
- exact: rows sharing a sha256, a normalised URL or a (URL, caption) meet under GroupByKey;
- image: rows with the same pHash meet first; each distinct pHash then goes to its k + 1 band buckets
  (multi-index hashing, `near_duplicates.close_pairs`) and pairs are verified inside each bucket;
- caption: the same with the normalised caption text, then MinHash LSH bands over distinct captions
  (band entries carry the row only; signatures join the buckets that hold two or more);
- semantic: rows go to their nearest k-means centroid and SemDeDup runs inside each cluster.
A bucket's verified pairs leave as star edges (root -> member), so a group of n rows costs n - 1
edges. The edges of a kind meet in one GroupByKey whose worker joins them (union-find over the rows
that have a duplicate, not the dataset); group ids are the smallest uid, so reruns give the same ids.
The kinds in `dedup.mark` are joined again to pick one kept row per group (highest clip_score, then
smallest uid); each shard's columns then go to a side file that finalize merges.
"""

from __future__ import annotations

import operator
from typing import NamedTuple

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
    phash_keys,
)
from pairsmith.pipelines.layout import Layout, read_columns
from pairsmith.pipelines.semantic_clusters import (
    key_runs,
    load_centroid_index,
    nearest_centroid,
    shard_embeddings,
)
from pairsmith.pipelines.stage_columns import write_columns
from pairsmith.schemas.config import DedupConfig

KINDS = ("exact", "image", "caption", "semantic")
KEEP = "keep"  # the kinds of `dedup.mark`, joined
PAYLOAD, BUCKET = "payload", "bucket"  # the tags of a row's payload and of its crowded buckets


def check_config(cfg: DedupConfig) -> None:
    """ConfigError before any work for caption settings that datasketch's LSH cannot band."""
    if "caption" in cfg.kinds:
        nd.lsh_params(cfg.caption_jaccard, cfg.minhash_perms)


class GroupMark(NamedTuple):
    """Row `row` of a shard belongs to the `kind` group named `group` (its smallest uid)."""

    row: int
    kind: str
    group: str


class KeepMark(NamedTuple):
    """Row `row`'s joined group keeps the row of uid `kept`; `duplicate`: this row is not it."""

    row: int
    kept: str
    duplicate: bool


class ClusterMark(NamedTuple):
    """Row `row` is in SemDeDup's k-means cluster `cluster`."""

    row: int
    cluster: int


def star(kind: str, nodes) -> list[tuple[str, tuple[Node, Node]]]:
    """Rows under one key are all duplicates of each other: edges from the smallest to the rest."""
    nodes = sorted(nodes)
    return [(kind, (nodes[0], node)) for node in nodes[1:]]


def distinct_and_star(element, kind: str) -> tuple[list, tuple]:
    """For rows sharing one exact value: their star edges, and (value, representative), so that the
    banding step sees each distinct value once."""
    value, nodes = element
    nodes = sorted(nodes)
    return star(kind, nodes), (value, nodes[0])


def _verified_edges(kind: str, members, find_pairs, as_array) -> list[tuple[str, tuple[Node, Node]]]:
    """Star edges among the (node, payload) members of one bucket that `find_pairs` pairs up
    (`as_array`: the members' payloads as one array, a row each)."""
    members = list(members)  # Beam hands a bucket over as an iterable
    if len(members) < 2:  # most buckets: nothing to compare
        return []
    nodes = [node for node, _ in members]
    return _star_among(kind, nodes, as_array([payload for _, payload in members]), find_pairs)


def _star_among(kind: str, nodes: list[Node], payloads: np.ndarray, find_pairs) -> list:
    """Star edges among rows (nodes[i], payloads[i]) that `find_pairs` pairs up, the rows taken in
    node order, so that the edges do not depend on the order in which the rows arrived."""
    order = sorted(range(len(nodes)), key=nodes.__getitem__)
    pairs = find_pairs(payloads[order])
    return [(kind, edge) for edge in nd.star_edges([nodes[i] for i in order], pairs)]


def image_band_keys(element, max_distance: int):
    value, rep = element
    for band in nd.phash_bands(value, max_distance):
        yield band, (rep, value)


def verify_image_bucket(element, max_distance: int):
    (band, _), members = element
    free = nd.FULL_64 & ~nd.band_mask(band, max_distance)
    return _verified_edges(
        "image",
        members,
        lambda values: nd.close_pairs(values, max_distance, free),
        lambda payloads: np.array(payloads, dtype=np.uint64),
    )


def caption_signature(element, cfg: DedupConfig):
    text, rep = element
    return rep, minhash_signature(text, cfg.caption_shingle_words, cfg.minhash_perms, cfg.seed)


def caption_band_keys(element, bands: int, rows: int):
    """(rep, signature) -> (band, rep) for each of its LSH band buckets (the signature joins later,
    only for buckets that hold two or more: `crowded_members`)."""
    rep, signature = element
    for band in nd.minhash_bands(signature, bands, rows):
        yield band, rep


def packed_signature(element) -> tuple[Node, tuple[str, bytes]]:
    """(rep, signature) -> (rep, (PAYLOAD, its bytes)): bytes cross a shuffle as they are."""
    rep, signature = element
    return rep, (PAYLOAD, signature.tobytes())


def crowded_members(element) -> list[tuple[Node, tuple[str, tuple]]]:
    """(band, reps) -> (rep, (BUCKET, band)) for each rep of a bucket that holds two or more (most
    buckets hold one: nothing there to verify, and their rows' payloads need not travel)."""
    band, reps = element
    reps = list(reps)
    return [(rep, (BUCKET, band)) for rep in reps] if len(reps) > 1 else []


def payload_per_bucket(element) -> list[tuple[tuple, tuple[Node, bytes]]]:
    """(rep, its tagged payload and crowded buckets) -> (band, (rep, payload)) for each such bucket."""
    rep, tagged = element
    tagged = list(tagged)
    payload = next((value for tag, value in tagged if tag == PAYLOAD), None)
    return [(value, (rep, payload)) for tag, value in tagged if tag == BUCKET]


def _signatures(packed: list[bytes]) -> np.ndarray:
    return np.frombuffer(b"".join(packed), np.uint32).reshape(len(packed), -1)


def verify_caption_bucket(element, threshold: float):
    _, members = element
    return _verified_edges(
        "caption", members, lambda s: nd.similar_signature_pairs(s, threshold), _signatures
    )


class ClusterBlock(NamedTuple):
    """One shard's rows in one k-means cluster: their nodes and their unit vectors (float16, a row each)."""

    nodes: list[Node]
    vectors: np.ndarray


def cluster_blocks(
    nodes: list[Node], clusters: np.ndarray, vectors: np.ndarray
) -> list[tuple[int, ClusterBlock]]:
    """Rows -> (cluster, ClusterBlock) per cluster they fall in. One element per (shard, cluster), not
    per row: the shuffle and the Python objects it holds shrink by the rows per block (a million
    per-row elements made the search superlinear in garbage collection alone)."""
    vectors = vectors.astype(np.float16)
    return [
        (cluster, ClusterBlock([nodes[r] for r in rows.tolist()], vectors[rows]))
        for cluster, rows in key_runs(clusters)
    ]


def assign_clusters(shard: str, layout: Layout, alias: str, centroids_path: str) -> tuple[list, list]:
    """A shard's rows with an embedding -> ([(cluster, ClusterBlock)], [(shard, ClusterMark)])."""
    rows, vectors = shard_embeddings(layout, alias, shard)
    if not len(rows):
        return [], []
    clusters = nearest_centroid(load_centroid_index(centroids_path), vectors)
    data = read_columns(layout, layout.data_shard(shard), ("uid", "clip_score"))
    uids, scores = data.column("uid").to_pylist(), data.column("clip_score").to_pylist()
    nodes = [make_node(uids[row], shard, row, scores[row]) for row in rows.tolist()]
    marks = [
        (shard, ClusterMark(row, cluster))
        for row, cluster in zip(rows.tolist(), clusters.tolist(), strict=True)
    ]
    return cluster_blocks(nodes, clusters, vectors), marks


def semantic_cluster_edges(element, eps: float):
    """(cluster, its ClusterBlocks) -> SemDeDup's star edges among the cluster's rows."""
    _, blocks = element
    nodes = [node for block in blocks for node in block.nodes]
    if len(nodes) < 2:
        return []
    vectors = np.concatenate([block.vectors for block in blocks]).astype(np.float32)
    return _star_among("semantic", nodes, vectors, lambda v: nd.semantic_pairs(v, eps))


def components(element) -> list[tuple[str, Node, Node]]:
    """All edges of one kind -> (kind, node, root) for every row that has a duplicate of that kind."""
    kind, edges = element
    groups = nd.UnionFind()
    for a, b in edges:
        groups.union(a, b)
    return [(kind, node, root) for node, root in groups.roots().items()]


def group_marks(members: list[tuple[str, Node, Node]]) -> list[tuple[str, GroupMark]]:
    """(shard, GroupMark) for the members of every kind but the joined one."""
    return [(node[1], GroupMark(node[2], kind, root[0])) for kind, node, root in members if kind != KEEP]


def joined_groups(members: list[tuple[str, Node, Node]]) -> list[tuple[tuple, Node]]:
    """(root, node) for the members of the joined kinds, for the keep rule."""
    return [(tuple(root), node) for kind, node, root in members if kind == KEEP]


def keep_one(element) -> list[tuple[str, KeepMark]]:
    """One kept row per joined group: highest clip_score, then smallest uid (then position)."""
    _, nodes = element
    nodes = list(nodes)
    kept = min(nodes, key=lambda n: (-n[3], n[0], n[1], n[2]))
    return [(node[1], KeepMark(node[2], kept[0], node != kept)) for node in nodes]


def also_joined(edge: tuple[str, tuple], mark: tuple[str, ...]) -> list[tuple[str, tuple]]:
    """An edge of `kind`, and again under KEEP when its kind is one of `dedup.mark`."""
    kind, pair = edge
    return [(kind, pair)] + ([(KEEP, pair)] if kind in mark else [])


def banded_edges(keyed, kind: str, bands_fn, bucket_fn, prepare=lambda e: e, payload=None) -> list:
    """A Flow of (value, node) -> [exact-value edges, verified edges of the distinct values' band
    buckets] (Flows of (kind, edge)). `bands_fn` gives (band, (rep, payload)) per bucket of a
    prepared value; or, with `payload` ((rep, value) -> (rep, (PAYLOAD, payload))), (band, rep), and
    the payloads join the buckets that hold two or more (a large payload then travels once per row,
    not once per band)."""
    same = keyed.group_by_key(f"{kind}ByValue").map(f"{kind}Same", distinct_and_star, kind)
    prepared = same.map(f"{kind}Distinct", operator.itemgetter(1)).map(f"{kind}Prepare", prepare)
    buckets = prepared.flat_map(f"{kind}Bands", bands_fn).group_by_key(f"{kind}ByBand")
    if payload is not None:
        crowded = buckets.flat_map(f"{kind}Crowded", crowded_members)
        buckets = (
            prepared.map(f"{kind}Payloads", payload)
            .flatten(f"{kind}WithBuckets", crowded)
            .group_by_key(f"{kind}ByRep")
            .flat_map(f"{kind}PayloadPerBucket", payload_per_bucket)
            .group_by_key(f"{kind}ByCrowdedBand")
        )
    near = buckets.flat_map(f"{kind}Verify", bucket_fn)
    return [same.flat_map(f"{kind}Edges", operator.itemgetter(0)), near]


def image_edges(keyed, max_distance: int) -> list:
    """(pHash, node) -> edges between rows within `max_distance` bits."""
    return banded_edges(
        keyed,
        "image",
        lambda e: image_band_keys(e, max_distance),
        lambda e: verify_image_bucket(e, max_distance),
    )


def caption_edges(keyed, cfg: DedupConfig, prepare=None) -> list:
    """(caption text, node) -> edges between rows whose captions' MinHash Jaccard >= the threshold;
    `prepare` turns (text, rep) into (rep, signature) (default: MinHash of the text's shingles)."""
    bands, rows = nd.lsh_params(cfg.caption_jaccard, cfg.minhash_perms)
    return banded_edges(
        keyed,
        "caption",
        lambda e: caption_band_keys(e, bands, rows),
        lambda e: verify_caption_bucket(e, cfg.caption_jaccard),
        prepare=prepare or (lambda e: caption_signature(e, cfg)),
        payload=packed_signature,
    )


def semantic_edges(members, eps: float):
    """(cluster, ClusterBlock) -> SemDeDup's edges inside each cluster."""
    return members.group_by_key("ByCluster").flat_map("SemDeDup", semantic_cluster_edges, eps)


def deduplicate(shards, layout: Layout, cfg: DedupConfig, alias: str | None, centroids_path: str | None):
    """The dedup graph: a Flow of data shard names -> the Flow of shards whose dedup columns were
    written (`graph.py`: run by Beam or in memory)."""
    edges, side = [], []
    if "exact" in cfg.kinds:
        edges.append(
            shards.flat_map("ExactKeys", exact_keys, layout)
            .group_by_key("ExactByKey")
            .flat_map("ExactEdges", lambda element: star("exact", element[1]))
        )
    if "image" in cfg.kinds:
        edges += image_edges(shards.flat_map("imageKeys", phash_keys, layout), cfg.phash_distance)
    if "caption" in cfg.kinds:
        edges += caption_edges(shards.flat_map("captionKeys", caption_keys, layout), cfg)
    if "semantic" in cfg.kinds and centroids_path is not None:
        assigned = shards.map("AssignClusters", assign_clusters, layout, alias, centroids_path)
        side.append(assigned.flat_map("ClusterMarks", operator.itemgetter(1)))
        edges.append(
            semantic_edges(assigned.flat_map("ClusterMembers", operator.itemgetter(0)), cfg.semantic_eps)
        )
    members = (
        shards.flat_map("NoEdges", lambda _: [])
        .flatten("AllEdges", *edges)
        .flat_map("AlsoJoined", also_joined, tuple(cfg.mark))
        .group_by_key("ByKind")
        .map("Components", components)
    )
    kept = (
        members.flat_map("JoinedGroups", joined_groups).group_by_key("ByGroup").flat_map("KeepOne", keep_one)
    )
    marks = members.flat_map("GroupMarks", group_marks).flatten("AllMarks", kept, *side)
    return marks.group_by_shard("ByShard", shards).map("Write", write_dedup_columns, layout, cfg)


def _own_group(kind: str, table: pa.Table) -> list[bool]:
    """Rows that have the signal of `kind` (a row alone in its group gets its own uid as group id)."""
    if kind == "exact":
        return [  # normalise_url gives every non-empty URL a key: no need to normalise it again here
            bool(u) or d is not None
            for u, d in zip(table.column("url").to_pylist(), table.column("sha256").to_pylist(), strict=True)
        ]
    if kind == "image":
        return [v is not None for v in table.column("phash").to_pylist()]
    if kind == "caption":
        return [caption_key(v) is not None for v in table.column("caption_fixed").to_pylist()]
    return [False] * table.num_rows  # semantic: set from the cluster marks


def write_dedup_columns(element: tuple[str, list], layout: Layout, cfg: DedupConfig) -> str:
    """Write the dedup columns of one shard (a side file) from the marks the global steps sent it."""
    shard, marks = element
    table = read_columns(layout, layout.data_shard(shard), ("uid", "url", "sha256", "phash", "caption_fixed"))
    n, uids = table.num_rows, table.column("uid").to_pylist()
    groups = {k: [None] * n for k in KINDS}
    in_group = {k: [False] * n for k in KINDS}
    cluster, kept_uid, duplicate = [None] * n, [None] * n, [False] * n
    for mark in marks:
        if isinstance(mark, GroupMark):
            groups[mark.kind][mark.row], in_group[mark.kind][mark.row] = mark.group, True
        elif isinstance(mark, KeepMark):
            kept_uid[mark.row], duplicate[mark.row] = mark.kept, mark.duplicate
        else:
            cluster[mark.row] = mark.cluster
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
