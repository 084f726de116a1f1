"""GPU readiness in one run: CLIP ViT-B/32 image embeddings per second at batch 256, and the whole
annotate pass per image (the toy profile's annotators), each batched vs a naive loop (batch 1).

    python benchmarks/gpu_throughput.py [--device auto|cpu|cuda] [--batch 256] [--n 1024]
        [--naive-n 128] [--annotate-n 512] [--precision auto] [--threads 0]
    CPU smoke run (CI, tests/test_gpu_benchmark.py): --device cpu --batch 4 --n 16

CLIP: open_clip's ViT-B-32 with random weights (`pretrained=None`: the real model's compute, nothing
downloaded), on real photos (scikit-image's, rotated), placed and run as pairsmith's `ClipEmbedder`
places and runs it (`models.device`, fp16 autocast on CUDA per `models.precision`; always fp32 on the
CPU). Three rates: the model alone on preprocessed tensors already on the device; `embed_images`
(preprocess on a thread pool, host-to-device copy, forward, normalised fp32 vectors back); the naive
loop (one image at a time: preprocess, copy, fp32 forward under `torch.no_grad`). Warm-up batches run
first and every timing ends with `torch.cuda.synchronize()` on a GPU. LAION's anchor
(../shared/ANCHORS.md): 1,800 samples/s per A100 for ViT-B/32.

Annotate pass: `build_annotators` of the toy profile (offline) with `models.device` and
`recaption.device` set to `--device`, over `--annotate-n` of the demo site's decoded images (spread over
its photos and toy scenes, shorter side at most 512 as the download stage stores them),
timed per annotator as `benchmarks/annotate_cost.py` does, the same images batched at `--batch` and at
batch 1. RapidOCR stays on the CPU on every machine (`filters/text_in_image.py`).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import open_clip  # noqa: E402
import torch  # noqa: E402
from annotate_cost import demo_images, time_annotators  # noqa: E402
from PIL import Image  # noqa: E402

from pairsmith.filters import build_annotators  # noqa: E402
from pairsmith.filters.clip_models import ClipEmbedder  # noqa: E402
from pairsmith.filters.devices import autocast, batch_size_for, is_cuda, resolve_device  # noqa: E402
from pairsmith.schemas.config import load_config  # noqa: E402

LAION_B32_A100 = 1800  # samples/s per A100, ViT-B/32 (LAION-5B paper; ../shared/ANCHORS.md)


def sync(device: str) -> None:
    if is_cuda(device):
        torch.cuda.synchronize(torch.device(device))


def photos(n: int) -> list[Image.Image]:
    from skimage import data

    base = [
        Image.fromarray(getattr(data, k)()).convert("RGB")
        for k in ("astronaut", "coffee", "chelsea", "rocket")
    ]
    return [base[i % len(base)].rotate(i % 360) for i in range(n)]


def random_b32(device: str, precision: str) -> ClipEmbedder:
    """A `ClipEmbedder` holding open_clip's ViT-B-32 with random weights (no checkpoint, no download)."""
    model, _, preprocess = open_clip.create_model_and_transforms("ViT-B-32", pretrained=None, device=device)
    embedder = ClipEmbedder("ViT-B-32", device, precision)
    embedder.model, embedder.preprocess = model.eval(), preprocess
    embedder.tokenizer, embedder.dim = (
        open_clip.get_tokenizer("ViT-B-32"),
        int(model.text_projection.shape[-1]),
    )
    return embedder


def timed(device: str, fn) -> float:
    sync(device)
    started = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - started


def clip_rates(embedder: ClipEmbedder, pics: list[Image.Image], batch: int, naive_n: int, pool) -> dict:
    device, model = embedder.device, embedder.model
    n = len(pics)
    pixels = embedder.pixels(pics[:batch], pool)  # one batch, reused: the model alone

    @torch.inference_mode()
    def model_only(count=n):
        with autocast(device, embedder.precision):
            for start in range(0, count, batch):
                model.encode_image(pixels[: min(batch, count - start)])

    def pipeline():
        for start in range(0, n, batch):
            embedder.embed_images(pics[start : start + batch], pool)

    @torch.no_grad()
    def naive(items):
        for pic in items:
            model.encode_image(embedder.preprocess(pic).unsqueeze(0).to(device)).cpu()

    model_only(batch), embedder.embed_images(pics[:batch], pool), naive(pics[:1])  # warm-up
    rates = {
        "naive": naive_n / timed(device, lambda: naive(pics[:naive_n])),
        "model": n / timed(device, model_only),
        "embed": n / timed(device, pipeline),
    }
    return rates


def as_stored(image: Image.Image, side: int = 512) -> Image.Image:
    """The image as the download stage stores it by default (img2dataset keep_ratio, shorter side 512,
    only if bigger)."""
    if min(image.size) <= side:
        return image
    scale = side / min(image.size)
    return image.resize((round(image.width * scale), round(image.height * scale)), Image.BICUBIC)


