"""Dataflow without its service: with Beam's `--dry_run=True` a run builds and translates every
stage's pipeline for DataflowRunner (apache-beam[gcp]), submits nothing, and writes only its plan."""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import LOCAL

from pairsmith.flows.cli import main

pytestmark = pytest.mark.slow  # the whole flow, translated
DATAFLOW = [
    "runner.runner=DataflowRunner",
    'runner.options=["--dry_run=True", "--project=my-project", "--region=us-central1", '
    '"--temp_location=gs://my-bucket/tmp"]',
]


def test_a_dry_run_translates_every_stage_and_submits_nothing(tmp_path, capsys):
    urls = [f"http://192.0.2.1/{i}.jpg" for i in range(30)]  # TEST-NET: nothing may fetch them
    pq.write_table(
        pa.table({"url": urls, "caption": [f"photo {i}" for i in range(30)]}), tmp_path / "p.parquet"
    )
    out = tmp_path / "out"
    settings = [s for item in [*LOCAL, "input.shard_size=10", *DATAFLOW] for s in ("--set", item)]
    assert main(["run", "--input", str(tmp_path / "p.parquet"), "--out", str(out), *settings]) == 0
    assert "5 pipelines translated, none submitted" in capsys.readouterr().out
    plan = json.loads((out / "plan.json").read_text())
    assert plan["runner"] == "DataflowRunner" and plan["shards"] == 3
    assert plan["options"]["project"] == "my-project" and str(plan["options"]["dry_run"]) == "True"
    pipelines = {p["pipeline"]: p["transforms"] for p in plan["pipelines"]}
    assert list(pipelines) == ["DownloadAnnotate", "CaptionSharing", "Dedup", "Corruption", "Merge"]
    assert {"imageByBand", "SemDeDup", "KeepOne", "Write"} <= set(pipelines["Dedup"])
    assert {"SumHistograms", "Report", "Write"} <= set(pipelines["Corruption"])
    written = {p.relative_to(out).parts[0] for p in out.rglob("*") if p.is_file()}
    assert written == {"plan.json", "run.json", "_work"}  # no images, data, embeddings or manifest
    assert not (out / "_work" / "download").exists() and not (out / "_work" / "columns").exists()
