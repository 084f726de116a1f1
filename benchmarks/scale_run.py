"""Scale: the whole pipeline on 20k and then 100k generated pairs, throughput and peak memory.

    python benchmarks/scale_run.py [--sizes 20000,100000] [--workers 2]

Serves N distinct small JPEGs (random colour fields with a few shapes, 64..160 px, made on the fly
from the URL, so nothing is held in memory) from 127.0.0.1 and runs `pairsmith run`'s stages
(`runner.run_all`) in a fresh process per size: the cheap profile (`models.profile=none`,
`annotate.ocr=off`; every global stage on), shards of 1,000, DirectRunner with --workers processes
(`multi_processing`). Prints rows/s and the peak RSS of the whole process tree (the run and its
worker processes, sampled every 0.5 s), and the ratio of the peaks: nothing but the shuffles may grow
with the dataset, so the 100k peak must stay within 1.25x of the 20k one. Every row must come out
`success`.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from download_throughput import tree_rss_mb  # noqa: E402  (the same process-tree sampler)

for _name in ("NO_ALBUMENTATIONS_UPDATE", "HF_HUB_OFFLINE"):
    os.environ.setdefault(_name, "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
MEMORY_TARGET = 1.25


def image(i: int) -> bytes:
    """A distinct JPEG for index `i` (the same bytes every time it is asked for)."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(i)
    w, h = (int(v) for v in rng.integers(64, 161, 2))
    base = rng.integers(0, 256, 3)
    pixels = np.clip(base + rng.normal(0, 40, (h // 8 + 1, w // 8 + 1, 3)), 0, 255).astype(np.uint8)
    picture = Image.fromarray(pixels).resize((w, h), Image.BILINEAR)
    draw = ImageDraw.Draw(picture)
    for _ in range(3):
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        draw.ellipse((x, y, x + w // 4, y + h // 4), fill=tuple(int(c) for c in rng.integers(0, 256, 3)))
    buf = io.BytesIO()
    picture.save(buf, "JPEG", quality=85)
    return buf.getvalue()


class GeneratedImages(dict):
    """Routes of the demo server made on demand: `/i/N.jpg` -> image N."""

    def get(self, path, default=None):
        from pairsmith.flows.demo_site import Route

        if path.startswith("/i/") and path.endswith(".jpg"):
            return Route(body=image(int(path[3:-4])), headers=(("Content-Type", "image/jpeg"),))
        return default


def generated_image_server():
    """The demo server, its routes made on demand (it copies a plain dict of routes)."""
    from pairsmith.flows.demo_site import LocalImageServer

    server = LocalImageServer({})
    server._routes = GeneratedImages()  # noqa: SLF001  (a benchmark's server, not an API)
    return server


def worker(args: argparse.Namespace) -> None:
    from pairsmith.pipelines.runner import run_all
    from pairsmith.schemas.config import load_config

    options = json.dumps([f"--direct_num_workers={args.workers}", "--direct_running_mode=multi_processing"])
    settings = [f"input.path={args.input}", "input.shard_size=1000", "download.allow_private_addresses=true"]
    settings += ["models.profile=none", "annotate.ocr=off", f"runner.options={options}"]
    started = time.perf_counter()
    manifest = run_all(load_config(None, settings), args.out)
    print(json.dumps({"seconds": time.perf_counter() - started, "manifest": manifest}))


def run_size(n: int, folder: str, base_url: str, workers: int) -> dict:
    urls = [f"{base_url}/i/{i}.jpg" for i in range(n)]
    captions = [f"a picture of shapes, number {zlib.crc32(str(i).encode()) % 997}" for i in range(n)]
    pq.write_table(pa.table({"url": urls, "caption": captions}), f"{folder}/pairs-{n}.parquet")
    cmd = [sys.executable, __file__, "--worker", "--input", f"{folder}/pairs-{n}.parquet"]
    cmd += ["--out", f"{folder}/out-{n}", "--workers", str(workers)]
    peak = 0.0
    with (
        open(f"{folder}/log-{n}.txt", "w") as log,
        subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True) as proc,
    ):
        while proc.poll() is None:
            peak = max(peak, tree_rss_mb(proc.pid))
            time.sleep(0.5)
        stdout = proc.stdout.read()
    if proc.returncode != 0:
        raise SystemExit(Path(f"{folder}/log-{n}.txt").read_text()[-3000:])
    result = json.loads(stdout.strip().splitlines()[-1])
    return {"seconds": result["seconds"], "tree_mb": peak, "manifest": result["manifest"]}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="20000,100000", help="pairs per run (default 20000,100000)")
    parser.add_argument("--workers", type=int, default=2, help="DirectRunner worker processes (default 2)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--input", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return

    sizes = [int(s) for s in args.sizes.split(",")]
    results = {}
    with tempfile.TemporaryDirectory() as folder, generated_image_server() as server:
        for n in sizes:
            print(f"running {n} pairs ...", flush=True)
            results[n] = run_size(n, folder, server.base_url, args.workers)
    print(f"\nwhole pipeline, cheap profile, {args.workers} DirectRunner processes, shards of 1,000")
    print(f"{'pairs':>8}{'seconds':>9}{'rows/s':>8}{'tree MB':>9}  statuses; stage seconds")
    for n, r in results.items():
        m = r["manifest"]
        stages = ", ".join(f"{k} {v:.0f}" for k, v in m["stage_seconds"].items())
        print(
            f"{n:>8}{r['seconds']:>9.1f}{n / r['seconds']:>8.1f}{r['tree_mb']:>9.0f}  {m['rows_per_status']}; {stages}"
        )
    small, large = results[sizes[0]]["tree_mb"], results[sizes[-1]]["tree_mb"]
    ratio = large / small
    verdict = "PASS" if ratio <= MEMORY_TARGET else "FAIL"
    print(f"\npeak memory {sizes[-1]} / {sizes[0]} = {ratio:.2f}  (target <= {MEMORY_TARGET}: {verdict})")
    if any(r["manifest"]["rows_per_status"] != {"success": n} for n, r in results.items()):
        raise SystemExit("FAILED: not every row is a success")


if __name__ == "__main__":
    main()
