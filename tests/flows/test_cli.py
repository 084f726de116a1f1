"""The Prefect flow and the CLI, end to end on Prefect's ephemeral API and a local server."""

import json
import shutil

import polars as pl
import pytest
from conftest import LOCAL
from prefect.testing.utilities import prefect_test_harness

from pairsmith.flows.cli import main
from pairsmith.flows.demo_site import LocalImageServer, write_pairs_parquet
from pairsmith.schemas.record import FIELDS

pytestmark = pytest.mark.slow  # every test here runs the whole pipeline


@pytest.fixture(scope="module")
def prefect_api():
    with prefect_test_harness():
        yield


@pytest.fixture(scope="module")
def built(tmp_path_factory, demo_routes_and_pairs, prefect_api):
    routes, pairs = demo_routes_and_pairs
    folder = tmp_path_factory.mktemp("built")
    sets = [arg for s in [*LOCAL, "input.shard_size=20"] for arg in ("--set", s)]
    with LocalImageServer(dict(routes)) as server:
        write_pairs_parquet(pairs, server.base_url, folder / "pairs.parquet")
        assert (
            main(["run", "--input", str(folder / "pairs.parquet"), "--out", str(folder / "out"), *sets]) == 0
        )
    return folder / "out"


def test_run_writes_data_manifest_and_summary_artifact(built, demo_routes_and_pairs):
    _, pairs = demo_routes_and_pairs
    df = pl.read_parquet(built / "data" / "*.parquet")
    assert df.height == len(pairs)
    assert df.columns[: len(FIELDS)] == [f.name for f in FIELDS]
    assert {"kind", "expected_status"} <= set(df.columns)  # extra input columns are kept
    manifest = json.loads((built / "manifest.json").read_text())
    assert manifest["input_rows"] == len(pairs)
    assert sum(manifest["rows_per_status"].values()) == len(pairs)

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["pairsmith-run-summary"]))
        )
    assert any(manifest["run_id"] in (a.data or "") for a in artifacts)


