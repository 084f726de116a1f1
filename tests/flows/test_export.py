"""`pairsmith select --export webdataset|parquet` on a real toy output: the subset read back with the
`webdataset` library matches its Parquet and the source images; Parquet subsets point at real tars;
duplicates are left out unless asked; rules are counted one by one; a killed export resumes to the
same bytes."""

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from io import BytesIO
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import webdataset as wds
from PIL import Image
from toy_output import build_toy_output

from pairsmith.flows.cli import main
from pairsmith.flows.export import tar_location

pytestmark = pytest.mark.slow

SUCCESS = 'pl.col("status") == "success"'


@pytest.fixture(scope="module")
def out(tmp_path_factory, demo_routes_and_pairs) -> str:
    return build_toy_output(tmp_path_factory.mktemp("export"), *demo_routes_and_pairs)


def _rows(folder) -> pl.DataFrame:
    return pl.read_parquet(f"{folder}/data/*.parquet")


def _argv(out, target, *extra) -> list[str]:
    return ["select", str(out), "--where", SUCCESS, "--out", str(target), "--export", "webdataset", *extra]


def _pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(BytesIO(data)).convert("RGB"))


def _source_image(out: str, tar: str, member: str) -> bytes:
    layout, shard = tar_location(out, tar)
    with tarfile.open(layout.tar(shard)) as t:
        return t.extractfile(member).read()


def _strict_json(data: bytes) -> dict:
    def refuse(constant):
        raise ValueError(f"not JSON: {constant}")

    return json.loads(data, parse_constant=refuse)


def test_webdataset_subset_reads_back_with_webdataset(out, tmp_path, capsys):
    subset = tmp_path / "wds"
    assert main(_argv(out, subset, "--shard-size", "7", "--export-embeddings", "npy")) == 0
    printed = capsys.readouterr().out
    full, rows = _rows(out), _rows(subset)
    expected = full.filter((pl.col("status") == "success") & ~pl.col("is_duplicate"))
    assert rows["uid"].to_list() == expected["uid"].to_list() and rows.schema == full.schema
    with_image = rows.filter(pl.col("member").is_not_null())
    assert with_image.height == expected.height > 7  # every kept row's image was read from its source tar
    tars = sorted((subset / "images").glob("*.tar"))
    assert [t.name for t in tars] == [f"{i:06d}.tar" for i in range(math.ceil(with_image.height / 7))]
    per_tar = with_image.group_by("tar", maintain_order=True).len()["len"].to_list()
    assert per_tar[:-1] == [7] * (len(tars) - 1)
    assert f"webdataset: {with_image.height} samples in {len(tars)} tars" in printed

    urls = f"{subset}/images/{{000000..{len(tars) - 1:06d}}}.tar"
    loader = wds.WebDataset(urls, shardshuffle=False).decode("pil").to_tuple("__key__", "jpg", "txt", "json")
    samples = list(loader)
    assert len(samples) == with_image.height and len({key for key, *_ in samples}) == len(samples)
    identity = ["uid", "source_file", "source_row"]
    source = full.select(
        *identity, pl.col("tar").alias("source_tar"), pl.col("member").alias("source_member")
    )
    paired = with_image.join(source, on=identity, how="left", maintain_order="left")
    for (key, image, text, meta), row in zip(samples, paired.iter_rows(named=True), strict=True):
        assert key == row["uid"] and row["member"] == f"{key}.jpg" and (subset / row["tar"]).is_file()
        assert text == row["caption"]
        assert meta["uid"] == row["uid"] and set(meta) == {"key", *rows.columns}
        assert meta["tar"] == row["tar"] and meta["clip_score"] == pytest.approx(row["clip_score"])
        assert meta["data_type_scores"] == pytest.approx(row["data_type_scores"])
        original = _source_image(out, row["source_tar"], row["source_member"])
        assert np.array_equal(np.asarray(image), _pixels(original))
    with tarfile.open(tars[0]) as t:
        for name in t.getnames():
            if name.endswith(".json"):
                _strict_json(t.extractfile(name).read())  # no NaN or Infinity

    # the CLIP embeddings of the kept rows, row-aligned with each data shard, and clip-retrieval's npy
    source_emb = pl.read_parquet(f"{out}/embeddings/toy/*.parquet")
    for data in sorted((subset / "data").glob("*.parquet")):
        side = pl.read_parquet(subset / "embeddings" / "toy" / data.name)
        assert side["uid"].to_list() == pl.read_parquet(data)["uid"].to_list()
    emb = pl.read_parquet(subset / "embeddings" / "toy" / "*.parquet")
    assert emb.sort("uid").equals(source_emb.filter(pl.col("uid").is_in(rows["uid"].to_list())).sort("uid"))
    npy = subset / "embeddings" / "toy"
    metadata = pl.read_parquet(npy / "metadata" / "*.parquet")
    images = np.concatenate([np.load(p) for p in sorted((npy / "img_emb").glob("*.npy"))])
    texts = np.concatenate([np.load(p) for p in sorted((npy / "text_emb").glob("*.npy"))])
    dim = len(emb["image_embedding"].drop_nulls()[0])
    assert images.shape == texts.shape == (metadata.height, dim) and images.dtype == np.float16
    assert metadata["uid"].to_list() == emb.drop_nulls(["image_embedding", "text_embedding"])["uid"].to_list()
    first = emb.filter(pl.col("uid") == metadata["uid"][0])
    assert np.array_equal(images[0], np.asarray(first["image_embedding"][0], np.float16))


