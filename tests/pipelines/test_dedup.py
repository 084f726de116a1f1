"""Dedup: the search functions against all-pairs truth, and the global stage on a real run."""

import numpy as np
import polars as pl
import pytest
from conftest import LOCAL

from pairsmith.flows.demo_site import LocalImageServer, write_pairs_parquet
from pairsmith.pipelines import dedup, runner
from pairsmith.pipelines import near_duplicates as nd
from pairsmith.pipelines import semantic_clusters as sc
from pairsmith.pipelines.dedup_keys import minhash_signature, normalise_url
from pairsmith.pipelines.graph import LocalFlow
from pairsmith.pipelines.layout import Layout, read_json
from pairsmith.schemas.config import ConfigError, load_config


def _planted_hashes(seed: int, n: int = 3000) -> np.ndarray:
    rng = np.random.default_rng(seed)
    values = rng.integers(0, np.iinfo(np.uint64).max, n, dtype=np.uint64, endpoint=True)
    for i in range(0, 600, 2):  # near copies 0-11 bits away
        flips = rng.choice(64, int(rng.integers(0, 12)), replace=False)
        values[i + 1] = values[i] ^ np.uint64(sum(1 << int(f) for f in flips))
    return np.unique(values)


@pytest.mark.parametrize("distance", [1, 3, 6, 10])
def test_banded_phash_search_finds_exactly_the_pairs_all_pairs_finds(distance):
    values = _planted_hashes(distance)
    truth = np.triu(np.bitwise_count(values[:, None] ^ values[None, :]) <= distance, k=1)
    want = set(zip(*(a.tolist() for a in np.nonzero(truth)), strict=True))
    keyed = LocalFlow((v, (f"{i:05d}", "s", i, 0.0)) for i, v in enumerate(values.tolist()))
    edges = [edge for flow in dedup.image_edges(keyed, distance) for _, edge in flow.items]
    groups = nd.UnionFind()
    for a, b in edges:
        groups.union(a[2], b[2])
    found = {(i, j) for i, j in want if groups.find(i) == groups.find(j)}
    assert len(want) > 10
    assert found == want  # every close pair ends in one group (star edges join them transitively)
    for a, b in edges:  # and every edge is a real pair within the distance
        assert bin(int(values[a[2]]) ^ int(values[b[2]])).count("1") <= distance


def test_groups_are_named_by_their_smallest_member_whatever_the_order():
    groups = nd.UnionFind()
    for a, b in [("d", "c"), ("c", "b"), ("x", "y"), ("b", "e")]:
        groups.union(a, b)
    assert groups.roots() == {"b": "b", "c": "b", "d": "b", "e": "b", "x": "x", "y": "x"}
    assert sorted(nd.star_edges(["q", "p", "r"], [(0, 1), (1, 2)])) == [("p", "q"), ("p", "r")]


# (threshold, permutations) -> (bands, rows), as datasketch's private _optimal_param gave them before
LSH_OPTIMA = {
    (0.5, 32): (8, 4),
    (0.7, 128): (14, 9),
    (0.8, 256): (17, 15),
    (0.9, 128): (5, 25),
    (0.9, 32): (2, 16),
}


@pytest.mark.parametrize(("threshold", "perms"), list(LSH_OPTIMA))
def test_lsh_bands_are_datasketchs_optimum(threshold, perms):
    assert nd.lsh_params(threshold, perms) == LSH_OPTIMA[threshold, perms]


def test_a_caption_threshold_that_lsh_cannot_band_stops_the_run_before_any_work(tmp_path):
    settings = ["dedup.caption_jaccard=0.9", "dedup.minhash_perms=16", "models.profile=none"]
    with pytest.raises(ConfigError, match=r"dedup.caption_jaccard=0.9 with dedup.minhash_perms=16"):
        runner.preflight(Layout(str(tmp_path / "out")), load_config(overrides=settings))
    dedup.check_config(load_config(overrides=[*settings, "dedup.kinds=[exact, image]"]).dedup)  # unused: fine


def test_url_normalisation_keeps_what_names_a_different_resource():
    assert (
        normalise_url("HTTP://Ex.COM:80/a/b.jpg?y=2&x=1&utm_source=feed#top")
        == "http://ex.com/a/b.jpg?x=1&y=2"
    )
    assert normalise_url("https://ex.com:8443/a.jpg") == "https://ex.com:8443/a.jpg"
    assert normalise_url("https://ex.com/A.jpg") != normalise_url(
        "https://ex.com/a.jpg"
    )  # paths are case-sensitive
    assert normalise_url("") is None


def test_minhash_agreement_estimates_jaccard_of_word_shingles():
    def agreement(a, b):
        return float((minhash_signature(a, 1, 256, 0) == minhash_signature(b, 1, 256, 0)).mean())

    base = "a quiet harbour beside a vivid violin on a monday morning near the old canyon"
    assert agreement(base, base.upper() + "!") == 1.0  # case and punctuation do not count
    near = agreement(base, base + " stock photo")  # 12 of 14 distinct words shared: J = 0.857
    assert 0.75 < near < 0.95
    assert agreement(base, "a red car parked on the street in the rain") < 0.3


