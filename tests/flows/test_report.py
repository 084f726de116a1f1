"""`pairsmith report`: the page of a real toy output (Beam DirectRunner, toy models, local server),
its sections and images, that it names no other host, that it renders in headless Chromium, what a
selection removes rule by rule, and its size at 100k rows."""

import base64
import io
import re
import shutil
import subprocess
import time
from html import escape
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from conftest import LOCAL
from PIL import Image

from pairsmith.flows import summary
from pairsmith.flows.cli import main
from pairsmith.flows.demo_site import LocalImageServer, write_pairs_parquet
from pairsmith.flows.report import GRID, render, write_report
from pairsmith.flows.select import select
from pairsmith.pipelines.runner import run_all
from pairsmith.schemas.config import load_config

SECTIONS = ("overview", "signals", "types", "duplicates", "captions", "corruption")
URL_ATTRIBUTE = re.compile(r"""\b(?:src|href|xlink:href|action|poster)\s*=\s*["']?([^"'\s>]*)""", re.I)


@pytest.fixture(scope="module")
def demo_out(tmp_path_factory, demo_routes_and_pairs) -> str:
    """The small demo site (60 pairs, every failure kind, duplicates) through the whole pipeline, once."""
    routes, pairs = demo_routes_and_pairs
    folder = tmp_path_factory.mktemp("report")
    with LocalImageServer(dict(routes)) as server:
        path = folder / "pairs.parquet"
        write_pairs_parquet(pairs, server.base_url, path)
        run_all(load_config(None, [f"input.path={path}", "input.shard_size=20", *LOCAL]), str(folder / "out"))
    return str(folder / "out")


def _rows(out: str) -> pl.DataFrame:
    return pl.read_parquet(f"{out}/data/*.parquet")


def _images(html: str) -> list[str]:
    return re.findall(r'<img src="([^"]*)"', html)


def _section(html: str, anchor: str, end: str = "<h2 ") -> str:
    """The html from the element `anchor` up to `end` (the next section heading)."""
    start = html.index(f'id="{anchor}"')
    stop = html.find(end, start + 1)
    return html[start : stop if stop > 0 else len(html)]


@pytest.mark.slow
def test_report_has_every_section_images_and_no_url_off_the_machine(demo_out, capsys):
    assert main(["report", demo_out]) == 0
    path = Path(demo_out) / "report.html"
    assert capsys.readouterr().out.strip() == f"report: {demo_out}/report.html"
    html = path.read_text()
    for anchor in SECTIONS:
        assert f'id="{anchor}"' in html and f'href="#{anchor}"' in html
    df = _rows(demo_out)
    for signal in summary.signals(df):
        assert f'id="signal-{signal.column}"' in html
    assert {"clip_score", "nsfw_score", "watermark_score", "corruption_score", "caption_words"} <= {
        s.column for s in summary.signals(df)
    }
    # published thresholds drawn, with the share of rows on each side
    for label in (
        "LAION English &gt;= 0.28",
        "LAION other &gt;= 0.26",
        "LAION punsafe &lt; 0.5",
        "LAION pwatermark &lt; 0.8",
    ):
        assert label in html
    clip = _section(html, "signal-clip_score", "</section>")
    kept = int((df["clip_score"] >= 0.28).sum())
    assert (
        f"keeps {kept} (" in clip
        and f'removes <span class="tag">{df["clip_score"].drop_nulls().len() - kept} (' in clip
    )
    grids = summary.samples(df, "clip_score", 0.28, GRID)
    assert clip.count("<figure") == sum(g.height for g in grids.values()) > GRID and clip.count("<svg") == 1
    # every status and error kind of the demo is counted
    overview = _section(html, "overview")
    for status, count in df["status"].value_counts().iter_rows():
        assert f'<td>{status}</td><td class="n">{count}</td>' in overview
    for kind in df["error_kind"].drop_nulls().unique():
        assert f"<td>{kind}</td>" in overview
    # images: one data URI per shown image, small JPEGs, every grid card of a stored image has one
    images = _images(html)
    shown, distinct = map(int, re.search(r"(\d+) images shown \((\d+) distinct\)", html).groups())
    assert len(images) == shown > 3 * GRID and len(set(images)) <= distinct <= shown  # exact twins: one URI
    assert "image not readable" not in html
    for uri in images[:20]:
        assert uri.startswith("data:image/jpeg;base64,")
        with Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))) as img:
            assert img.format == "JPEG" and max(img.size) <= 160
    # nothing points off the machine: every src/href is a data: URI or an anchor, and no scheme at all
    for value in URL_ATTRIBUTE.findall(html):
        assert value.startswith(("data:image/jpeg;base64,", "#")), value
    for forbidden in ("http://", "https://", "//:", "<script", "<link", "url(", "@import", "<iframe"):
        assert forbidden not in html.lower()


