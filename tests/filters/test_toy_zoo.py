"""The committed toy zoo, loaded by the real loading code, judged on held-out data."""

import numpy as np
import torch

from pairsmith.filters.clip_models import TOY_ZOO
from pairsmith.filters.metrics import roc_auc
from pairsmith.filters.toy_world import render_scene, swap_captions
from pairsmith.filters.train_toy_zoo import watermark_examples
from pairsmith.filters.watermark_model import (
    WatermarkConfig,
    load_watermark_model,
    watermark_probability,
    watermark_transform,
)


def test_toy_world_is_deterministic():
    a = [render_scene(np.random.default_rng(5))[0].tobytes() for _ in range(2)]
    assert a[0] == a[1]


def test_swap_captions_swaps_the_requested_fraction_in_pairs():
    captions = [f"caption {i}" for i in range(100)]
    swapped_captions, swapped = swap_captions(captions, 0.2, np.random.default_rng(0))
    assert sum(swapped) == 20
    assert sorted(swapped_captions) == sorted(captions)
    assert all(
        (new != old) == flag for new, old, flag in zip(swapped_captions, captions, swapped, strict=True)
    )


@torch.inference_mode()
def test_toy_watermark_detector_on_overlays_never_seen_in_training():
    config = WatermarkConfig.read(TOY_ZOO / "toy-watermark.json")
    model = load_watermark_model(TOY_ZOO / "toy-watermark.pt", config)
    images, labels = watermark_examples(
        160, seed=31337, style="heldout", transform=watermark_transform(config)
    )
    scores = watermark_probability(model(images)).numpy()
    auc = roc_auc(scores, labels.numpy() == 0)
    print(f"toy watermark held-out AUC: {auc:.3f}")
    assert auc >= 0.85