def test_semantic_and_signature_pairs_follow_their_thresholds():
    vectors = np.eye(4, dtype=np.float32)
    vectors[1] = vectors[0] + 0.01 * np.array([0, 1, 0, 0])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    assert nd.semantic_pairs(vectors, eps=0.001) == [(0, 1)]
    signatures = np.array([[1, 2, 3, 4], [1, 2, 3, 9], [7, 8, 9, 10]], dtype=np.uint32)
    assert nd.similar_signature_pairs(signatures, 0.75) == [(0, 1)]
    assert nd.similar_signature_pairs(signatures, 0.8) == []


def test_semantic_edges_from_per_shard_blocks_are_all_pairs_within_each_cluster():
    """Rows travel as one block per (shard, cluster); the edges are those of all pairs of each cluster,
    whichever shard a row came from and in whatever order the blocks meet."""
    rng = np.random.default_rng(3)
    base = rng.standard_normal((40, 16)).astype(np.float32)
    vectors = np.concatenate([base, base[:15] + 1e-3 * rng.standard_normal((15, 16)).astype(np.float32)])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    clusters = rng.integers(0, 3, len(vectors))
    clusters[40:] = clusters[:15]  # copies in their source's cluster, but mostly in the other shard
    nodes = [(f"{i:04d}", f"shard-{i % 2}", i, 0.0) for i in range(len(vectors))]
    blocks = [
        block
        for shard in (1, 0)
        for block in dedup.cluster_blocks(nodes[shard::2], clusters[shard::2], vectors[shard::2])
    ]
    assert len(blocks) == 6 and all(len(b.nodes) == len(b.vectors) for _, b in blocks)
    found = dedup.semantic_edges(LocalFlow(blocks), eps=0.01).items
    groups = nd.UnionFind()
    for i, j in nd.semantic_pairs(vectors, 0.01):
        if clusters[i] == clusters[j]:
            groups.union(nodes[i], nodes[j])
    expected = {(root, node) for node, root in groups.roots().items() if node != root}
    assert {edge for _, edge in found} == expected and len(expected) == 15


def test_default_cluster_count_is_one_per_thousand_rows_up_to_the_papers_and_a_set_count_is_kept():
    sizes = [0, 1, 999, 1000, 1001, 100_000, 1_000_000, 10**7, 5 * 10**7, 5 * 10**7 + 1, 440_000_000]
    counts = [sc.cluster_count(0, n) for n in sizes]
    assert counts == sorted(counts)  # monotone in the rows
    assert counts[:5] == [1, 1, 1, 1, 2]  # floor: one cluster, however few rows
    assert sc.cluster_count(0, 100_000) == 100 and sc.cluster_count(0, 1_000_000) == 1000
    assert sc.cluster_count(0, 5 * 10**7 + 1) == sc.cluster_count(0, 440_000_000) == sc.MAX_CLUSTERS == 50_000
    assert sc.cluster_count(80_000, 440_000_000) == 80_000  # dedup.semantic_clusters is kept, cap or not
    assert sc.cluster_count(7, 1000) == 7
    assert sc.cluster_count(7, 5) == 5  # never more clusters than vectors


def test_two_level_kmeans_gives_k_unit_centroids_the_same_for_the_same_seed():
    rng = np.random.default_rng(0)
    sample = rng.standard_normal((sc.IVF_FROM_CLUSTERS * 8, 16)).astype(np.float32)
    sample /= np.linalg.norm(sample, axis=1, keepdims=True)
    k = sc.IVF_FROM_CLUSTERS + 1  # two-level from here on
    centroids = sc.spherical_kmeans(sample, k, seed=3)
    assert centroids.shape == (k, 16)
    np.testing.assert_allclose(np.linalg.norm(centroids, axis=1), 1, atol=1e-5)
    np.testing.assert_array_equal(centroids, sc.spherical_kmeans(sample, k, seed=3))
    clusters = sc.nearest_centroid(sc.centroid_index(centroids), sample)
    assert len(np.unique(clusters)) > k // 2  # the clusters split the sample, not a few of them