@pytest.mark.slow
def test_report_renders_in_headless_chromium(demo_out, tmp_path):
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("headless Chromium not installed (Debian package `chromium`)")
    page = write_report(demo_out, target=str(tmp_path / "report.html"))
    shot = tmp_path / "shot.png"
    subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--screenshot={shot}",
            "--window-size=1400,3000",
            f"file://{page}",
        ],
        capture_output=True,
        timeout=120,
        check=True,
    )
    pixels = np.asarray(Image.open(shot).convert("RGB"), dtype=np.float32)
    assert pixels.shape[:2] == (3000, 1400)
    # not blank, and the images of the first grids drew (a blank or text-only band has few colours)
    assert pixels.std() > 20
    assert len(np.unique(pixels[1000:3000].reshape(-1, 3), axis=0)) > 2000


@pytest.mark.slow
def test_selection_shows_each_rule_and_keeps_what_select_keeps(demo_out, tmp_path):
    where = 'pl.col("caption_words") > 3'
    html = render(demo_out, where=where, recipe="laion", clip_column="clip_score")
    manifest = select(demo_out, where, str(tmp_path / "subset"), recipe="laion", clip_column="clip_score")
    part = _section(html, "selection")
    assert f"keeps {manifest['output_rows']} of {manifest['input_rows']} rows" in part
    df = _rows(demo_out)
    # rule by rule: removed after the rules before it, and alone
    success = df["status"] == "success"
    assert part.count("removed by <code>") == 7  # the recipe's five rules, --where and ~is_duplicate
    first, last = (
        f'<td>status == success (an image was downloaded and decoded)</td><td class="n">{(~success).sum()}</td>',
        f"<td>{escape('--where ' + where)}</td>",
    )
    assert first in part and last in part
    alone = int((~(df["caption_words"] > 3).fill_null(False)).sum())
    assert re.search(rf"{re.escape(last)}<td class=\"n\">\d+</td><td class=\"n\">{alone}</td>", part)
    # the removed samples carry the columns their rule reads
    assert "status = failed_to_download" in part or "status = failed_to_decode" in part
    assert "clip_score = " in part and "lang = " in part
    assert html.index('id="selection"') < html.index('id="signals"')


@pytest.mark.slow
def test_report_of_a_subset_reads_images_from_its_source(demo_out, tmp_path):
    subset = str(tmp_path / "subset")
    select(demo_out, 'pl.col("status") == "success"', subset)
    html = Path(write_report(subset)).read_text()
    assert "image not readable" not in html and len(_images(html)) > 3 * GRID
    assert f"{_rows(subset).height} rows" in html


@pytest.mark.slow
def test_missing_tar_and_missing_output_are_reported_not_crashed(demo_out, tmp_path, capsys):
    copy = tmp_path / "copy"
    shutil.copytree(demo_out, copy)
    removed = sorted((copy / "images").glob("*.tar"))[0]
    removed.unlink()
    html = render(str(copy))
    assert f"images not readable from: images/{removed.name}" in html and "image not readable</div>" in html
    assert len(_images(html)) > 0
    assert main(["report", str(tmp_path / "nothing")]) == 2
    assert "has no data shards" in capsys.readouterr().err


