"""Model specs and the offline failure path: a model that cannot be loaded fails at start-up."""

import pytest

from pairsmith.filters import check_models
from pairsmith.filters.clip_models import ModelLoadError, parse_spec, resolve
from pairsmith.schemas.config import ConfigError, load_config


@pytest.mark.parametrize(
    ("spec", "model_name", "pretrained"),
    [
        ("ViT-B-32/laion2b_s34b_b79k", "ViT-B-32", "laion2b_s34b_b79k"),
        (
            "hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K",
            "hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K",
            None,
        ),
        ("local-dir:/models/clip", "local-dir:/models/clip", None),
        ("ViT-B-32@/models/b32.pt", "ViT-B-32", "/models/b32.pt"),
        ("/zoo/tiny.json@/zoo/tiny.pt", "tiny", "/zoo/tiny.pt"),
    ],
)
def test_specs_map_to_open_clip_factory_arguments(spec, model_name, pretrained):
    parsed = parse_spec(spec)
    assert (parsed.model_name, parsed.pretrained) == (model_name, pretrained)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("ViT-B-32/laion2b_s34b_b79k", "HF_HOME"),  # not cached and HF_HUB_OFFLINE=1
        ("hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K", "HF_HOME"),
        ("ViT-B-32@/nowhere/b32.pt", "checkpoint /nowhere/b32.pt not found"),
        ("ViT-B-32/no_such_tag", "unknown pretrained tag 'no_such_tag'"),
        ("ViT-Q-99/openai", "unknown open_clip architecture 'ViT-Q-99'"),
        ("local-dir:/nowhere", "has no open_clip_config.json"),
    ],
)
def test_unloadable_models_fail_with_one_line_that_says_what_to_do(spec, message, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError, match=message) as info:
        resolve(spec)
    assert spec in str(info.value)
    assert "\n" not in str(info.value)


def test_profiles_are_checked_before_any_work(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError, match="ViT-L-14/openai"):
        check_models(load_config(None, ["models.profile=datacomp"]).models)
    with pytest.raises(ConfigError, match="unique"):
        check_models(load_config(None, ["models.clip=[{alias: a, spec: toy}, {alias: a, spec: toy}]"]).models)
    assert check_models(load_config(None, ["models.profile=none"]).models) == {
        "nsfw": "none",
        "watermark": "none",
        "aesthetic": "none",
        "recaption": "none",
        "grounding": "none",
        "synthetic": "none",
    }
