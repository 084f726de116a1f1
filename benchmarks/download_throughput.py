"""Download throughput: plain img2dataset vs pairsmith's download stage vs the whole pipeline.

    python benchmarks/download_throughput.py [--n 2000] [--threads 16] [--shard-size 500] [--repeat 2]

Serves N distinct JPEGs (crops of scikit-image photos, 256..800 px, quality 85) from 127.0.0.1
and runs on the same URLs, each in a fresh process:

  (a) img2dataset's `download()`: webdataset, 1 process, the same threads, shard size, resize and
      encode settings, timeout, retries and X-Robots-Tag list as pairsmith's download defaults;
  (b) pairsmith's ingest and download stages (timed apart; b/a uses ingest + download, which is
      what a user waits for);
  (c) pairsmith's whole pipeline (`runner.run_all`: every stage, download overlapped with annotate)
      with the cheap annotators: `models.profile=none` and, unless --ocr says otherwise,
      `annotate.ocr=off`; the seconds of each stage (the manifest's `stage_seconds`) are printed;
  (d) the same with the toy AI-generated-image detector on (`models.synthetic=toy`): what the
      `synthetic_score` signal costs in a whole run (d/c).

Each run is made --repeat times, the four interleaved, and the fastest of each counts (the machine
may be shared; every ratio compares runs chosen the same way). "work s" times the measured calls
only (after the imports), "CPU s" their CPU time over every thread and child process (CPU s / work s:
the cores kept busy); "total s" is the whole subprocess, interpreter start-up and imports included. Every run is checked: every row
must be a success whose SHA-256 equals that of the bytes served for its URL. Targets: b/a >= 0.9,
c/a >= 0.7.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib
import io
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

for _name in ("NO_ALBUMENTATIONS_UPDATE", "HF_HUB_OFFLINE"):
    os.environ.setdefault(_name, "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

# pairsmith's DownloadConfig defaults, passed to img2dataset by hand (checked against the config in `main`).
IMAGE_SIZE, RESIZE_MODE, ONLY_IF_BIGGER = 512, "keep_ratio", True
ENCODE_FORMAT, ENCODE_QUALITY, TIMEOUT_S, RETRIES = "jpg", 95, 10, 1
DISALLOWED = ["noai", "noimageai", "noindex", "noimageindex"]
TARGET = 0.9
PIPELINE_TARGET = 0.7
STAGE_ORDER = ("ingest", "download+annotate", "caption_sharing", "dedup", "corruption", "merge")
RUNS = {
    "img2dataset": "(a) img2dataset download()",
    "download": "(b) pairsmith ingest + download",
    "pipeline": "(c) pairsmith whole pipeline",
    "synthetic": "(d) (c) + synthetic_score",
}


def make_images(n: int, seed: int = 0) -> list[bytes]:
    """N distinct JPEGs: random crops, sizes and colour shifts of scikit-image photos."""
    from PIL import Image
    from skimage import data

    photos = [
        getattr(data, name)() for name in ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry")
    ]
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        photo = photos[i % len(photos)]
        height, width = photo.shape[:2]
        h, w = int(rng.integers(height // 3, height + 1)), int(rng.integers(width // 3, width + 1))
        y, x = int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1))
        shifted = np.clip(photo[y : y + h, x : x + w] * rng.uniform(0.7, 1.3, 3), 0, 255).astype(np.uint8)
        side = int(rng.integers(256, 801))  # the longer side
        size = (side, max(64, side * h // w)) if w >= h else (max(64, side * w // h), side)
        buf = io.BytesIO()
        Image.fromarray(shifted).resize(size, Image.BILINEAR).save(buf, "JPEG", quality=85)
        out.append(buf.getvalue())
    return out


# --- the measured runs (each in its own subprocess) --------------------------------------------


@contextlib.contextmanager
def timed(phases: dict[str, float], name: str):
    started = time.perf_counter()
    yield
    phases[name] = time.perf_counter() - started


def run_img2dataset(args: argparse.Namespace) -> dict[str, float]:
    from img2dataset import download

    phases: dict[str, float] = {}
    with timed(phases, "download"):
        download(
            url_list=args.input,
            input_format="parquet",
            url_col="url",
            caption_col="caption",
            output_format="webdataset",
            output_folder=args.out,
            processes_count=1,
            thread_count=args.threads,
            image_size=IMAGE_SIZE,
            resize_mode=RESIZE_MODE,
            resize_only_if_bigger=ONLY_IF_BIGGER,
            encode_format=ENCODE_FORMAT,
            encode_quality=ENCODE_QUALITY,
            number_sample_per_shard=args.shard_size,
            compute_hash="sha256",
            timeout=TIMEOUT_S,
            retries=RETRIES,
            disallowed_header_directives=DISALLOWED,
            distributor="multiprocessing",
            extract_exif=False,  # pairsmith's Downloader does not extract EXIF either
            user_agent_token="pairsmith",
            enable_wandb=False,
        )
    return phases


def pairsmith_config(input_path: str, threads: int, shard_size: int, ocr: str = "off", extra: tuple = ()):
    from pairsmith.schemas.config import load_config

    return load_config(
        None,
        [
            f"input.path={input_path}",
            f"input.shard_size={shard_size}",
            f"download.threads={threads}",
            "download.allow_private_addresses=true",
            "models.profile=none",
            f"annotate.ocr={ocr}",
            *extra,
        ],
    )


def whole_run_settings(args: argparse.Namespace) -> tuple[str, ...]:
    """The settings that (d) adds to (c)."""
    return ("models.synthetic=toy",) if args.worker == "synthetic" else ()


def run_pairsmith_download(args: argparse.Namespace) -> dict[str, float]:
    from pairsmith.pipelines import runner
    from pairsmith.pipelines.layout import Layout
    from pairsmith.pipelines.run_state import claim_output

    cfg, layout = pairsmith_config(args.input, args.threads, args.shard_size), Layout(args.out)
    claim_output(layout, cfg)
    phases: dict[str, float] = {}
    with timed(phases, "ingest"):
        shards = runner.ingest(layout, cfg)
    with timed(phases, "download"):
        runner.download(layout, cfg, shards)
    return phases


def run_pairsmith_pipeline(args: argparse.Namespace) -> dict[str, float]:
    from pairsmith.pipelines import runner

    cfg = pairsmith_config(args.input, args.threads, args.shard_size, args.ocr, whole_run_settings(args))
    phases: dict[str, float] = {}
    with timed(phases, "pipeline"):
        manifest = runner.run_all(cfg, args.out)
    args.stage_seconds = manifest["stage_seconds"]
    return phases


def annotator_names(args: argparse.Namespace) -> list[str]:
    """The annotators that (c) or (d) runs (building them loads no model)."""
    from pairsmith.filters import build_annotators

    cfg = pairsmith_config(args.input, args.threads, args.shard_size, args.ocr, whole_run_settings(args))
    return [type(a).__name__ for a in build_annotators(cfg.models, cfg.annotate)]


def cpu_seconds() -> float:
    """CPU seconds so far of this process (all its threads) and of its waited-for children
    (img2dataset's spawned pool and logger processes)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def worker(args: argparse.Namespace) -> None:
    """One measurement in this fresh process; prints one JSON line."""
    started = time.perf_counter()
    importlib.import_module("img2dataset" if args.worker == "img2dataset" else "pairsmith.pipelines.runner")
    import_s = time.perf_counter() - started
    run = {
        "img2dataset": run_img2dataset,
        "download": run_pairsmith_download,
        "pipeline": run_pairsmith_pipeline,
        "synthetic": run_pairsmith_pipeline,
    }
    cpu_before = cpu_seconds()
    phases = run[args.worker](args)
    cpu_s = cpu_seconds() - cpu_before
    # Largest single process of the tree: this one or a waited-for child (img2dataset's spawned pool).
    peak_kb = max(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
    )
    result = {"import_s": import_s, "phases": phases, "cpu_s": cpu_s, "peak_mb": peak_kb / 1024}
    if args.worker in ("pipeline", "synthetic"):
        result["annotators"] = annotator_names(args)
        result["stage_seconds"] = args.stage_seconds
    print(json.dumps(result))


# --- the parent: serve, launch, watch memory, check the outputs -----------------------------------


def tree_rss_mb(root: int) -> float:
    """Resident memory of `root` and all its descendants now, summed (Linux /proc), in MB."""
    parents, rss = {}, {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended meanwhile
        parents[int(entry)], rss[int(entry)] = int(fields[1]), int(fields[21])
    tree, frontier = set(), [root]
    while frontier:
        pid = frontier.pop()
        tree.add(pid)
        frontier += [child for child, parent in parents.items() if parent == pid and child not in tree]
    return sum(rss.get(pid, 0) for pid in tree) * os.sysconf("SC_PAGE_SIZE") / 2**20


def measure(name: str, input_path: str, out: str, args: argparse.Namespace) -> dict:
    """Run one measurement in a fresh subprocess, sampling its process tree's memory meanwhile."""
    cmd = [sys.executable, __file__, "--worker", name, "--input", input_path, "--out", out]
    cmd += ["--threads", str(args.threads), "--shard-size", str(args.shard_size), "--ocr", args.ocr]
    log = Path(f"{out}.log")
    started = time.perf_counter()
    tree_peak = 0.0
    with open(log, "w") as err, subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True) as proc:
        while proc.poll() is None:
            tree_peak = max(tree_peak, tree_rss_mb(proc.pid))
            time.sleep(0.2)
        stdout = proc.stdout.read()
    total_s = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{name} failed (exit {proc.returncode}):\n{log.read_text()[-3000:]}")
    result = json.loads(stdout.strip().splitlines()[-1])
    return result | {"work_s": sum(result["phases"].values()), "total_s": total_s, "tree_mb": tree_peak}


def outputs(name: str, out: str) -> pa.Table:
    """url, status, sha256 of every output row of one run."""
    cols = ["url", "status", "sha256"]
    if name == "img2dataset":
        files = sorted(Path(out).glob("*.parquet"))
        return pa.concat_tables(pq.read_table(p, columns=cols) for p in files)
    if name == "pipeline":
        return pa.concat_tables(
            pq.read_table(p, columns=cols) for p in sorted(Path(out, "data").glob("*.parquet"))
        )
    tables = []  # (b): the urls are in the input shards, the results in the download shards
    for path in sorted(Path(out, "_work", "download").glob("*.parquet")):
        url = pq.read_table(Path(out, "_work", "input", path.name), columns=["url"]).column("url")
        tables.append(pq.read_table(path, columns=["status", "sha256"]).append_column("url", url))
    return pa.concat_tables(tables).select(cols)


def img2dataset_shards_s(out: str) -> float:
    """Seconds from the first shard's start to the last shard's end, from img2dataset's stats files:
    its Downloader at work, without the process pool's start-up and the input conversion."""
    stats = [json.loads(p.read_text()) for p in Path(out).glob("*_stats.json")]
    return max(s["end_time"] for s in stats) - min(s["start_time"] for s in stats)


def check(name: str, out: str, expected: dict[str, str]) -> dict[str, int]:
    """Rows with status success, and those of them whose sha256 matches the bytes served."""
    rows = outputs(name, out).to_pylist()
    ok = [r for r in rows if r["status"] == "success"]
    intact = sum(expected.get(r["url"]) == r["sha256"] for r in ok)
    if len(rows) != len(expected):
        print(f"warning: {name} wrote {len(rows)} rows for {len(expected)} URLs")
    return {"success": len(ok), "intact": intact}


def measure_and_check(name: str, input_path: str, out: str, args, expected: dict[str, str]) -> dict:
    result = measure(name, input_path, out, args) | check(name, out, expected)
    if name == "img2dataset":
        result["shards_s"] = img2dataset_shards_s(out)
    shutil.rmtree(out)
    return result


def check_defaults(threads: int, shard_size: int) -> None:
    """Fail if pairsmith's download defaults moved away from what (a) passes to img2dataset."""
    d = pairsmith_config("unused", threads, shard_size).download
    ours = (
        IMAGE_SIZE,
        RESIZE_MODE,
        ONLY_IF_BIGGER,
        ENCODE_FORMAT,
        ENCODE_QUALITY,
        TIMEOUT_S,
        RETRIES,
        DISALLOWED,
    )
    theirs = (
        d.image_size,
        d.resize_mode,
        d.resize_only_if_bigger,
        d.encode_format,
        d.encode_quality,
        d.timeout_s,
        d.retries,
        d.disallowed_header_directives,
    )
    if ours != theirs:
        raise SystemExit(f"pairsmith's download defaults changed: {theirs}; update this benchmark ({ours})")


def report(tries: dict[str, list[dict]], args: argparse.Namespace) -> None:
    n = args.n
    results = {name: min(runs, key=lambda r: r["work_s"]) for name, runs in tries.items()}
    print(f"\n{n} images from 127.0.0.1, {args.threads} threads, shards of {args.shard_size}, 1 process each")
    print(f"each run: the fastest of {args.repeat}. load average now: {os.getloadavg()[0]:.1f}")
    head = f"{'run':<36}{'samples/s':>10}{'work s':>8}{'CPU s':>7}{'cores':>6}{'total s':>9}{'success':>9}"
    print(head + f"{'intact':>8}{'peak MB':>9}{'tree MB':>9}")
    for name, r in results.items():
        print(
            f"{RUNS[name]:<36}{n / r['work_s']:>10.1f}{r['work_s']:>8.2f}{r['cpu_s']:>7.1f}"
            f"{r['cpu_s'] / r['work_s']:>6.2f}{r['total_s']:>9.2f}{r['success']:>9}{r['intact']:>8}"
            f"{r['peak_mb']:>9.0f}{r['tree_mb']:>9.0f}"
        )
        if len(tries[name]) > 1:
            each = ", ".join(f"{t['work_s']:.2f}" for t in tries[name])
            print(f"{'    work s of each run':<36}{'':>10}  {each}")
        if name == "img2dataset":
            seconds = r["shards_s"]
            print(f"{'    its shards alone (stats files)':<36}{n / seconds:>10.1f}{seconds:>8.2f}")
        if name == "download":
            for phase in ("ingest", "download"):
                seconds = r["phases"][phase]
                print(f"{'    ' + phase + ' stage alone':<36}{n / seconds:>10.1f}{seconds:>8.2f}")
        if name in ("pipeline", "synthetic"):
            ran = r["stage_seconds"]  # the manifest's `stage_seconds`, printed in the order they run
            for stage in sorted(ran, key=lambda k: STAGE_ORDER.index(k) if k in STAGE_ORDER else 99):
                print(f"{'    ' + stage:<36}{'':>10}{ran[stage]:>8.2f}")
    a, b, c, d = (results[k]["work_s"] for k in RUNS)
    ratio = a / b
    verdict = "PASS" if ratio >= TARGET else "FAIL"
    print(f"\nb/a = {ratio:.2f}  (b = ingest + download; target >= {TARGET}: {verdict})")
    print(
        f"b/a = {a / results['download']['phases']['download']:.2f}  (download stage alone, ingest not counted)"
    )
    steady = results["img2dataset"]["shards_s"] / results["download"]["phases"]["download"]
    print(f"steady state = {steady:.2f}  (download stage alone vs img2dataset's shards alone, no start-up)")
    annotators = ", ".join(results["pipeline"]["annotators"])
    verdict = "PASS" if a / c >= PIPELINE_TARGET else "FAIL"
    print(
        f"c/a = {a / c:.2f}  (whole pipeline, annotate.ocr={args.ocr}; target >= {PIPELINE_TARGET}: "
        f"{verdict}; annotators: {annotators})"
    )
    print(f"d/c = {d / c:.2f}  (the whole pipeline's time with synthetic_score on, against without)")
    print(
        "\nsamples/s = n / work s. work s: the measured calls only; CPU s: their CPU time, every thread "
        f"and child process (cores = CPU s / work s, of {os.cpu_count()} here); total s: the whole subprocess "
        "(start-up and imports too).\nintact: success rows whose sha256 equals the served bytes'. "
        "peak MB: largest single process (ru_maxrss); tree MB: summed RSS of the process tree, "
        "sampled every 0.2 s.\n(a)'s work outside its shards is img2dataset's start-up inside download(): a "
        "spawned pool process and logger process\n(each importing img2dataset) and the parquet-to-arrow input "
        "conversion; a fixed cost that weighs less as n grows."
    )
    if any(r["success"] != n or r["intact"] != n for runs in tries.values() for r in runs):
        raise SystemExit("FAILED: not every image came back intact as success")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=2000, help="number of images (default 2000)")
    parser.add_argument("--threads", type=int, default=16, help="download threads, both tools (default 16)")
    parser.add_argument(
        "--shard-size", type=int, default=500, help="rows per shard, both tools (default 500)"
    )
    parser.add_argument(
        "--repeat", type=int, default=2, help="runs of each of (a)-(d); the fastest counts (default 2)"
    )
    parser.add_argument(
        "--ocr", choices=["off", "gated", "always"], default="off", help="annotate.ocr for (c) (default off)"
    )
    parser.add_argument("--worker", choices=list(RUNS), help=argparse.SUPPRESS)
    parser.add_argument("--input", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return

    from pairsmith.flows.demo_site import LocalImageServer, Route

    check_defaults(args.threads, args.shard_size)
    started = time.perf_counter()
    images = make_images(args.n)
    digests = [hashlib.sha256(b).hexdigest() for b in images]
    assert len(set(digests)) == args.n, "the generated images are not all distinct"
    print(
        f"generated {args.n} distinct JPEGs ({sum(map(len, images)) / len(images) / 1024:.0f} KB mean) "
        f"in {time.perf_counter() - started:.1f} s"
    )
    jpeg = (("Content-Type", "image/jpeg"),)
    routes = {f"/i/{i}.jpg": Route(body=body, headers=jpeg) for i, body in enumerate(images)}
    tries: dict[str, list[dict]] = {name: [] for name in RUNS}
    with tempfile.TemporaryDirectory() as folder, LocalImageServer(routes) as server:
        urls = [server.url(f"/i/{i}.jpg") for i in range(args.n)]
        input_path = f"{folder}/pairs.parquet"
        pq.write_table(
            pa.table({"url": urls, "caption": [f"photo number {i}" for i in range(args.n)]}), input_path
        )
        expected = dict(zip(urls, digests, strict=True))
        for name, i in [(name, i) for i in range(args.repeat) for name in RUNS]:
            print(f"running {RUNS[name]} ({i + 1}) ...", flush=True)
            tries[name].append(measure_and_check(name, input_path, f"{folder}/{name}-{i}", args, expected))
    report(tries, args)


if __name__ == "__main__":
    main()
