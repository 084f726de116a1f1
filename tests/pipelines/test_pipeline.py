"""The Beam pipeline end to end over a local server: row conservation, runners, resume."""

import os
import signal
import subprocess
import sys
import time

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import LOCAL
from polars.testing import assert_frame_equal

from pairsmith.flows.demo_site import LocalImageServer, Route
from pairsmith.pipelines.layout import Layout, read_json
from pairsmith.pipelines.runner import run_all
from pairsmith.schemas.config import load_config
from pairsmith.schemas.record import validate_table

VOLATILE = ["run_id"]


def _read(out) -> pl.DataFrame:
    return pl.read_parquet(f"{out}/data/*.parquet").sort("source_file", "source_row")


@pytest.mark.slow
def test_every_demo_failure_kind_gets_its_status(tmp_path, demo_input, demo_routes_and_pairs):
    _, pairs = demo_routes_and_pairs
    cfg = load_config(None, [f"input.path={demo_input}", "input.shard_size=16", *LOCAL])
    manifest = run_all(cfg, str(tmp_path / "out"))
    df = _read(tmp_path / "out")
    assert df.height == len(pairs) == manifest["input_rows"] == manifest["output_rows"]
    assert df["status"].to_list() == [p.expected_status for p in pairs]
    kinds = dict(zip([p.kind for p in pairs], df["error_kind"].to_list(), strict=True))
    assert kinds["http_404"] == "http_404"
    assert kinds["timeout"] == "timeout"
    assert kinds["redirect_loop"] == "redirect_loop"
    assert kinds["robots_noai"] == "opt_out"
    ok = df.filter(pl.col("status") == "success")
    assert (
        ok.select(pl.col("width", "height", "phash", "sha256", "tar", "member").is_null().any()).row(0)
        == (False,) * 6
    )
    for shard in Layout(str(tmp_path / "out")).shards("data"):
        validate_table(pq.read_table(tmp_path / "out" / "data" / f"{shard}.parquet"))


@pytest.mark.slow
def test_bad_input_rows_are_all_kept(tmp_path, demo_server, demo_routes_and_pairs):
    _, pairs = demo_routes_and_pairs
    good = demo_server.url(next(p.path for p in pairs if p.kind == "photo"))
    captions = ["", None, "x" * (1 << 20), "tab\there\x00nul\x1bescape", "a photo", "a photo"]
    urls = [good] * len(captions) + [None, "", "not-a-url", "ftp://x/y.jpg"]
    captions += ["no url", "empty url", "bad url", "ftp"]
    pq.write_table(pa.table({"url": urls, "caption": captions}), tmp_path / "a.parquet")
    (tmp_path / "b.csv").write_bytes(f"url,caption\n{good},caf\xe9 latin-1 bytes\n".encode("latin-1"))
    (tmp_path / "c.csv").write_text("")
    cfg = load_config(None, [f"input.path={tmp_path}", "input.shard_size=3", *LOCAL])
    manifest = run_all(cfg, str(tmp_path / "out"))
    df = _read(tmp_path / "out")
    assert df.height == manifest["output_rows"] == len(urls) + 1
    assert df["status"].null_count() == 0
    assert df["status"].to_list() == ["success"] * 6 + ["invalid_input"] * 4 + ["success"]
    assert df["caption"][2] == "x" * (1 << 20)
    assert df["caption"][10] == "caf\ufffd latin-1 bytes"
    assert df["uid"][4] == df["uid"][5]  # duplicate rows are both kept, with equal uids


def _runner_rows(tmp_path, demo_input, name, runner_settings):
    overrides = [f"input.path={demo_input}", "input.shard_size=8", *LOCAL, *runner_settings]
    run_all(load_config(None, overrides), str(tmp_path / name))
    return _read(tmp_path / name).drop(VOLATILE)


@pytest.mark.slow
def test_runners_give_the_same_rows(tmp_path, demo_input):
    default = _runner_rows(tmp_path, demo_input, "direct", [])
    multi = _runner_rows(
        tmp_path,
        demo_input,
        "multi",
        ['runner.options=["--direct_num_workers=2", "--direct_running_mode=multi_processing"]'],
    )
    portable = _runner_rows(
        tmp_path,
        demo_input,
        "portable",
        [
            "runner.runner=PortableRunner",
            'runner.options=["--job_endpoint=embed", "--environment_type=LOOPBACK"]',
        ],
    )
    # identical rows; CLIP scores may differ in the last float bits (other thread counts per worker)
    assert_frame_equal(default, multi, check_exact=False, abs_tol=1e-4)
    assert_frame_equal(default, portable, check_exact=False, abs_tol=1e-4)


