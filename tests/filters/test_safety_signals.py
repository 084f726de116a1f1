"""NSFW, watermark and aesthetic signals on real inputs, and their model resolution."""

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data

from pairsmith.filters import check_models
from pairsmith.filters.base import Batch
from pairsmith.filters.clip_models import ModelLoadError
from pairsmith.filters.clip_score import ClipScore
from pairsmith.filters.nsfw import NsfwHead, NudeNetNsfw
from pairsmith.filters.toy_world import add_watermark
from pairsmith.filters.watermark import Watermark
from pairsmith.schemas.config import load_config

ASTRONAUT = Image.fromarray(data.astronaut()).convert("RGB")
COFFEE = Image.fromarray(data.coffee()).convert("RGB")


def test_nudenet_scores_safe_photos_low_and_lists_what_it_saw():
    nsfw = NudeNetNsfw()
    nsfw.setup()
    out = nsfw(Batch({"caption": [""] * 3}, [ASTRONAUT, COFFEE, None]))
    scores, classes = out["nsfw_score"].to_pylist(), out["nsfw_classes"].to_pylist()
    assert scores[0] < 0.5 and scores[1] < 0.5 and scores[2] is None
    assert "FACE_FEMALE" in classes[0]
    assert classes[2] is None


def test_watermark_annotator_ranks_watermarked_photos_higher():
    annotator = Watermark("toy")
    annotator.setup()
    rng = np.random.default_rng(3)
    crops = [ASTRONAUT.crop((x, x, x + 256, x + 256)) for x in range(0, 240, 12)]
    marked = [add_watermark(c, rng, "heldout") for c in crops]
    scores = annotator(Batch({"caption": [""] * 40}, crops + marked))["watermark_score"].to_numpy()
    assert np.all((scores >= 0) & (scores <= 1))
    assert scores[20:].mean() > scores[:20].mean() + 0.2


def test_clip_embedding_head_loads_a_state_dict_of_any_depth(tmp_path):
    torch.manual_seed(0)
    state = {
        "0.weight": torch.randn(8, 64),
        "0.bias": torch.zeros(8),
        "2.weight": torch.randn(1, 8),
        "2.bias": torch.zeros(1),
    }
    torch.save(state, tmp_path / "head.pt")
    clip = ClipScore("toy", "toy", primary=True)
    clip.setup()
    head = NsfwHead(str(tmp_path / "head.pt"), clip)
    head.setup()
    batch = Batch({"caption": ["a red circle", "x"]}, [COFFEE, None])
    for column, values in clip(batch).items():
        batch.columns[column] = values.to_pylist()
    scores = head(batch)["nsfw_score"].to_pylist()
    emb = torch.tensor(batch.columns["embeddings/toy/image_embedding"][0], dtype=torch.float32)
    expected = torch.sigmoid(state["2.weight"] @ torch.relu(state["0.weight"] @ emb)).item()
    assert scores[0] == pytest.approx(expected, abs=1e-4) and scores[1] is None


def test_missing_named_weights_say_where_to_get_them(monkeypatch, tmp_path):
    monkeypatch.setenv("PAIRSMITH_MODELS", str(tmp_path))
    with pytest.raises(
        ModelLoadError,
        match="watermark_model_v1.pt not found; get it from LAION-AI/LAION-5B-WatermarkDetection release 1.0 "
        r".*; run: pairsmith models pull laion-watermark$",
    ):
        check_models(load_config(None, ["models.profile=toy", "models.watermark=laion-watermark"]).models)


def test_aesthetic_without_an_l14_model_is_null_and_the_manifest_says_why():
    ids = check_models(
        load_config(None, ["models.profile=toy", "models.aesthetic=laion-aesthetic-l14"]).models
    )
    assert ids["aesthetic"].startswith("not computed") and "ViT-L-14" in ids["aesthetic"]
