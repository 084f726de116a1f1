"""Download throughput: plain img2dataset vs pairsmith's download stage vs the whole pipeline.

    python benchmarks/download_throughput.py [--n 2000] [--threads 16] [--shard-size 500]

Serves N distinct JPEGs from 127.0.0.1 and runs, each in a fresh process on the same URLs and
resize settings: (a) img2dataset's `download`, (b) pairsmith's ingest + download stages,
(c) pairsmith's whole pipeline with the cheap annotators (ingest, download, annotate, finalize).
Prints samples/s, b/a and c/a, and each process's peak RSS. Target: b/a >= 0.9.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

DISALLOWED = ["noai", "noimageai", "noindex", "noimageindex"]  # pairsmith's and img2dataset's default


def make_images(n: int, seed: int = 0) -> list[bytes]:
    """N distinct JPEGs: random crops of scikit-image photos, 256..800 px, quality 85."""
    from PIL import Image
    from skimage import data

    photos = [
        Image.fromarray(getattr(data, name)()).convert("RGB")
        for name in ("astronaut", "coffee", "chelsea", "rocket")
    ]
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        photo = photos[i % len(photos)]
        w, h = rng.integers(photo.width // 3, photo.width), rng.integers(photo.height // 3, photo.height)
        x, y = rng.integers(0, photo.width - w + 1), rng.integers(0, photo.height - h + 1)
        side = int(rng.integers(256, 801))
        crop = photo.crop((x, y, x + w, y + h)).resize((side, max(64, side * h // w)))
        buf = io.BytesIO()
        crop.save(buf, "JPEG", quality=85)
        out.append(buf.getvalue())
    return out


def run_img2dataset(input_path: str, out: str, threads: int, shard_size: int) -> int:
    from img2dataset import download

    download(
        url_list=input_path,
        input_format="parquet",
        url_col="url",
        caption_col="caption",
        output_format="webdataset",
        output_folder=out,
        processes_count=1,
        thread_count=threads,
        image_size=512,
        resize_mode="keep_ratio",
        resize_only_if_bigger=True,
        encode_format="jpg",
        encode_quality=95,
        number_sample_per_shard=shard_size,
        compute_hash="sha256",
        timeout=10,
        retries=1,
        disallowed_header_directives=DISALLOWED,
        distributor="multiprocessing",
        enable_wandb=False,
    )
    table = pa.concat_tables(pq.read_table(p) for p in sorted(Path(out).glob("*.parquet")))
    return table.column("status").to_pylist().count("success")


def run_pairsmith(input_path: str, out: str, threads: int, shard_size: int, whole: bool) -> int:
    from pairsmith.pipelines import runner
    from pairsmith.pipelines.layout import Layout
    from pairsmith.schemas.config import load_config

    cfg = load_config(
        None,
        [
            f"input.path={input_path}",
            f"input.shard_size={shard_size}",
            f"download.threads={threads}",
            "download.allow_private_addresses=true",
            "models.profile=none",
        ],
    )
    if whole:
        manifest = runner.run_all(cfg, out)
        return manifest["rows_per_status"].get("success", 0)
    layout = Layout(out)
    runner.start(layout, cfg)
    shards = runner.ingest(layout, cfg)
    runner.download(layout, cfg, shards)
    table = pa.concat_tables(pq.read_table(layout.download_shard(s)) for s in shards)
    return table.column("status").to_pylist().count("success")


def worker(args: argparse.Namespace) -> None:
    """One measurement in this (fresh) process; prints a JSON line."""
    started = time.perf_counter()
    if args.worker == "img2dataset":
        ok = run_img2dataset(args.input, args.out, args.threads, args.shard_size)
    else:
        ok = run_pairsmith(
            args.input, args.out, args.threads, args.shard_size, whole=args.worker == "pipeline"
        )
    seconds = time.perf_counter() - started
    peak_kb = max(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
    )
    print(json.dumps({"seconds": seconds, "success": ok, "peak_mb": peak_kb / 1024}))


def measure(name: str, input_path: str, folder: str, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, __file__, "--worker", name, "--input", input_path, "--out", f"{folder}/{name}"]
    cmd += ["--threads", str(args.threads), "--shard-size", str(args.shard_size)]
    started = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{name} failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return result | {"total_seconds": time.perf_counter() - started}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--shard-size", type=int, default=500)
    parser.add_argument("--worker", choices=["img2dataset", "download", "pipeline"], help=argparse.SUPPRESS)
    parser.add_argument("--input", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return

    from pairsmith.flows.demo_site import LocalImageServer, Route

    images = make_images(args.n)
    routes = {
        f"/i/{i}.jpg": Route(body=b, headers=(("Content-Type", "image/jpeg"),)) for i, b in enumerate(images)
    }
    with tempfile.TemporaryDirectory() as folder, LocalImageServer(routes) as server:
        input_path = f"{folder}/pairs.parquet"
        urls = [server.url(f"/i/{i}.jpg") for i in range(args.n)]
        pq.write_table(pa.table({"url": urls, "caption": [f"image {i}" for i in range(args.n)]}), input_path)
        results = {
            name: measure(name, input_path, folder, args) for name in ("img2dataset", "download", "pipeline")
        }

    print(
        f"\n{args.n} images from 127.0.0.1, {args.threads} threads, shards of {args.shard_size}, 1 process each"
    )
    print(f"{'run':<34}{'samples/s':>10}{'work s':>9}{'total s':>9}{'success':>9}{'peak MB':>9}")
    labels = {
        "img2dataset": "(a) img2dataset download()",
        "download": "(b) pairsmith ingest + download",
        "pipeline": "(c) pairsmith whole pipeline",
    }
    for name, r in results.items():
        rate = args.n / r["seconds"]
        print(
            f"{labels[name]:<34}{rate:>10.1f}{r['seconds']:>9.2f}{r['total_seconds']:>9.2f}"
            f"{r['success']:>9}{r['peak_mb']:>9.0f}"
        )
    base = results["img2dataset"]["seconds"]
    print(f"\nb/a = {base / results['download']['seconds']:.2f}   (target >= 0.9)")
    print(f"c/a = {base / results['pipeline']['seconds']:.2f}")


if __name__ == "__main__":
    main()
