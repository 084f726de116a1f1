"""The corruption stage and `pairsmith corrupt` on a toy set run through the real pipeline (Beam
DirectRunner, real Parquet, the toy CLIP): the fast version of `benchmarks/corruption_proof.py`, and
what a researcher running the slight-corruption study relies on."""

import glob

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pairsmith.filters.clip_models import ClipEmbedder
from pairsmith.flows.cli import main
from pairsmith.flows.corrupt import CorruptionError, corrupt, rescore, run_config
from pairsmith.pipelines import runner
from pairsmith.pipelines.corruption_stage import unit_vectors
from pairsmith.pipelines.layout import Layout, read_json, write_parquet
from pairsmith.pipelines.semantic_clusters import centroid_index, nearest_centroid
from pairsmith.schemas.config import RunnerConfig
from tools.corruption_fixture import build_toy_set
from tools.metrics import roc_auc

pytestmark = pytest.mark.slow
MULTI_PROCESS = RunnerConfig(options=["--direct_num_workers=2", "--direct_running_mode=multi_processing"])


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> str:
    """1,000 toy pairs. The estimate's error comes from which pairs a seed swaps (a swap between two
    scenes that share a shape is a mismatch that looks matched), and the draws change with the local
    server's port (uids hash the URL): at 1,000 rows the error's standard deviation is 0.6 points
    (0.8 at 400), so the 2-point bars below sit 3.5 standard deviations out."""
    folder = tmp_path_factory.mktemp("toy")
    build_toy_set(folder, 1000, seed=7100, extra=["input.shard_size=250"])
    return str(folder / "dataset")


def _frame(out: str) -> pl.DataFrame:
    return pl.read_parquet(f"{out}/data/*.parquet")


def _vectors(out: str, column: str, normalise: bool = False) -> np.ndarray:
    table = pa.concat_tables(pq.read_table(p) for p in sorted(glob.glob(f"{out}/embeddings/toy/*.parquet")))
    return unit_vectors(table.column(column), normalise=normalise)


def test_swapped_pairs_are_found_and_their_ratio_estimated(toy, tmp_path):
    clean = read_json(Layout(toy).corruption_report)
    assert clean["estimated_corruption_ratio"] <= 0.02 and clean["rows_scored"] == 1000
    out = str(tmp_path / "swap")
    manifest = corrupt(toy, out, 0.1, "swap", seed=1)
    df = _frame(out)
    truth = df["injected_corruption"].is_not_null().to_numpy()
    assert truth.sum() == manifest["controlled_corruption"]["corrupted_rows"] == 100
    auc = roc_auc(df["corruption_score"].to_numpy(), truth)
    estimate = manifest["estimated_corruption_ratio"]
    print(f"toy 1,000 pairs, 10 % swapped: AUC {auc:.4f}, estimate {estimate:.4f}, truth {truth.mean():.4f}")
    assert auc >= 0.95
    assert abs(estimate - truth.mean()) <= 0.02
    assert abs(df["corruption_score"].mean() - estimate) <= 0.002  # the scores' mean is the estimate
    # what fired is listed: each flag fires on 90 % of random pairs (the decoys), so on ~93 % of swapped
    # rows (0.85-0.98 over 8 swap draws), and on no true pair here
    fired = df["corruption_flags"].list.len().to_numpy() > 0
    assert fired[truth].mean() >= 0.8 and fired[~truth].mean() <= 0.02
    assert set(df["injected_corruption"].drop_nulls()) == {"swap"}


def test_the_copy_recomputes_what_depends_on_the_caption(toy, tmp_path):
    out = str(tmp_path / "swap")
    corrupt(toy, out, 0.2, "swap", seed=2)
    source = _frame(toy).select(
        "uid", pl.col("caption").alias("source_caption"), pl.col("clip_score").alias("s")
    )
    df = _frame(out).with_row_index("i").join(source, on="uid", how="left", maintain_order="left")
    hit = df["injected_corruption"].is_not_null().to_numpy()
    # swaps exchange captions: the multiset is unchanged and every corrupted row has another caption
    assert sorted(df["caption"]) == sorted(df["source_caption"])
    assert (df.filter(hit)["caption"] != df.filter(hit)["source_caption"]).all()
    untouched = df.filter(~hit)
    assert (untouched["caption"] == untouched["source_caption"]).all() and (
        untouched["clip_score"] == untouched["s"]
    ).all()
    # caption annotators reran, the toy CLIP re-embedded the new captions, clip_score follows them
    changed = df.filter(hit)
    assert changed["caption_chars"].to_list() == [len(c.strip()) for c in changed["caption"]]
    texts, images = _vectors(out, "text_embedding"), _vectors(out, "image_embedding")
    rows = changed["i"].to_numpy()
    fresh = ClipEmbedder("toy").load().embed_texts(changed["caption"].to_list())
    assert np.allclose(texts[rows], fresh, atol=2e-3)
    assert np.allclose((images[rows] * texts[rows]).sum(1), changed["clip_score"].to_numpy(), atol=0.01)
    assert (changed["clip_score"] < changed["s"]).mean() >= 0.9
    # the images are the source's (linked), the global stages ran on the copy
    assert (tmp_path / "swap" / df["tar"][0]).is_file()
    assert df["caption_shared_count"].null_count() == 0 and df["dup_exact_group"].null_count() == 0
    manifest = read_json(f"{out}/manifest.json")
    assert manifest["controlled_corruption"]["corrupted_share"] == pytest.approx(0.2)