@pytest.mark.slow
def test_page_size_is_bounded_at_100k_rows(demo_out, tmp_path):
    """100,000 rows (the demo's rows repeated with new uids and jittered scores, images in the demo's
    tars): the page stays far under 30 MB because the number of images is bounded, not the rows."""
    df = _rows(demo_out)
    big_rows = 100_000
    big = pl.concat([df] * (big_rows // df.height + 1)).head(big_rows)
    rng = np.random.default_rng(0)
    big = big.with_columns(
        (pl.col("uid") + "-" + pl.int_range(pl.len()).cast(pl.String)).alias("uid"),
        (pl.col("clip_score") + pl.Series(rng.normal(0, 0.05, big_rows), dtype=pl.Float32)).alias(
            "clip_score"
        ),
    )
    folder = tmp_path / "big"
    (folder / "data").mkdir(parents=True)
    shutil.copytree(Path(demo_out) / "images", folder / "images")
    big.write_parquet(folder / "data" / "00000.parquet")
    started = time.time()
    path = write_report(str(folder), recipe="datacomp-basic")
    seconds = time.time() - started
    size = Path(path).stat().st_size
    images = len(_images(Path(path).read_text()))
    print(f"100k rows: {size / 1e6:.1f} MB, {images} images, {seconds:.0f} s")
    assert size < 30e6 and 0 < images < 1000


def test_histogram_counts_every_value_and_widens_to_the_thresholds():
    values = pl.Series([0.1, 0.15, 0.2, None, 0.2])
    hist = summary.histogram(values, bins=4, include=(0.28,))
    assert sum(hist.counts) == hist.values == 4 and hist.nulls == 1
    assert hist.edges[0] == pytest.approx(0.1) and hist.edges[-1] == pytest.approx(0.28)
    assert summary.kept_share(values, summary.CLIP_THRESHOLDS[0]) == (0, 4)


def test_samples_show_both_sides_of_the_threshold_and_no_duplicates():
    n = 40
    frame = pl.DataFrame(
        {
            "uid": [f"{i:03d}" for i in range(n)],
            "status": ["success"] * n,
            "member": ["m"] * n,
            "is_duplicate": [i % 10 == 9 for i in range(n)],
            "score": [i / n for i in range(n)],
        }
    )
    grids = summary.samples(frame, "score", 0.5, k=8)
    assert grids["low"]["score"].to_list() == [i / n for i in range(8)]
    assert grids["high"]["score"].max() == 38 / n  # 39 is a duplicate
    # four just under 0.5 and four from 0.5 up, none of them in the other grids and none a duplicate
    assert grids["around"]["score"].to_list() == [i / n for i in (15, 16, 17, 18, 20, 21, 22, 23)]


def test_rule_effects_count_in_order_and_alone():
    frame = pl.DataFrame({"a": [1, 2, 3, 4, None], "b": [1, 1, 0, 0, 1]})
    effects = summary.rule_effects(
        frame,
        [("a > 1", pl.col("a") > 1), ("b == 1", pl.col("b") == 1)],
        lambda f, e: f.select(e.fill_null(False).alias("keep"))["keep"],
    )
    assert [(e.rule, e.removed.height, e.removed_alone, e.left) for e in effects] == [
        ("a > 1", 2, 2, 3),
        ("b == 1", 2, 2, 1),
    ]


@pytest.mark.slow
def test_report_of_rows_with_only_core_columns_leaves_out_what_it_cannot_show(demo_out, tmp_path):
    df = _rows(demo_out).select("uid", "caption", "status", "tar", "member", "clip_score")
    (tmp_path / "few" / "data").mkdir(parents=True)
    shutil.copytree(Path(demo_out) / "images", tmp_path / "few" / "images")
    df.write_parquet(tmp_path / "few" / "data" / "00000.parquet")
    html = render(str(tmp_path / "few"))
    assert 'id="signal-clip_score"' in html and html.count('<section id="signal-') == 1
    for absent in ("types", "duplicates", "captions", "corruption", "selection"):
        assert f'id="{absent}"' not in html and f'href="#{absent}"' not in html
    assert len(_images(html)) >= 3 * GRID
