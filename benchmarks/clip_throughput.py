"""CPU images/s of CLIP ViT-B-32 image embedding: pairsmith's batched embedder vs a naive loop,
and end to end (files in, embeddings out) vs clip-retrieval's `clip inference`.

    python benchmarks/clip_throughput.py [--n 256] [--threads 2] [--batch-sizes 1 8 32 64]
        [--clip-retrieval /path/to/venv/bin/clip-retrieval]

Random weights (the real model's compute; no checkpoint can be fetched here), written into a
throw-away Hugging Face cache as `laion/CLIP-ViT-B-32-laion2B-s34B-b79K`, so both tools load
"ViT-B-32/laion2b_s34b_b79k" by name, offline. In-memory part: the same PIL images go through
open_clip's preprocess and `encode_image`; the naive loop embeds one image at a time under
`torch.no_grad`, pairsmith's `ClipEmbedder` a batch under `torch.inference_mode`.
Targets: >= 3x the naive loop; >= 1.0x clip-retrieval (installed in its own virtualenv:
`python -m venv cr && cr/bin/pip install torch==2.14.1 torchvision==0.29.1 clip-retrieval`).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

# A throw-away Hugging Face cache, set before huggingface_hub is imported (it reads HF_HOME once).
HF_HOME = Path(tempfile.mkdtemp(prefix="pairsmith-bench-hf-"))
os.environ["HF_HOME"], os.environ["HF_HUB_OFFLINE"] = str(HF_HOME), "1"

import numpy as np  # noqa: E402
import open_clip  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from pairsmith.filters.clip_models import ClipEmbedder  # noqa: E402


def images(n: int) -> list[Image.Image]:
    from skimage import data

    photos = [
        Image.fromarray(getattr(data, k)()).convert("RGB")
        for k in ("astronaut", "coffee", "chelsea", "rocket")
    ]
    return [photos[i % len(photos)].rotate(i % 360) for i in range(n)]


SPEC = "ViT-B-32/laion2b_s34b_b79k"
REPO = "laion/CLIP-ViT-B-32-laion2B-s34B-b79K"


def fake_hf_cache(home: Path) -> None:
    """A Hugging Face cache holding random ViT-B-32 weights under LAION's repo name."""
    snapshot = home / "hub" / f"models--{REPO.replace('/', '--')}" / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("0" * 40)
    torch.save(open_clip.create_model("ViT-B-32").state_dict(), snapshot / "open_clip_pytorch_model.bin")


def end_to_end_pairsmith(folder: Path, batch: int) -> float:
    """Files in, embeddings out, model load included (what `clip inference` does)."""
    started = time.perf_counter()
    embedder = ClipEmbedder(SPEC, device="cpu").load()
    files = sorted(folder.glob("*.jpg"))
    for start in range(0, len(files), batch):
        embedder.embed_images([Image.open(f).convert("RGB") for f in files[start : start + batch]])
    return len(files) / (time.perf_counter() - started)


def end_to_end_clip_retrieval(exe: str, folder: Path, out: Path, batch: int, threads: int) -> float:
    started = time.perf_counter()
    cmd = [
        exe,
        "inference",
        "--input_dataset",
        str(folder),
        "--output_folder",
        str(out),
        "--input_format",
        "files",
    ]
    cmd += [
        "--clip_model",
        f"open_clip:{SPEC}",
        "--batch_size",
        str(batch),
        "--num_prepro_workers",
        str(threads),
    ]
    cmd += ["--enable_text", "False", "--enable_metadata", "False", "--enable_wandb", "False"]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"clip-retrieval failed:\n{done.stderr[-3000:]}")
    return len(list(folder.glob("*.jpg"))) / (time.perf_counter() - started)


def naive(embedder: ClipEmbedder, pics: list[Image.Image]) -> float:
    started = time.perf_counter()
    with torch.no_grad():
        for pic in pics:
            embedder.model.encode_image(embedder.preprocess(pic).unsqueeze(0))
    return len(pics) / (time.perf_counter() - started)


def batched(embedder: ClipEmbedder, pics: list[Image.Image], batch: int) -> float:
    started = time.perf_counter()
    for start in range(0, len(pics), batch):
        embedder.embed_images(pics[start : start + batch])
    return len(pics) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 32, 64])
    parser.add_argument("--clip-retrieval", help="path to a clip-retrieval executable (its own venv)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    try:
        fake_hf_cache(HF_HOME)
        run(args, HF_HOME)
    finally:
        shutil.rmtree(HF_HOME, ignore_errors=True)


def run(args: argparse.Namespace, tmp: Path) -> None:
    embedder, pics = ClipEmbedder(SPEC, device="cpu").load(), images(args.n)
    batched(embedder, pics[:8], 8)  # warm-up
    base = naive(embedder, pics[: max(16, args.n // 4)])
    print(f"ViT-B-32 image embedding, CPU, {args.threads} threads, {args.n} images")
    print(f"{'method':<28}{'images/s':>10}{'x naive':>9}")
    print(f"{'naive loop (1 at a time)':<28}{base:>10.1f}{1.0:>9.2f}")
    for size in args.batch_sizes:
        rate = batched(embedder, pics, size)
        print(f"{f'pairsmith batch {size}':<28}{rate:>10.1f}{rate / base:>9.2f}")
    folder = tmp / "images"
    folder.mkdir()
    for i, pic in enumerate(pics):
        pic.save(folder / f"{i:05d}.jpg", quality=90)
    ours = end_to_end_pairsmith(folder, 64)
    print(f"\nend to end, {args.n} jpg files, batch 64, model load included")
    print(f"{'pairsmith ClipEmbedder':<28}{ours:>10.1f}")
    if args.clip_retrieval:
        theirs = end_to_end_clip_retrieval(args.clip_retrieval, folder, tmp / "cr-out", 64, args.threads)
        print(f"{'clip-retrieval inference':<28}{theirs:>10.1f}")
        print(f"pairsmith / clip-retrieval = {ours / theirs:.2f}   (target >= 1.0)")
    print(f"torch {torch.__version__}, open_clip {open_clip.__version__}, numpy {np.__version__}")


if __name__ == "__main__":
    main()