def test_stats_and_select(built, tmp_path, capsys):
    assert main(["stats", str(built)]) == 0
    text = capsys.readouterr().out
    assert "status" in text and "success" in text and "align_ok" in text and "lang_score" in text
    subset = tmp_path / "subset"
    where = '(pl.col("status") == "success") & (pl.col("width") >= 64)'
    assert main(["select", str(built), "--where", where, "--out", str(subset)]) == 0
    full = pl.read_parquet(built / "data" / "*.parquet")
    picked = pl.read_parquet(subset / "data" / "*.parquet")
    # rows marked is_duplicate are left out unless --keep-duplicates
    picks = (pl.col("status") == "success") & (pl.col("width") >= 64) & ~pl.col("is_duplicate")
    assert picked.height == full.filter(picks).height > 0
    assert picked.schema == full.schema
    manifest = json.loads((subset / "manifest.json").read_text())
    assert manifest["selection"]["where"] == where
    assert manifest["output_rows"] == picked.height


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "--input", "{tmp}/none.parquet", "--out", "{tmp}/o"], "no input files found"),
        (
            ["run", "--input", "{tmp}", "--out", "{tmp}/o", "--set", "download.treads=2"],
            "unknown config key 'download.treads'",
        ),
        (["run", "{tmp}/missing.yaml", "--out", "{tmp}/o"], "config file not found"),
        (["run", "--out", "{tmp}/o"], "no input: pass --input"),
        (
            ["run", "--input", "{tmp}/nourl.csv", "--out", "{tmp}/o", "--set", "models.profile=laion"],
            "HF_HOME",
        ),
        (["run", "--input", "{tmp}/nourl.csv", "--out", "{tmp}/o"], "no column 'url'"),
        (["select", "{built}", "--where", 'pl.col("nope") > 1', "--out", "{tmp}/s"], "unknown column"),
        (["select", "{built}", "--where", "pl.col(", "--out", "{tmp}/s"], "cannot parse --where"),
        (["select", "{built}", "--recipe", "laoin", "--out", "{tmp}/s"], "unknown recipe 'laoin'"),
        (["select", "{tmp}/missing", "--where", "pl.lit(True)", "--out", "{tmp}/s"], "no such folder"),
        (["stats", "{tmp}/missing"], "no such folder"),
        (["stats", "{tmp}"], "is not a pairsmith output"),
        (["stats", "{tmp}/nourl.csv"], "is a file"),
        (["stats", "{tmp}/started"], "has not finished a shard yet"),
    ],
)
def test_user_errors_are_one_line_without_traceback(argv, message, tmp_path, built, capsys):
    (tmp_path / "nourl.csv").write_text("link,caption\nhttp://a.example/x.jpg,x\n")
    (tmp_path / "started").mkdir()
    (tmp_path / "started" / "run.json").write_text("{}")  # a run killed before its first shard
    argv = [a.format(tmp=tmp_path, built=built) for a in argv]
    if argv[0] == "run" and "models.profile=laion" not in argv:
        argv += ["--set", "models.profile=none"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1


def _one_line_error(capsys, message: str) -> None:
    err = capsys.readouterr().err.strip()
    assert message in err and "Traceback" not in err and len(err.splitlines()) == 1, err


def test_a_rerun_over_a_damaged_input_shard_stops_in_one_line_and_drops_the_manifest(built, tmp_path, capsys):
    out = tmp_path / "out"
    shutil.copytree(built, out)
    shard = sorted((out / "_work" / "input").glob("*.parquet"))[1]
    shard.write_bytes(shard.read_bytes()[:100])
    sets = [arg for s in [*LOCAL, "input.shard_size=20"] for arg in ("--set", s)]
    assert main(["run", "--input", str(built.parent / "pairs.parquet"), "--out", str(out), *sets]) == 2
    _one_line_error(capsys, f"input shard {shard} is damaged (unreadable)")
    assert not (out / "manifest.json").exists()


def test_select_never_writes_over_its_source_or_a_full_folder(built, tmp_path, capsys):
    before = pl.read_parquet(built / "data" / "*.parquet")
    where = ["--where", 'pl.col("status") == "blocked"']
    assert main(["select", str(built), *where, "--out", str(built)]) == 2
    _one_line_error(capsys, "is the source folder")
    assert main(["select", str(built), *where, "--out", str(built / "data" / "..")]) == 2
    _one_line_error(capsys, "is the source folder")
    assert main(["select", str(built), *where, "--out", str(built), "--overwrite"]) == 2
    _one_line_error(capsys, "is the source folder")
    assert main(["select", str(built), *where, "--out", str(built / "subset")]) == 2
    _one_line_error(capsys, "inside the source folder")
    assert main(["select", str(built), *where, "--out", str(built.parent), "--overwrite"]) == 2
    _one_line_error(capsys, "holds the source folder")
    assert pl.read_parquet(built / "data" / "*.parquet").equals(before)

    full = tmp_path / "full"
    full.mkdir()
    (full / "notes.txt").write_text("mine")
    assert main(["select", str(built), *where, "--out", str(full)]) == 2
    _one_line_error(capsys, "is not empty")
    assert (full / "notes.txt").read_text() == "mine"
    assert main(["select", str(built), *where, "--out", str(full), "--overwrite"]) == 0
    assert not (full / "notes.txt").exists()
    assert pl.read_parquet(full / "data" / "*.parquet").height == before["status"].eq("blocked").sum() > 0
    (tmp_path / "empty").mkdir()
    assert main(["select", str(built), *where, "--out", str(tmp_path / "empty")]) == 0


def test_an_input_without_rows_gives_an_empty_output_that_stats_and_select_accept(
    tmp_path, prefect_api, capsys
):
    (tmp_path / "pairs.csv").write_text("url,caption\n")
    out, subset = tmp_path / "out", tmp_path / "subset"
    sets = [arg for s in LOCAL for arg in ("--set", s)]
    assert main(["run", "--input", str(tmp_path / "pairs.csv"), "--out", str(out), *sets]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["input_rows"] == manifest["output_rows"] == 0
    assert main(["stats", str(out)]) == 0
    assert "0 rows" in capsys.readouterr().out
    assert main(["select", str(out), "--recipe", "laion", "--out", str(subset)]) == 0
    assert "selected 0 of 0 rows" in capsys.readouterr().out
    assert main(["stats", str(subset)]) == 0
