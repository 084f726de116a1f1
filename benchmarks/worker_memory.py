"""Peak memory of a worker process whose DoFn threads share one copy of each model, or not.

    python benchmarks/worker_memory.py [--pairs 120]

Runs the toy pipeline (every toy model: CLIP, NSFW and aesthetic heads, watermark, synthetic-image
detector, recaptioner) on the demo site's pairs, served from 127.0.0.1, on DirectRunner in one process
with 1 and with 4 DoFn threads (`--direct_running_mode=multi_threading`), each in a fresh process,
and prints its peak RSS. "shared" is pairsmith (`pipelines/shared_models.py`: one set of models per
process); "per DoFn" replaces the sharing by a load per DoFn instance, as before. The ratio that
matters: 4 threads / 1 thread, per column.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading

for _name in ("NO_ALBUMENTATIONS_UPDATE", "HF_HUB_OFFLINE"):
    os.environ.setdefault(_name, "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


def worker(args: argparse.Namespace) -> None:
    """One run in this process; prints its peak RSS and how often the annotators were set up."""
    from pairsmith.pipelines import shared_models, stages
    from pairsmith.pipelines.runner import run_all
    from pairsmith.schemas.config import load_config

    if not args.share:
        # one load at a time, as `shared` does: transformers' loads are not thread-safe
        loading = threading.Lock()

        def own_copy(key, make):  # every DoFn instance loads its own models
            with loading:
                return make()

        stages.shared = own_copy
    threads = json.dumps([f"--direct_num_workers={args.threads}", "--direct_running_mode=multi_threading"])
    settings = [f"input.path={args.input}", "input.shard_size=8", "runner.shard_group=1"]
    settings += ["download.allow_private_addresses=true", "models.profile=toy", f"runner.options={threads}"]
    run_all(load_config(None, settings), args.out)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"peak_mb": peak_mb, "set_ups": sum(shared_models.asked.values())}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pairs", type=int, default=120, help="demo pairs (default 120)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--share", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--input", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return

    from pairsmith.flows.demo_site import LocalImageServer, build_demo_site, write_pairs_parquet

    routes, pairs = build_demo_site(n_pairs=args.pairs, seed=1)
    results = {}
    with tempfile.TemporaryDirectory() as folder, LocalImageServer(dict(routes)) as server:
        write_pairs_parquet(pairs, server.base_url, f"{folder}/pairs.parquet")
        for share in (1, 0):
            for threads in (1, 4):
                out = f"{folder}/out-{share}-{threads}"
                cmd = [sys.executable, __file__, "--worker", "--threads", str(threads), "--share", str(share)]
                cmd += ["--input", f"{folder}/pairs.parquet", "--out", out]
                done = subprocess.run(cmd, capture_output=True, text=True, check=False)
                if done.returncode != 0 or not done.stdout.strip():
                    tail = done.stderr.replace("\r", "\n")[-2000:]
                    print(f"share={share} threads={threads} failed (exit {done.returncode}):\n{tail}")
                    results[(share, threads)] = {"peak_mb": float("nan"), "set_ups": 0}
                    continue
                results[(share, threads)] = json.loads(done.stdout.strip().splitlines()[-1])
                print(f"share={share} threads={threads}: {results[(share, threads)]}", flush=True)
    print(f"\ntoy pipeline, {len(pairs)} pairs, one DirectRunner process; peak RSS (MB) of that process")
    print(f"{'':<22}{'1 thread':>10}{'4 threads':>11}{'4 / 1':>8}")
    for share, name in ((1, "shared (pairsmith)"), (0, "per DoFn (before)")):
        one, four = results[(share, 1)]["peak_mb"], results[(share, 4)]["peak_mb"]
        print(f"{name:<22}{one:>10.0f}{four:>11.0f}{four / one:>8.2f}")
    print(f"\nDoFn set-ups with 4 threads: {results[(1, 4)]['set_ups']} (one load of each model when shared)")


if __name__ == "__main__":
    main()
