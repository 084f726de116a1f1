"""`pairsmith select --recipe / --target-corruption / --list` on a corrupted toy set built by the real
pipeline (toy CLIP, Beam DirectRunner, real Parquet)."""

import json
import re

import polars as pl
import pytest

from pairsmith.flows.cli import main
from pairsmith.flows.corrupt import corrupt
from pairsmith.flows.recipes import NOT_DUPLICATE, RECIPES
from pairsmith.flows.select import SelectionError, select
from tools.corruption_fixture import build_toy_set

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def swapped(tmp_path_factory) -> str:
    """1,000 toy pairs, 20 % of captions swapped (at 300 the true share of the 0.05 subset spread by
    1.3 points over swap draws, which change with the local server's port; at 1,000 by 0.6)."""
    folder = tmp_path_factory.mktemp("recipes")
    build_toy_set(folder, 1000, seed=7200, extra=["input.shard_size=250"])
    out = str(folder / "swap-0.2")
    corrupt(str(folder / "dataset"), out, 0.2, "swap", seed=1)
    return out


def _rows(folder) -> pl.DataFrame:
    return pl.read_parquet(f"{folder}/data/*.parquet")


def test_list_names_every_recipe_and_its_rules(capsys):
    assert main(["select", "--list"]) == 0
    text = capsys.readouterr().out
    for recipe in RECIPES.values():
        assert recipe.name in text and all(rule.text in text for rule in recipe.rules)
    assert "0.28" in text and "replaced by --target-corruption" in text
    assert text.count(NOT_DUPLICATE.text) == len(RECIPES) and "--keep-duplicates" in text


def test_clip_top_30_keeps_the_top_30_percent(swapped, tmp_path):
    manifest = select(swapped, None, str(tmp_path / "s"), recipe="clip-top-30", keep_duplicates=True)
    full, kept = _rows(swapped), _rows(tmp_path / "s")
    assert kept.height == pytest.approx(0.3 * full.height, abs=2)
    assert kept["clip_score"].min() >= full["clip_score"].quantile(0.7) - 1e-6
    assert manifest["selection"]["recipe"] == "clip-top-30" and len(manifest["selection"]["rules"]) == 2


def test_laion_needs_a_b32_score_or_an_explicit_column(swapped, tmp_path, capsys):
    assert main(["select", swapped, "--recipe", "laion", "--out", str(tmp_path / "no")]) == 2
    assert "ViT-B/32" in capsys.readouterr().err
    select(swapped, None, str(tmp_path / "s"), recipe="laion", clip_column="clip_score")
    kept, full = _rows(tmp_path / "s"), _rows(swapped)
    rule = (
        (pl.col("status") == "success")
        & pl.col("laion_basic_ok")
        & (pl.col("clip_score") >= pl.when(pl.col("lang") == "en").then(0.28).otherwise(0.26))
        & (pl.col("nsfw_score") < 0.5)
        & (pl.col("watermark_score") < 0.8)
        & ~pl.col("is_duplicate").fill_null(False)  # select leaves duplicates out by default
    )
    assert 0 < kept.height == full.filter(rule).height
    # --where still works, alone or with a recipe (both apply)
    where = 'pl.col("caption_words") > 4'
    select(swapped, where, str(tmp_path / "w"), recipe="laion", clip_column="clip_score")
    assert _rows(tmp_path / "w").height == full.filter(rule & (pl.col("caption_words") > 4)).height
    assert main(["select", swapped, "--out", str(tmp_path / "x")]) == 2
    assert "needs --where, --recipe or --target-corruption" in capsys.readouterr().err


def test_datacomp_basic_is_its_flag(swapped, tmp_path):
    select(swapped, None, str(tmp_path / "s"), recipe="datacomp-basic")
    full = _rows(swapped)
    kept = full.filter(pl.col("datacomp_basic_ok") & ~pl.col("is_duplicate"))  # toy scenes: 160 px
    assert _rows(tmp_path / "s").height == kept.height


def test_target_corruption_keeps_the_least_likely_mismatched_up_to_the_target(swapped, tmp_path, capsys):
    out = tmp_path / "t"
    assert main(["select", swapped, "--target-corruption", "0.05", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    printed_estimate = float(re.search(r"estimated corruption ratio ([0-9.]+)", printed).group(1))
    assert printed_estimate == pytest.approx(0.05, abs=0.005) and "mean corruption_score" in printed
    manifest = json.loads((out / "manifest.json").read_text())
    c = manifest["corruption"]
    kept, full = _rows(out), _rows(swapped)
    truth = kept["injected_corruption"].is_not_null().mean()
    print(
        f"target 0.05: kept {kept.height} of {full.height}, estimate {c['estimated_corruption_ratio']:.4f}, truth {truth:.4f}"
    )
    assert c["estimated_corruption_ratio"] == pytest.approx(0.05, abs=0.005)
    assert abs(truth - c["estimated_corruption_ratio"]) <= 0.025
    assert 0 < truth < full["injected_corruption"].is_not_null().mean() / 2  # slightly corrupted, on purpose
    distinct = full.filter(~pl.col("is_duplicate").fill_null(False))  # duplicates are left out first
    dropped = distinct.join(kept.select("uid"), on="uid", how="anti")
    assert kept["corruption_score"].max() <= dropped["corruption_score"].min() + 1e-4  # most likely go first
    assert c["dataset_estimated_ratio"] == pytest.approx(0.2, abs=0.02)


def test_a_target_replaces_the_recipes_agreement_rule_and_cannot_add_corruption(swapped, tmp_path):
    manifest = select(swapped, None, str(tmp_path / "t"), recipe="clip-top-30", target_corruption=0.1)
    assert manifest["selection"]["rules"] == [RECIPES["clip-top-30"].rules[0].text, NOT_DUPLICATE.text]
    assert _rows(tmp_path / "t").height > 0.3 * _rows(swapped).height
    with pytest.raises(SelectionError, match="selection only removes mismatched pairs"):
        select(swapped, None, str(tmp_path / "u"), target_corruption=0.5)