RUN_SCRIPT = """
import sys
from pairsmith.pipelines.runner import run_all
from pairsmith.schemas.config import load_config
run_all(load_config(None, sys.argv[2:]), sys.argv[1])
"""


@pytest.mark.slow
def test_resume_after_sigkill_gives_exactly_the_rows_of_an_uninterrupted_run(tmp_path):
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (64, 48), "blue").save(buf, "JPEG")
    slow = Route(body=buf.getvalue(), headers=(("Content-Type", "image/jpeg"),), delay_s=0.25)
    n = 48
    with LocalImageServer({f"/{i}.jpg": slow for i in range(n)}) as server:
        urls = [server.url(f"/{i}.jpg") for i in range(n)]
        pq.write_table(
            pa.table({"url": urls, "caption": [f"blue {i}" for i in range(n)]}), tmp_path / "in.parquet"
        )
        settings = [
            f"input.path={tmp_path / 'in.parquet'}",
            "input.shard_size=4",
            "download.threads=1",
            *LOCAL,
        ]
        out = tmp_path / "killed"
        proc = subprocess.Popen(
            [sys.executable, "-c", RUN_SCRIPT, str(out), *settings], start_new_session=True
        )
        layout = Layout(str(out))
        deadline = time.time() + 120
        while len(layout.shards("download")) < 3 and time.time() < deadline and proc.poll() is None:
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        done_before = len(layout.shards("download"))
        assert 3 <= done_before < n // 4, "the kill must land half-way"
        run_all(load_config(None, settings), str(out))
        run_all(load_config(None, settings), str(tmp_path / "clean"))
    resumed, clean = _read(out), _read(tmp_path / "clean")
    assert resumed.height == clean.height == n
    assert resumed["uid"].n_unique() == n
    assert resumed.drop(VOLATILE).equals(clean.drop(VOLATILE))
    assert read_json(layout.manifest)["rows_per_status"] == {"success": n}


@pytest.mark.slow
def test_rerun_with_another_config_on_the_same_folder_is_refused(tmp_path, demo_input):
    from pairsmith.schemas.config import ConfigError

    run_all(load_config(None, [f"input.path={demo_input}", *LOCAL]), str(tmp_path / "out"))
    with pytest.raises(ConfigError, match="another config"):
        run_all(
            load_config(None, [f"input.path={demo_input}", *LOCAL, "download.image_size=64"]),
            str(tmp_path / "out"),
        )


@pytest.mark.slow
def test_several_clip_models_in_one_run(tmp_path, demo_input):
    two = "models.clip=[{alias: main, spec: toy}, {alias: again, spec: toy}]"
    manifest = run_all(load_config(None, [f"input.path={demo_input}", *LOCAL, two]), str(tmp_path / "out"))
    df = _read(tmp_path / "out")
    assert {"clip_score", "clip_score_again"} <= set(df.columns)
    assert_frame_equal(
        df.select(pl.col("clip_score_again").alias("clip_score")), df.select("clip_score"), abs_tol=1e-5
    )
    assert manifest["model_ids"]["clip/main"] == manifest["model_ids"]["clip/again"] == "toy"
    assert (tmp_path / "out" / "embeddings" / "main").is_dir() and (
        tmp_path / "out" / "embeddings" / "again"
    ).is_dir()


def test_a_model_that_cannot_load_stops_the_run_before_any_download(
    tmp_path, demo_server, demo_input, monkeypatch
):
    from pairsmith.filters.clip_models import ModelLoadError

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    settings = [f"input.path={demo_input}", *LOCAL, "models.profile=laion"]
    with pytest.raises(ModelLoadError, match="ViT-B-32/laion2b_s34b_b79k"):
        run_all(load_config(None, settings), str(tmp_path / "out"))
    assert demo_server.hits == []
    assert not (tmp_path / "out").exists()
