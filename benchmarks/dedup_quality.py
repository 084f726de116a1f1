"""Precision and recall of every dedup kind on real photos with known near-duplicates.

    python benchmarks/dedup_quality.py [--distances 2,4,6,8,10] [--eps 0.00095,0.01,0.03]
        [--kinds image,semantic,caption]

The fixture (`tools/dedup_fixture.py`: scikit-image photos and their quadrants, each resized,
recompressed at JPEG quality 30-95, cropped, brightness-shifted, watermarked, and its caption
varied) is served from 127.0.0.1 and run through the real pipeline with the toy profile; then the
dedup stage alone is rerun for each setting swept. A pair is a true duplicate when both items come
from the same original. Recall of a variant: the share of originals whose variant shares a group
with the original. Precision: the share of the pairs grouped together that are true duplicates.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: tools/

import polars as pl  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from pairsmith.flows.demo_site import LocalImageServer, _image_route  # noqa: E402
from pairsmith.pipelines import runner  # noqa: E402
from pairsmith.pipelines.layout import Layout  # noqa: E402
from pairsmith.schemas.config import load_config  # noqa: E402
from tools.dedup_fixture import CAPTION_VARIANTS, IMAGE_VARIANTS, build_fixture  # noqa: E402

SETTINGS = [
    "download.allow_private_addresses=true",
    "download.encode_format=png",  # store the variants as served, so what is measured is the hash
    "download.resize_mode=no",
    "annotate.ocr=off",
    "models.profile=toy",
    "input.shard_size=200",
]
COLUMN = {"image": "dup_image_group", "caption": "dup_caption_group", "semantic": "dup_semantic_group"}
EASY = ("original", "resize_50", "resize_75", "jpeg_30", "jpeg_50", "jpeg_75", "jpeg_95")


def build_output(folder: Path) -> Layout:
    """Serve the fixture, run the whole pipeline on it; returns the output layout."""
    items = build_fixture()
    routes = {f"/{item.id}.png": _image_route(item.image, "PNG") for item in items}
    with LocalImageServer(routes) as server:
        table = pa.table(
            {
                "url": [server.url(f"/{item.id}.png") for item in items],
                "caption": [item.caption for item in items],
                "original": [item.original for item in items],
                "variant": [item.variant for item in items],
            }
        )
        pq.write_table(table, folder / "fixture.parquet")
        cfg = load_config(None, [f"input.path={folder / 'fixture.parquet'}", *SETTINGS])
        runner.run_all(cfg, str(folder / "out"))
    return Layout(str(folder / "out"))


def rerun_dedup(layout: Layout, settings: list[str]) -> pl.DataFrame:
    """The dedup stage alone with other settings, on the same annotated output."""
    layout.fs.rm(layout.dedup_done)
    cfg = load_config(None, [f"input.path={layout.root}/../fixture.parquet", *SETTINGS, *settings])
    runner.dedup(layout, cfg, layout.shards("data"))
    runner.merge(layout, cfg, layout.shards("data"))
    return pl.read_parquet(f"{layout.root}/data/*.parquet")


def scores(df: pl.DataFrame, column: str, variants: tuple[str, ...]) -> dict[str, float]:
    """Recall per variant and precision over the pairs among `variants` (plus originals)."""
    part = df.filter(pl.col("variant").is_in(["original", *variants]))
    group_of = dict(zip(zip(part["original"], part["variant"], strict=True), part[column], strict=True))
    out = {}
    for variant in variants:
        hits = [group_of[(o, variant)] == group_of[(o, "original")] for o in part["original"].unique()]
        out[variant] = sum(hits) / len(hits)
    pairs = true = 0
    for _, members in part.group_by(column):
        for a, b in itertools.combinations(members["original"].to_list(), 2):
            pairs, true = pairs + 1, true + (a == b)
    out["precision"] = true / pairs if pairs else 1.0
    easy = part.filter(pl.col("variant").is_in(EASY))
    pairs = true = 0
    for _, members in easy.group_by(column):
        for a, b in itertools.combinations(members["original"].to_list(), 2):
            pairs, true = pairs + 1, true + (a == b)
    out["precision_resize_jpeg"] = true / pairs if pairs else 1.0
    return out


def _row(label: str, result: dict[str, float]) -> str:
    return f"| {label} | " + " | ".join(f"{v:.3f}" for v in result.values()) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--distances", default="2,4,6,8,10", help="pHash Hamming distances to sweep")
    parser.add_argument("--jaccards", default="0.5,0.7,0.9", help="caption Jaccard thresholds to sweep")
    parser.add_argument("--eps", default="0.00095,0.01,0.03", help="SemDeDup eps values to sweep")
    parser.add_argument("--kinds", default="image,semantic,caption", help="the kinds to sweep")
    args = parser.parse_args()
    kinds = args.kinds.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        started = time.time()
        layout = build_output(Path(tmp))
        df = pl.read_parquet(f"{layout.root}/data/*.parquet")
        print(
            f"fixture: {df.height} items, {df['original'].n_unique()} originals, built in {time.time() - started:.0f} s"
        )
        header = ("variant", *IMAGE_VARIANTS, "precision", "precision_resize_jpeg")
        if "image" in kinds:
            print("\n## near-image (pHash), recall per variant and precision\n")
            print("| " + " | ".join(header) + " |\n" + "|---" * len(header) + "|")
        for k in args.distances.split(",") if "image" in kinds else []:
            df = rerun_dedup(layout, [f"dedup.phash_distance={k}", "dedup.kinds=[image]"])
            print(_row(f"k = {k}", scores(df, "dup_image_group", IMAGE_VARIANTS)))
        if "semantic" in kinds:
            print("\n## semantic (SemDeDup on the toy CLIP's embeddings)\n")
            print("| " + " | ".join(header) + " |\n" + "|---" * len(header) + "|")
        for eps in args.eps.split(",") if "semantic" in kinds else []:
            df = rerun_dedup(layout, [f"dedup.semantic_eps={eps}", "dedup.kinds=[semantic]"])
            print(_row(f"eps = {eps}", scores(df, "dup_semantic_group", IMAGE_VARIANTS)))
        header = ("variant", *CAPTION_VARIANTS, "precision", "precision_resize_jpeg")
        if "caption" in kinds:
            print("\n## near-caption (MinHash LSH)\n")
            print("| " + " | ".join(header[:-1]) + " |\n" + "|---" * (len(header) - 1) + "|")
        for jaccard in args.jaccards.split(",") if "caption" in kinds else []:
            df = rerun_dedup(layout, [f"dedup.caption_jaccard={jaccard}", "dedup.kinds=[caption]"])
            result = scores(df, "dup_caption_group", CAPTION_VARIANTS)
            result.pop("precision_resize_jpeg")
            print(_row(f"J >= {jaccard}", result))


if __name__ == "__main__":
    main()
