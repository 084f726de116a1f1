"""The toy CLIP through the real open_clip loading code, by every kind of spec."""

import json
import shutil

import numpy as np
import pytest

from pairsmith.filters.base import Batch
from pairsmith.filters.clip_models import TOY_ZOO, ClipEmbedder
from pairsmith.filters.clip_score import ClipScore
from pairsmith.filters.toy_world import scene_pairs
from pairsmith.pipelines.caption_swap import swap_captions
from tools.metrics import roc_auc


@pytest.fixture(scope="module")
def heldout():
    pairs = scene_pairs(120, seed=999)
    captions, swapped = swap_captions([c for _, c in pairs], 0.25, np.random.default_rng(1))
    return [img for img, _ in pairs], captions, swapped


def _local_dir(tmp_path):
    folder = tmp_path / "toy-local"
    folder.mkdir()
    config = json.loads((TOY_ZOO / "toy-clip-vit.json").read_text())
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": config}))
    shutil.copy(TOY_ZOO / "toy-clip-vit.pt", folder / "open_clip_pytorch_model.bin")
    return f"local-dir:{folder}"


@pytest.mark.parametrize("kind", ["toy", "config@checkpoint", "local-dir"])
def test_toy_clip_loads_by_every_spec_and_scores_true_pairs_higher(kind, heldout, tmp_path):
    spec = {
        "toy": "toy",
        "config@checkpoint": f"{TOY_ZOO / 'toy-clip-vit.json'}@{TOY_ZOO / 'toy-clip-vit.pt'}",
        "local-dir": _local_dir(tmp_path) if kind == "local-dir" else None,
    }[kind]
    images, captions, swapped = heldout
    scorer = ClipScore("toy", spec, primary=True)
    scorer.setup()
    out = scorer(Batch({"caption": captions}, images))
    assert roc_auc(out["clip_score"].to_numpy(), ~np.array(swapped)) >= 0.95


def test_rows_without_image_or_caption_get_null_scores_and_embeddings(heldout):
    images, captions, _ = heldout
    scorer = ClipScore("extra", "toy", primary=False)
    scorer.setup()
    out = scorer(Batch({"caption": [captions[0], None, captions[2]]}, [images[0], images[1], None]))
    assert out["clip_score_extra"].to_pylist()[1:] == [None, None]
    assert out["embeddings/extra/image_embedding"].null_count == 1
    assert out["embeddings/extra/text_embedding"].null_count == 1
    assert out["embeddings/extra/image_embedding"].type.value_type.bit_width == 16


def test_batched_embeddings_equal_one_at_a_time(heldout):
    images, _, _ = heldout
    embedder = ClipEmbedder("toy").load()
    batched = embedder.embed_images(images[:8])
    single = np.concatenate([embedder.embed_images([img]) for img in images[:8]])
    assert np.allclose(batched, single, atol=1e-5)
    assert np.allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-5)
