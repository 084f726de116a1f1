"""`benchmarks/gpu_throughput.py` runs on the CPU too (CI): a tiny batch, every line it promises."""

import os
import subprocess
import sys
from pathlib import Path

BENCHMARK = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_throughput.py"


def test_gpu_benchmark_runs_on_the_cpu_with_a_tiny_batch():
    env = os.environ | {"HF_HUB_OFFLINE": "1", "NO_ALBUMENTATIONS_UPDATE": "1"}
    cmd = [sys.executable, str(BENCHMARK), "--device", "cpu", "--batch", "2", "--n", "4", "--threads", "2"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    for line in (
        "device cpu",
        "CLIP ViT-B-32 image embeddings (random weights), batch 2, 4 images",
        "naive loop (batch 1, fp32, preprocess inline)",
        "model only, batch 2",
        "pairsmith embed_images, batch 2",
        "LAION anchor: ViT-B/32 per A100 (LAION-5B)",
        "annotate pass, toy profile",
        "ClipScore",
        "whole annotate pass",
        "images/s batched",
        "done in",
    ):
        assert line in out, f"{line!r} missing from:\n{out}"
