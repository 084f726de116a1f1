"""Milliseconds per image of every annotator, and of the whole annotate pass, on the demo images.

    python benchmarks/annotate_cost.py [--profile toy] [--ocr gated] [--batch-size 64]

Decodes the demo site's images once (as the annotate stage does), sets every annotator up, runs one
untimed batch, then times each one over the same batches, so a user can see what each signal costs
on this machine.
"""

from __future__ import annotations

import argparse
import io
import os
import time

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from PIL import Image  # noqa: E402

from pairsmith.filters import build_annotators  # noqa: E402
from pairsmith.filters.base import Batch  # noqa: E402
from pairsmith.flows.demo_site import build_demo_site  # noqa: E402
from pairsmith.schemas.config import load_config  # noqa: E402


def demo_images() -> tuple[list[Image.Image], list[str]]:
    routes, pairs = build_demo_site()
    images, captions = [], []
    for pair in pairs:
        route = routes.get(pair.path)
        if pair.expected_status != "success" or route is None or route.status != 200:
            continue
        images.append(Image.open(io.BytesIO(route.body)).convert("RGB"))
        captions.append(pair.caption)
    return images, captions


def time_annotators(annotators, images, captions, batch_size: int, pool=None) -> dict[str, float]:
    """Seconds per annotator (by class name) over `images` in batches, and the whole pass (`total`);
    `pool`: the batch's threads for per-image work (the annotate stage's `annotate.threads`)."""
    cost = {type(a).__name__: 0.0 for a in annotators}
    started = time.perf_counter()
    for start in range(0, len(images), batch_size):
        stop = min(start + batch_size, len(images))
        batch = Batch(
            {"caption": captions[start:stop], "original_width": [im.width for im in images[start:stop]],
             "original_height": [im.height for im in images[start:stop]], "image_bytes": [10_000] * (stop - start)},
            images[start:stop],
            pool,
        )  # fmt: skip
        for annotator in annotators:
            t = time.perf_counter()
            for name, values in annotator(batch).items():
                batch.columns[name] = values.to_pylist()
            cost[type(annotator).__name__] += time.perf_counter() - t
    return cost | {"total": time.perf_counter() - started}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--profile", default="toy")
    parser.add_argument("--ocr", default="gated", choices=["gated", "always", "off"])
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    cfg = load_config(None, [f"models.profile={args.profile}", f"annotate.ocr={args.ocr}"])
    annotators = build_annotators(cfg.models, cfg.annotate)
    for annotator in annotators:
        annotator.setup()
    images, captions = demo_images()
    n = len(images)
    sample = images[0]
    # One untimed batch first: lazy first-use costs (pyarrow imports pandas on its first array, a
    # lexicon loads on its first word) would otherwise be charged to whichever annotator meets them.
    time_annotators(annotators, images[: args.batch_size], captions[: args.batch_size], args.batch_size)
    cost = time_annotators(annotators, images, captions, args.batch_size)
    total = cost.pop("total")
    print(
        f"{n} demo images (e.g. {sample.width}x{sample.height}), profile {args.profile}, ocr {args.ocr}, batch {args.batch_size}"
    )
    print(f"{'annotator':<20}{'ms/image':>10}{'share':>8}")
    for name, seconds in sorted(cost.items(), key=lambda kv: -kv[1]):
        print(f"{name:<20}{1000 * seconds / n:>10.2f}{seconds / total:>8.1%}")
    print(f"{'whole annotate pass':<20}{1000 * total / n:>10.2f}{1:>8.0%}")


if __name__ == "__main__":
    main()