def test_same_seed_same_copy_and_a_rerun_resumes(toy, tmp_path):
    a, b, c = (str(tmp_path / n) for n in "abc")
    corrupt(toy, a, 0.05, "swap", seed=9)
    corrupt(toy, b, 0.05, "swap", seed=9)
    corrupt(toy, c, 0.05, "swap", seed=10)
    assert _frame(a).equals(_frame(b))
    hits = {o: set(_frame(o).filter(pl.col("injected_corruption").is_not_null())["uid"]) for o in (a, c)}
    assert hits[a] != hits[c]
    corrupt(toy, a, 0.05, "swap", seed=9)  # the same request resumes (here: finds everything done)
    assert _frame(a).equals(_frame(b))
    with pytest.raises(CorruptionError, match="another corrupted copy"):
        corrupt(toy, a, 0.1, "swap", seed=9)
    with pytest.raises(CorruptionError, match="already holds a dataset"):
        corrupt(toy, toy, 0.1, "swap", seed=9)


def test_rewrite_takes_captions_of_images_from_another_cluster(toy, tmp_path):
    out = str(tmp_path / "rewrite")
    manifest = corrupt(toy, out, 0.1, "rewrite", seed=3)
    df = _frame(out).with_row_index("i")
    source = _frame(toy).with_row_index("i")
    assert manifest["controlled_corruption"]["corrupted_rows"] == 100
    # 1,000 rows make one dedup cluster, so rewrite fell back to its own k-means (>= 2 clusters)
    assert source["dup_semantic_cluster"].n_unique() == 1
    (path,) = glob.glob(f"{out}/_work/tmp/rewrite-centroids-*.npy")
    index = centroid_index(np.load(path))
    assert index.ntotal >= 2
    cluster = nearest_centroid(index, _vectors(toy, "image_embedding", normalise=True))
    rows_of = source.group_by("caption").agg("i")
    donors_of = dict(zip(rows_of["caption"], rows_of["i"].to_list(), strict=True))
    for row, caption in (
        df.filter(pl.col("injected_corruption") == "rewrite").select("i", "caption").iter_rows()
    ):
        assert row not in donors_of[caption]  # a caption of another image
        assert any(cluster[donor] != cluster[row] for donor in donors_of[caption])
    assert (
        roc_auc(df["corruption_score"].to_numpy(), df["injected_corruption"].is_not_null().to_numpy()) >= 0.95
    )


def _add_recaptions(out: str, recaption_of: dict[str, str]) -> None:
    """What `pairsmith recaption` leaves: a recaption per row (here the scene's true caption)."""
    layout = Layout(out)
    for shard in layout.shards("data"):
        table = pq.read_table(layout.data_shard(shard))
        values = pa.array([recaption_of[u] for u in table.column("uid").to_pylist()], pa.string())
        for name, array in (
            ("recaption", values),
            ("recaption_alt_similarity", pa.nulls(len(values), pa.float32())),
        ):
            if name in table.column_names:
                table = table.set_column(table.schema.get_field_index(name), table.schema.field(name), array)
            else:
                table = table.append_column(name, array)
        write_parquet(table, layout.data_shard(shard))


def test_rescore_adds_the_recaption_component(toy, tmp_path):
    out = str(tmp_path / "swap")
    corrupt(toy, out, 0.1, "swap", seed=4)
    truth_of = dict(_frame(toy).select("uid", "caption").iter_rows())
    _add_recaptions(out, {u: f"a picture of {c}" for u, c in truth_of.items()})
    report = rescore(out)
    assert report["populations"]["clip+retrieval+recaption"]["rows"] == 1000
    df = _frame(out)
    truth = df["injected_corruption"].is_not_null().to_numpy()
    assert df["corruption_recaption_percentile"].null_count() == 0
    assert roc_auc(-df["corruption_recaption_percentile"].to_numpy(), truth) >= 0.9
    assert roc_auc(df["corruption_score"].to_numpy(), truth) >= 0.95
    assert abs(report["estimated_corruption_ratio"] - truth.mean()) <= 0.02
    fired = df.filter(pl.col("injected_corruption").is_not_null())["corruption_flags"].explode()
    assert "recaption_disagrees" in set(fired)


def test_stage_reruns_to_the_same_values_in_several_processes(toy, tmp_path):
    out = str(tmp_path / "swap")
    corrupt(toy, out, 0.1, "swap", seed=5)
    before = _frame(out)
    layout = Layout(out)
    cfg = run_config(layout).model_copy(update={"runner": MULTI_PROCESS})
    mtime = (tmp_path / "swap" / "data" / "0000-00000.parquet").stat().st_mtime_ns
    runner.score_corruption(layout, cfg, layout.shards("data"))  # done: not redone
    assert (tmp_path / "swap" / "data" / "0000-00000.parquet").stat().st_mtime_ns == mtime
    runner.score_corruption(layout, cfg, layout.shards("data"), again=True)
    runner.merge(layout, cfg, layout.shards("data"))
    assert _frame(out).equals(before)


def test_cli_corrupt_and_rescore(toy, tmp_path, capsys):
    out = str(tmp_path / "cli")
    assert main(["corrupt", toy, "--ratio", "0.05", "--seed", "1", "--out", out]) == 0
    assert "swap: corrupted 50 of 1000 pairs" in capsys.readouterr().out
    assert main(["rescore", out]) == 0
    assert "estimated corruption ratio 0.0" in capsys.readouterr().out
    assert main(["corrupt", toy, "--ratio", "1.5", "--out", str(tmp_path / "bad")]) == 2
    assert "--ratio must be in (0, 1]" in capsys.readouterr().err
