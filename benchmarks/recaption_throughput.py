"""Recaptioning cost on the CPU: captions per second of the toy captioner at batch sizes 1, 8 and 32,
and the share of the annotate pass that recaptioning takes.

    python benchmarks/recaption_throughput.py [--threads 2] [--images 128] [--json PATH]

1. Throughput: fresh toy-world scenes served as the pipeline serves them (96-256 px JPEG), preset
   `dense`, the default generation settings (PixArt-alpha's temperature 0.2, sampling seeded per
   batch), through `TransformersCaptioner` (the Auto-class path of every captioner); one warm-up call
   per batch size, then the median of `--repeats` timed calls over all images.
2. Share of annotate: the demo site's images (photos and toy scenes, decoded once) through every
   annotator of the `toy` profile, once with the toy captioner and once without
   (`recaption.model=none`), in the same process; the time of each annotator is summed over batches
   of `annotate.batch_size` (64), as in `benchmarks/annotate_cost.py`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: tools/

import torch  # noqa: E402
from annotate_cost import demo_images, time_annotators  # noqa: E402

from pairsmith.captioners.annotator import build_captioner  # noqa: E402
from pairsmith.filters import build_annotators  # noqa: E402
from pairsmith.schemas.config import load_config  # noqa: E402
from tools.train_toy_captioner import heldout_scenes  # noqa: E402


def throughput(n_images: int, batch_sizes: list[int], repeats: int) -> list[dict]:
    scenes = heldout_scenes(n_images, seed=50_000)
    images, alts = [s[0] for s in scenes], [s[1] for s in scenes]
    rows = []
    for batch_size in batch_sizes:
        cfg = load_config(None, [f"recaption.batch_size={batch_size}"]).recaption
        captioner = build_captioner("toy", cfg).load()
        captioner.caption(images[:batch_size], alts[:batch_size])  # warm-up
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            captions = captioner.caption(images, alts)
            times.append(time.perf_counter() - started)
        seconds = statistics.median(times)
        rows.append(
            {
                "batch_size": batch_size,
                "captions_per_s": round(n_images / seconds, 1),
                "ms_per_caption": round(1000 * seconds / n_images, 2),
                "words_per_caption": round(sum(len(c.split()) for c in captions) / n_images, 1),
            }
        )
    return rows


def annotate_pass(recaption_model: str, images, captions, batch_size: int) -> dict[str, float]:
    """Seconds per annotator of the toy profile over the demo images, plus `total`."""
    cfg = load_config(None, ["models.profile=toy", f"recaption.model={recaption_model}"])
    annotators = build_annotators(cfg.models, cfg.annotate, cfg.recaption)
    for annotator in annotators:
        annotator.setup()
    return time_annotators(annotators, images, captions, batch_size)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--images", type=int, default=128, help="scenes for the throughput part")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = throughput(args.images, [1, 8, 32], args.repeats)
    print(f"toy captioner, CPU, {args.threads} threads, {args.images} scenes, preset dense, temperature 0.2")
    print(f"{'batch':>6}{'captions/s':>12}{'ms/caption':>12}{'words':>7}")
    for r in rows:
        print(
            f"{r['batch_size']:>6}{r['captions_per_s']:>12.1f}{r['ms_per_caption']:>12.2f}{r['words_per_caption']:>7.1f}"
        )
    images, captions = demo_images()
    batch = load_config().annotate.batch_size
    with_recaption = annotate_pass("toy", images, captions, batch)
    without = annotate_pass("none", images, captions, batch)
    n = len(images)
    share = with_recaption["Recaption"] / with_recaption["total"]
    print(f"\nannotate pass, {n} demo images, profile toy, batch {batch}")
    print(f"  with the toy captioner:    {1000 * with_recaption['total'] / n:8.2f} ms/image")
    print(f"  without (recaption off):   {1000 * without['total'] / n:8.2f} ms/image")
    print(
        f"  Recaption annotator:       {1000 * with_recaption['Recaption'] / n:8.2f} ms/image = {share:.1%} of the pass"
    )
    print(f"  CaptionNouns (always on):  {1000 * with_recaption['CaptionNouns'] / n:8.2f} ms/image")
    if args.json:
        result = {
            "threads": args.threads,
            "throughput": rows,
            "annotate": {
                "images": n,
                "with_recaption_ms_per_image": round(1000 * with_recaption["total"] / n, 2),
                "without_recaption_ms_per_image": round(1000 * without["total"] / n, 2),
                "recaption_ms_per_image": round(1000 * with_recaption["Recaption"] / n, 2),
                "recaption_share": round(share, 4),
                "per_annotator_ms_per_image": {k: round(1000 * v / n, 2) for k, v in with_recaption.items()},
            },
        }
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
