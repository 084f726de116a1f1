"""Recaptioning inside a run and alone over an existing output (`pairsmith recaption`)."""

import io
import json
import shutil

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import LOCAL

from pairsmith.captioners.annotator import RECAPTION_COLUMNS
from pairsmith.captioners.grounding import GROUNDING_FIELDS
from pairsmith.filters.toy_world import render_scene_details
from pairsmith.flows.cli import main
from pairsmith.flows.demo_site import LocalImageServer, Route
from pairsmith.flows.recaption import recaption
from pairsmith.pipelines.layout import Layout
from pairsmith.pipelines.runner import run_all
from pairsmith.schemas.config import load_config
from pairsmith.schemas.record import FIELDS, validate_table
from tools.train_toy_captioner import mentions

pytestmark = pytest.mark.slow  # every test here runs the whole pipeline

# what recaptioning writes: the recaption columns, their grounding (it follows the recaption), caption nouns
ADDED = [*RECAPTION_COLUMNS, *(f.name for f in GROUNDING_FIELDS), "caption_nouns"]
TRUE, SWAPPED = 16, 6


def _png(image) -> Route:
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return Route(body=buf.getvalue(), headers=(("Content-Type", "image/png"),))


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A toy-profile run (the toy captioner on by default) over 22 toy-world scenes, 16 with their own
    caption and 6 with another scene's, a 404 and an invalid URL; 3 shards."""
    rng = np.random.default_rng(7)
    scenes = [render_scene_details(rng, size=256) for _ in range(TRUE + SWAPPED)]
    routes = {f"/scene/{i}.png": _png(image) for i, (image, _, _) in enumerate(scenes)}
    captions = [c for _, c, _ in scenes]
    captions[TRUE:] = captions[TRUE + 1 :] + captions[TRUE : TRUE + 1]  # the last 6 get a neighbour's
    folder = tmp_path_factory.mktemp("recaption")
    with LocalImageServer(routes) as server:
        urls = [server.url(p) for p in routes] + [server.url("/missing.png"), "not a url"]
        pq.write_table(
            pa.table({"url": urls, "caption": [*captions, "a red circle", "a blue star"]}),
            folder / "in.parquet",
        )
        cfg = load_config(None, [f"input.path={folder / 'in.parquet'}", "input.shard_size=8", *LOCAL])
        manifest = run_all(cfg, str(folder / "out"))
    return folder / "out", scenes, manifest


def _read(out) -> pl.DataFrame:
    return pl.read_parquet(f"{out}/data/*.parquet").sort("source_row")


def test_columns_in_a_run(built):
    out, scenes, manifest = built
    df = _read(out)
    assert df.height == TRUE + SWAPPED + 2 and manifest["model_ids"]["recaption"] == "toy"
    schema = pq.read_schema(next((out / "data").glob("*.parquet")))
    for name in ADDED:
        assert schema.field(name).type == next(f.type for f in FIELDS if f.name == name)
    ok, failed = df.head(TRUE + SWAPPED), df.tail(2)
    assert ok["status"].unique().to_list() == ["success"]
    assert ok.select(pl.col(RECAPTION_COLUMNS).is_null().any()).row(0) == (False,) * len(RECAPTION_COLUMNS)
    assert failed.select(pl.col(RECAPTION_COLUMNS).is_null().all()).row(0) == (True,) * len(RECAPTION_COLUMNS)
    assert df["caption_nouns"].null_count() == 0  # every row with a caption
    assert set(ok["recaption_model"]) == {"toy"} and set(ok["recaption_prompt"]) == {"dense"}
    assert (ok["recaption_words"] == ok["recaption"].str.split(" ").list.len()).all()
    # PixArt-alpha's point, in the toy world: the dense recaption names more things than the alt-text
    assert (ok["recaption_nouns"] > ok["caption_nouns"]).all()
    named = [
        sorted(mentions(text)) == sorted((c, s) for _, c, s in details["things"])
        for text, (_, _, details) in zip(ok["recaption"], scenes, strict=True)
    ]
    assert np.mean(named) >= 0.8
    similarity = ok["recaption_alt_similarity"].to_numpy()
    assert similarity[:TRUE].mean() > similarity[TRUE:].mean()  # swapped alt-texts disagree with the image
    assert ok["recaption_clip_score"].is_between(-1, 1).all()


def _strip(out):
    """Remove the recaption columns from every data shard, as an output written without them."""
    for path in (out / "data").glob("*.parquet"):
        table = pq.read_table(path)
        pq.write_table(table.drop_columns(ADDED), path)


def test_recaption_alone_adds_the_columns_and_keeps_every_row(built, tmp_path):
    out, _, _ = built
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    _strip(copy)
    before = _read(copy)
    entry = recaption(str(copy))
    after = _read(copy)
    assert (
        entry["shards"] == 3
        and entry["shards_this_call"] == 3
        and entry["recaptioned_rows"] == TRUE + SWAPPED
    )
    assert after.columns[: len(FIELDS)] == [f.name for f in FIELDS]
    assert after.drop(ADDED).equals(before)  # every row, every other column as it was
    # the same settings give the same recaptions as in the run (same batches, same seeds)
    assert after.select(ADDED).equals(_read(out).select(ADDED))
    for shard in Layout(str(copy)).shards("data"):
        validate_table(pq.read_table(copy / "data" / f"{shard}.parquet"))
    manifest = json.loads((copy / "manifest.json").read_text())
    assert manifest["recaption"]["model"] == "toy" and manifest["model_ids"]["recaption"] == "toy"
    # resumable: a rerun with the same settings does nothing; other settings redo every shard
    mtimes = sorted(p.stat().st_mtime_ns for p in (copy / "data").glob("*.parquet"))
    assert recaption(str(copy))["shards_this_call"] == 0
    assert sorted(p.stat().st_mtime_ns for p in (copy / "data").glob("*.parquet")) == mtimes
    short = recaption(str(copy), ["recaption.prompt=short", "recaption.temperature=0"])
    assert short["shards_this_call"] == 3
    again = _read(copy)
    assert set(again["recaption_prompt"].drop_nulls()) == {"short"}
    assert again.drop(ADDED).equals(before)
    assert again["recaption_words"].drop_nulls().mean() < after["recaption_words"].drop_nulls().mean()


def test_cli(built, tmp_path, capsys):
    out, _, _ = built
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    assert main(["recaption", str(copy), "--set", "recaption.prompt=none"]) == 0
    printed = capsys.readouterr().out
    assert "22 rows recaptioned by toy (prompt none)" in printed and "pairsmith rescore" in printed
    for argv, message in [
        (["recaption", str(tmp_path / "nothing")], "not a pairsmith output folder"),
        (["recaption", str(copy), "--set", "input.shard_size=3"], "changes only recaption"),
        (["recaption", str(copy), "--set", f"recaption.model={tmp_path}/no-model"], "cannot load captioner"),
        (["recaption", str(copy), "--set", "recaption.model=none"], "no captioner"),
    ]:
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