def test_parquet_subset_points_at_real_tars_and_leaves_duplicates_out(out, tmp_path, capsys):
    full = _rows(out)
    success = full["status"] == "success"
    assert main(["select", out, "--where", SUCCESS, "--out", str(tmp_path / "p")]) == 0
    printed = capsys.readouterr().out
    rows = _rows(tmp_path / "p")
    assert rows.height == (success & ~full["is_duplicate"]).sum() and not rows["is_duplicate"].any()
    for row in rows.head(5).iter_rows(named=True):
        assert Path(row["tar"]).is_absolute()
        with tarfile.open(row["tar"]) as t:
            assert _pixels(t.extractfile(row["member"]).read()).size
    manifest = json.loads((tmp_path / "p" / "manifest.json").read_text())
    assert manifest["export"]["tar_paths"] == "absolute, into the source folder"
    where, duplicates = manifest["rules"]
    assert (where["removed"], where["removed_alone"]) == ((~success).sum(), (~success).sum())
    assert duplicates["removed"] == (success & full["is_duplicate"]).sum() > 0
    assert duplicates["removed_alone"] == full["is_duplicate"].sum() and duplicates["left"] == rows.height
    assert f"--where {SUCCESS}" in printed and "~is_duplicate" in printed
    assert (
        f"{duplicates['removed']:>8} {duplicates['removed_alone']:>8} {rows.height:>8}  ~is_duplicate"
        in printed
    )

    assert main(["select", out, "--where", SUCCESS, "--keep-duplicates", "--out", str(tmp_path / "k")]) == 0
    kept = _rows(tmp_path / "k")
    assert kept.height == success.sum() and kept["is_duplicate"].any()
    assert "~is_duplicate" not in capsys.readouterr().out


def _same_export(a: Path, b: Path) -> None:
    names = sorted(
        p.relative_to(a).as_posix() for p in a.rglob("*") if p.is_file() and p.name != "manifest.json"
    )
    assert names == sorted(
        p.relative_to(b).as_posix() for p in b.rglob("*") if p.is_file() and p.name != "manifest.json"
    )
    for name in names:
        if name.endswith(".parquet"):
            assert pl.read_parquet(a / name).equals(pl.read_parquet(b / name)), name
        else:
            assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_a_killed_export_resumes_to_the_same_result(out, tmp_path, capsys):
    reference, target = tmp_path / "reference", tmp_path / "killed"
    argv = _argv(out, target, "--shard-size", "1", "--export-embeddings", "npy")
    assert main(_argv(out, reference, "--shard-size", "1", "--export-embeddings", "npy")) == 0
    shards = len(list((reference / "data").glob("*.parquet")))
    env = os.environ | {"PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen([sys.executable, "-m", "pairsmith.flows.cli", *argv], env=env)
    deadline = time.time() + 240
    while (
        not (target / "data" / "000001.parquet").exists()
        and process.poll() is None
        and time.time() < deadline
    ):
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL  # killed mid-export, not finished
    assert not (target / "manifest.json").exists()
    done = len(list((target / "data").glob("*.parquet")))
    assert 2 <= done < shards
    capsys.readouterr()
    assert main(argv) == 0  # the same command resumes
    assert f"resumed: {done} shards were already written" in capsys.readouterr().out
    _same_export(reference, target)
    # a partial state that SIGKILL can leave: a tar written but not its data shard, a half-written file
    selection = json.loads((target / "manifest.json").read_text())["selection"]
    (target / "manifest.json").unlink()  # as while an export runs: its plan, no manifest
    (target / "_work").mkdir()
    (target / "_work" / "select.json").write_text(json.dumps({"selection": selection}))
    shutil.copy(reference / "images" / "000003.tar", target / "images" / "000004.tar.tmp-0badf00d")
    for name in ("000003.parquet", "000004.parquet"):
        (target / "data" / name).unlink()
    (target / "images" / "000004.tar").unlink()
    assert main(argv) == 0
    assert f"resumed: {shards - 2} shards were already written" in capsys.readouterr().out
    _same_export(reference, target)  # the leftover temporary file is gone too
    # another selection into the same folder is refused, as for any full folder
    assert main(_argv(out, target, "--shard-size", "2")) == 2
    assert "is not empty" in capsys.readouterr().err
