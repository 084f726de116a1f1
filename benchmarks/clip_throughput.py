"""CPU images/s of CLIP ViT-B-32 image embedding: pairsmith's batched embedder vs a naive loop.

    python benchmarks/clip_throughput.py [--n 128] [--threads 2] [--batch-sizes 1 8 32 64]

Random weights (the real model's compute; no checkpoint is needed). Both paths decode-free: the
same PIL images go through open_clip's preprocess and `encode_image`. The naive loop embeds one
image at a time under `torch.no_grad`; pairsmith's `ClipEmbedder` stacks a batch and runs it under
`torch.inference_mode`. Target: >= 3x the naive loop.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import open_clip
import torch
from PIL import Image

from pairsmith.filters.clip_models import ClipEmbedder


def images(n: int) -> list[Image.Image]:
    from skimage import data

    photos = [
        Image.fromarray(getattr(data, k)()).convert("RGB")
        for k in ("astronaut", "coffee", "chelsea", "rocket")
    ]
    return [photos[i % len(photos)].rotate(i % 360) for i in range(n)]


def random_b32() -> ClipEmbedder:
    """A ClipEmbedder around ViT-B-32 with random weights (same compute as the real model)."""
    embedder = ClipEmbedder("ViT-B-32", device="cpu")
    model, _, preprocess = open_clip.create_model_and_transforms("ViT-B-32")
    embedder.model, embedder.preprocess = model.eval(), preprocess
    embedder.tokenizer, embedder.dim = open_clip.get_tokenizer("ViT-B-32"), 512
    return embedder


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
    parser.add_argument("--n", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 32, 64])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    embedder, pics = random_b32(), images(args.n)
    batched(embedder, pics[:8], 8)  # warm-up
    base = naive(embedder, pics[: max(16, args.n // 4)])
    print(f"ViT-B-32 image embedding, CPU, {args.threads} threads, {args.n} images")
    print(f"{'method':<28}{'images/s':>10}{'x naive':>9}")
    print(f"{'naive loop (1 at a time)':<28}{base:>10.1f}{1.0:>9.2f}")
    for size in args.batch_sizes:
        rate = batched(embedder, pics, size)
        print(f"{f'pairsmith batch {size}':<28}{rate:>10.1f}{rate / base:>9.2f}")
    print(f"torch {torch.__version__}, open_clip {open_clip.__version__}, numpy {np.__version__}")


if __name__ == "__main__":
    main()