def test_every_worker_assigns_with_the_cells_saved_beside_the_centroids(tmp_path):
    """From 512 centroids the dedup stage saves the coarse cells once; a worker loading the
    centroids uses those cells (not its own k-means of them), and fewer centroids remove the file."""
    rng = np.random.default_rng(1)
    centroids = rng.standard_normal((sc.IVF_FROM_CLUSTERS, 16)).astype(np.float32)
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    path = str(tmp_path / "centroids.npy")
    np.save(path, centroids)
    sc.write_cells(centroids, path)
    saved = np.load(sc.cells_path(path))
    assert saved.shape == (int(sc.IVF_CELLS_PER_ROOT * np.sqrt(len(centroids))), 16)
    np.save(sc.cells_path(path), saved[::-1].copy())  # what a worker reads is what it uses
    index = sc.load_centroid_index(path)
    np.testing.assert_array_equal(index.cells, saved[::-1])
    rows = rng.standard_normal((2000, 16)).astype(np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    assigned = sc.nearest_centroid(index, rows)
    np.testing.assert_array_equal(
        assigned, sc.nearest_centroid(sc.centroid_index(centroids, saved[::-1]), rows)
    )
    assert assigned.min() >= 0 and assigned.max() < len(centroids)
    sc.write_cells(centroids[:10], path)
    assert not (tmp_path / "centroids_cells.npy").exists()


@pytest.fixture(scope="module")
def deduplicated(tmp_path_factory, demo_routes_and_pairs):
    """The small demo site through the whole pipeline: photos, their resized and recompressed copies,
    byte-identical copies under other URLs, and toy scenes."""
    routes, pairs = demo_routes_and_pairs
    folder = tmp_path_factory.mktemp("dedup")
    with LocalImageServer(dict(routes)) as server:
        write_pairs_parquet(pairs, server.base_url, folder / "pairs.parquet")
        cfg = load_config(None, [f"input.path={folder / 'pairs.parquet'}", "input.shard_size=25", *LOCAL])
        runner.run_all(cfg, str(folder / "out"))
    return folder / "out", cfg


def _read(out) -> pl.DataFrame:
    return pl.read_parquet(f"{out}/data/*.parquet").sort("source_row")


@pytest.mark.slow
def test_resized_and_recompressed_copies_join_their_photo_and_distinct_photos_stay_apart(deduplicated):
    df = _read(deduplicated[0]).filter(pl.col("status") == "success")
    df = df.with_columns(name=pl.col("url").str.extract(r"/(?:photo|near|wrong)/([a-z_]+)"))
    photos = df.filter(pl.col("kind") == "photo")
    group_of = dict(zip(photos["name"], photos["dup_image_group"], strict=True))
    assert len(set(group_of.values())) == len(group_of)  # distinct photos: distinct groups
    near = df.filter(pl.col("kind") == "near_duplicate")
    assert near.height >= 30
    assert [group_of[n] for n in near["name"]] == near["dup_image_group"].to_list()


@pytest.mark.slow
def test_one_row_is_kept_per_group_the_best_scored(deduplicated):
    df = _read(deduplicated[0])
    assert df.height == len(df["source_row"].unique())  # nothing lost
    grouped = df.filter(pl.col("duplicate_of").is_not_null()).group_by("duplicate_of")
    for kept_uid, members in grouped:
        kept = members.filter(~pl.col("is_duplicate"))
        assert kept.height == 1 and kept["uid"][0] == kept_uid[0]
        assert kept["clip_score"][0] == members["clip_score"].max()
        assert all(members.filter(pl.col("is_duplicate"))["duplicate_kinds"].to_list())
    unique = df.filter(pl.col("duplicate_of").is_null())
    assert not unique["is_duplicate"].any() and unique.height > 0
    manifest = read_json(Layout(str(deduplicated[0])).manifest)
    assert manifest["duplicate_rows"] == df["is_duplicate"].sum() > 0


@pytest.mark.slow
def test_byte_identical_copies_share_the_exact_group(deduplicated):
    df = _read(deduplicated[0]).filter(pl.col("status") == "success")
    for _, rows in df.group_by("sha256"):
        assert rows["dup_exact_group"].n_unique() == 1
        assert rows["dup_exact_group"][0] == rows["uid"].min()
    assert df["dup_semantic_cluster"].null_count() == 0


@pytest.mark.slow
def test_rerun_on_the_multiprocess_runner_gives_the_same_groups(deduplicated):
    out, cfg = deduplicated
    before = _read(out)
    layout = Layout(str(out))
    layout.fs.rm(layout.dedup_done)
    cfg = cfg.model_copy(
        update={
            "runner": cfg.runner.model_copy(
                update={"options": ["--direct_num_workers=2", "--direct_running_mode=multi_processing"]}
            )
        }
    )
    runner.dedup(layout, cfg, layout.shards("data"))
    runner.merge(layout, cfg, layout.shards("data"))
    after = _read(out)
    columns = [
        "dup_exact_group",
        "dup_image_group",
        "dup_caption_group",
        "dup_semantic_group",
        "is_duplicate",
    ]
    assert before.select(columns).equals(after.select(columns))


@pytest.mark.slow
def test_the_dedup_graph_in_memory_writes_what_beam_wrote(deduplicated, tmp_path):
    """The stage's one graph, run on lists (`graph.LocalFlow`) instead of Beam: the same side files."""
    out, cfg = deduplicated
    layout = Layout(str(out))
    shards = layout.shards("data")
    beam_columns = [pl.read_parquet(layout.stage_columns("dedup", s)) for s in shards]
    for shard in shards:
        (out / "_work" / "columns" / "dedup" / f"{shard}.parquet").unlink()
    centroids = layout.centroids if layout.exists(layout.centroids) else None
    written = dedup.deduplicate(LocalFlow(shards), layout, cfg.dedup, "toy", centroids).items
    assert sorted(written) == shards
    for shard, expected in zip(shards, beam_columns, strict=True):
        assert pl.read_parquet(layout.stage_columns("dedup", shard)).equals(expected)