def demo_sample(n: int) -> tuple[list[Image.Image], list[str]]:
    """`n` of the demo site's pairs spread evenly over all of them (photos, toy scenes, odd sizes; cycled
    past the ~190 there are), images as stored."""
    images, captions = demo_images()
    picks = [(i * len(images)) // n if n <= len(images) else i % len(images) for i in range(n)]
    return [as_stored(images[i]) for i in picks], [captions[i] for i in picks]


def annotate_rates(device: str, precision: str, n: int, batch: int, pool) -> tuple[dict, dict, int]:
    """Seconds per annotator over the same `n` demo images, at `batch` and at batch 1."""
    cfg = load_config(
        None,
        [
            "models.profile=toy",
            f"models.device={device}",
            f"recaption.device={device}",
            f"models.precision={precision}",
        ],
    )
    annotators = build_annotators(cfg.models, cfg.annotate, cfg.recaption)
    for annotator in annotators:
        annotator.setup()
    images, captions = demo_sample(n)
    warm = min(batch, n) if is_cuda(resolve_device(device)) else 1  # a GPU's first batch loads kernels
    time_annotators(annotators, images[:warm], captions[:warm], batch, pool)
    batched = time_annotators(annotators, images, captions, batch, pool)
    naive = time_annotators(annotators, images, captions, 1, pool)
    return batched, naive, len(annotators)


def describe(device: str) -> str:
    if is_cuda(device):
        free, total = torch.cuda.mem_get_info(torch.device(device))
        name = torch.cuda.get_device_name(torch.device(device))
        return f"{device} ({name}, {free / 2**30:.0f} of {total / 2**30:.0f} GiB free)"
    return f"cpu ({torch.get_num_threads()} torch threads, {os.cpu_count()} cores)"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (models.device)")
    parser.add_argument("--batch", type=int, default=256, help="images per batch (CLIP and annotate pass)")
    parser.add_argument("--n", type=int, default=1024, help="images timed per batched method")
    parser.add_argument(
        "--naive-n",
        type=int,
        default=None,
        help="images of the naive CLIP loop (default: min(n, 128))",
    )
    parser.add_argument(
        "--annotate-n", type=int, default=None, help="demo images of the annotate pass (default: min(n, 512))"
    )
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "fp16", "bf16"])
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads; 0: torch's default")
    parser.add_argument("--skip-annotate", action="store_true", help="CLIP only")
    args = parser.parse_args(argv)
    began = time.perf_counter()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    batch, n = args.batch, max(args.n, args.batch)
    naive_n = min(n, args.naive_n or 128)
    pool = ThreadPoolExecutor(os.cpu_count() or 1, thread_name_prefix="images")
    print(
        f"device {describe(device)}, precision {args.precision}, torch {torch.__version__}, open_clip {open_clip.__version__}"
    )
    print(
        f"annotate.gpu_batch_size=auto on this device: {batch_size_for(device, 64)} (annotate.batch_size=64)"
    )

    rates = clip_rates(random_b32(device, args.precision), photos(n), batch, naive_n, pool)
    print(
        f"\nCLIP ViT-B-32 image embeddings (random weights), batch {batch}, {n} images; naive loop {naive_n}"
    )
    print(f"{'method':<48}{'images/s':>10}{'x naive':>9}")
    rows = [
        ("naive loop (batch 1, fp32, preprocess inline)", rates["naive"]),
        (f"model only, batch {batch} (tensors on device)", rates["model"]),
        (f"pairsmith embed_images, batch {batch}", rates["embed"]),
    ]
    for label, rate in rows:
        print(f"{label:<48}{rate:>10.1f}{rate / rates['naive']:>9.2f}")
    print(f"{'LAION anchor: ViT-B/32 per A100 (LAION-5B)':<48}{LAION_B32_A100:>10.1f}")
    print(f"embed_images / LAION A100 anchor = {rates['embed'] / LAION_B32_A100:.3f}")

    if not args.skip_annotate:
        annotate_table(device, args, n, batch, pool)
    print(f"\ndone in {time.perf_counter() - began:.1f} s (imports not counted)")


def annotate_table(device: str, args: argparse.Namespace, n: int, batch: int, pool) -> None:
    m = min(n, args.annotate_n or 512)
    batched, naive, count = annotate_rates(device, args.precision, m, batch, pool)
    total, naive_total = batched.pop("total"), naive.pop("total")
    print(
        f"\nannotate pass, toy profile ({count} annotators), the same {m} demo images at batch {batch} and 1"
    )
    print(f"{'annotator':<20}{'ms/image':>10}{'naive':>10}{'x naive':>9}")
    for name, seconds in sorted(batched.items(), key=lambda kv: -kv[1]):
        ours, theirs = 1000 * seconds / m, 1000 * naive[name] / m
        print(f"{name:<20}{ours:>10.2f}{theirs:>10.2f}{theirs / ours if ours else 0:>9.2f}")
    ours, theirs = 1000 * total / m, 1000 * naive_total / m
    print(f"{'whole annotate pass':<20}{ours:>10.2f}{theirs:>10.2f}{theirs / ours:>9.2f}")
    print(f"whole annotate pass: {1000 / ours:.1f} images/s batched, {1000 / theirs:.1f} images/s naive")


if __name__ == "__main__":
    main()
