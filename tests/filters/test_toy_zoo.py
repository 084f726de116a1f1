"""The committed toy zoo, loaded by the real loading code, judged on held-out data of the toy world."""

import numpy as np
import open_clip
import pytest
import torch

from pairsmith.filters.clip_models import TOY_ZOO
from pairsmith.filters.toy_world import render_scene, scene_pairs
from pairsmith.filters.watermark_model import (
    WatermarkConfig,
    load_watermark_model,
    watermark_probability,
    watermark_transform,
)
from pairsmith.pipelines.caption_swap import swap_captions
from tools.metrics import roc_auc
from tools.train_toy_zoo import watermark_examples

HELDOUT_SEED = 31337  # training uses seeds 0 (data), 10_000 and 20_000 (its own held-out metrics)


def test_render_scene_is_deterministic_for_a_generator_seed():
    first, second, other = (render_scene(np.random.default_rng(s)) for s in (5, 5, 6))
    assert first[0].tobytes() == second[0].tobytes() and first[1] == second[1]
    assert first[0].tobytes() != other[0].tobytes()


@pytest.mark.parametrize(("n", "fraction", "expected"), [(100, 0.2, 20), (50, 0.25, 12), (7, 0.5, 4)])
def test_swap_captions_swaps_the_requested_fraction_in_pairs(n, fraction, expected):
    captions = [f"caption {i}" for i in range(n)]
    new, swapped = swap_captions(captions, fraction, np.random.default_rng(0))
    assert sum(swapped) == expected
    assert sorted(new) == sorted(captions)
    assert all((a != b) == flag for a, b, flag in zip(new, captions, swapped, strict=True))


def test_swap_captions_never_swaps_equal_captions():
    captions = [f"caption {i % 3}" for i in range(60)]
    new, swapped = swap_captions(captions, 0.5, np.random.default_rng(1))
    assert sum(swapped) == 30
    assert all((a != b) == flag for a, b, flag in zip(new, captions, swapped, strict=True))


@torch.inference_mode()
def test_toy_clip_scores_true_captions_above_swapped_ones():
    open_clip.add_model_config(TOY_ZOO / "toy-clip-vit.json")
    model, _, preprocess = open_clip.create_model_and_transforms(
        "toy-clip-vit", pretrained=str(TOY_ZOO / "toy-clip-vit.pt")
    )
    tokenizer = open_clip.get_tokenizer("toy-clip-vit")
    pairs = scene_pairs(200, seed=HELDOUT_SEED)
    captions, swapped = swap_captions([c for _, c in pairs], 0.2, np.random.default_rng(HELDOUT_SEED))
    images = model.encode_image(torch.stack([preprocess(img) for img, _ in pairs]), normalize=True)
    texts = model.encode_text(tokenizer(captions), normalize=True)
    auc = roc_auc((images * texts).sum(-1).numpy(), ~np.array(swapped))
    print(f"toy CLIP held-out AUC true vs swapped: {auc:.4f}")
    assert auc >= 0.95


@torch.inference_mode()
def test_toy_watermark_detector_on_overlays_never_seen_in_training():
    config = WatermarkConfig.read(TOY_ZOO / "toy-watermark.json")
    model = load_watermark_model(TOY_ZOO / "toy-watermark.pt", config)
    images, labels = watermark_examples(
        160, seed=HELDOUT_SEED, style="heldout", transform=watermark_transform(config)
    )
    scores = watermark_probability(model(images.float())).numpy()
    auc = roc_auc(scores, labels.numpy() == 0)
    print(f"toy watermark held-out AUC: {auc:.3f}")
    assert auc >= 0.85


def test_missing_watermark_weights_name_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere.pt"):
        load_watermark_model(tmp_path / "nothere.pt", WatermarkConfig())
