"""`pairsmith stats`: every signal of a real toy output on one screen, and `--json` equal to what polars
computes from the rows."""

import json
from pathlib import Path

import polars as pl
import pytest
from toy_output import build_toy_output

from pairsmith.flows.cli import main

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def out(tmp_path_factory, demo_routes_and_pairs) -> str:
    return build_toy_output(tmp_path_factory.mktemp("stats"), *demo_routes_and_pairs)


def _json(capsys, *argv) -> dict:
    assert main(["stats", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_json_matches_polars(out, capsys):
    numbers = _json(capsys, out)
    df = pl.read_parquet(f"{out}/data/*.parquet")
    assert numbers["rows"] == numbers["rows_in_folder"] == df.height
    assert numbers["status"] == dict(df["status"].value_counts().iter_rows())
    failed = df.filter(pl.col("status") != "success")
    assert numbers["error_kind"] == dict(failed["error_kind"].value_counts().iter_rows())
    clip = numbers["signals"]["clip_score"]
    assert clip["values"] == df["clip_score"].drop_nulls().len() > 0
    assert clip["quantiles"]["p50"] == pytest.approx(df["clip_score"].cast(pl.Float64).quantile(0.5))
    english = next(t for t in clip["thresholds"] if t["value"] == 0.28)
    assert english["kept"] == (df["clip_score"] >= 0.28).sum() and english["keep"] == "above"
    nsfw = numbers["signals"]["nsfw_score"]["thresholds"][0]
    assert nsfw["removed"] == (df["nsfw_score"] >= 0.5).sum()
    assert {"watermark_score", "corruption_score", "caption_words", "sharpness"} <= set(numbers["signals"])
    ok = numbers["flags"]["laion_basic_ok"]
    assert (ok["true"], ok["known"]) == (df["laion_basic_ok"].sum(), df["laion_basic_ok"].drop_nulls().len())
    assert "is_duplicate" not in numbers["flags"]
    assert numbers["data_type"] == dict(df["data_type"].fill_null("(none)").value_counts().iter_rows())
    assert sum(numbers["lang"].values()) == df.height
    duplicates = numbers["duplicates"]
    assert duplicates["rows_marked"] == df["is_duplicate"].sum() > 0
    exact = df.filter(pl.col("dup_exact_group").is_not_null()).group_by("dup_exact_group").len()
    assert duplicates["kinds"]["exact"]["groups"] == exact.filter(pl.col("len") > 1).height
    assert set(duplicates["kinds"]) == {"exact", "image", "caption", "semantic"}
    corruption = numbers["corruption"]
    report = json.loads(Path(out, "corruption.json").read_text())
    assert corruption["estimated_ratio"] == report["estimated_corruption_ratio"]
    assert corruption["mean_score"] == pytest.approx(df["corruption_score"].mean())
    assert sum(numbers["caption_sharing"].values()) == df["caption_shared_count"].drop_nulls().len()


def test_where_counts_only_its_rows(out, capsys):
    where = '(pl.col("status") == "success") & ~pl.col("is_duplicate")'
    numbers = _json(capsys, out, "--where", where)
    df = pl.read_parquet(f"{out}/data/*.parquet")
    kept = df.filter((pl.col("status") == "success") & ~pl.col("is_duplicate"))
    assert numbers["where"] == where and numbers["rows_in_folder"] == df.height
    assert numbers["rows"] == kept.height and numbers["status"] == {"success": kept.height}
    assert numbers["duplicates"]["rows_marked"] == 0
    assert numbers["signals"]["clip_score"]["quantiles"]["p90"] == pytest.approx(
        kept["clip_score"].cast(pl.Float64).quantile(0.9)
    )
    assert main(["stats", out, "--where", 'pl.col("nope") > 1']) == 2
    assert "unknown column" in capsys.readouterr().err


def test_text_shows_every_signal_on_one_screen(out, capsys):
    assert main(["stats", out]) == 0
    text = capsys.readouterr().out
    print(text)
    lines = text.splitlines()
    assert len(lines) <= 60 and max(len(line) for line in lines) <= 130
    for part in ("status", "error_kind", "p50", "clip_score", ">=0.28", "nsfw_score", "<0.5", "flags"):
        assert part in text
    for part in (
        "laion_basic_ok",
        "data_type",
        "lang",
        "duplicates",
        "semantic",
        "caption sharing",
        "corruption",
    ):
        assert part in text
