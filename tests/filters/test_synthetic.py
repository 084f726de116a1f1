"""`synthetic_score`: the toy detector loads as any hub checkpoint does and holds its card's held-out
figure on a generator it never saw; the generated label is found or asked for; a missing model is a
clear error before any work."""

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from pairsmith.filters import build_annotators, check_models
from pairsmith.filters.base import Batch
from pairsmith.filters.registry import Run
from pairsmith.filters.synthetic import TOY_SYNTHETIC, Synthetic, generated_label, means_generated
from pairsmith.schemas.config import AnnotateConfig, ModelsConfig
from pairsmith.schemas.errors import ConfigError, ModelLoadError
from tools.metrics import roc_auc
from tools.train_toy_synthetic import UNSEEN, heldout_generator, real_images, sample, to_pil

HELDOUT_SEED = 31337  # training uses --seed 0 (data) and 30_000 (its own held-out metrics)
TOLERANCE = 0.03  # 400 + 400 fresh draws against the card's 1000 + 1000


def _card_figure() -> float:
    metrics = json.loads((TOY_SYNTHETIC.parent / "metrics.json").read_text())
    return metrics["toy-synthetic"]["unseen_generator_auc"]


def _toy(**models) -> Synthetic:
    (annotator,) = Synthetic.configure(Run(ModelsConfig(profile="toy", device="cpu", **models)), "toy")
    annotator.setup()
    return annotator


def test_toy_checkpoint_loads_through_the_auto_classes():
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    model = AutoModelForImageClassification.from_pretrained(TOY_SYNTHETIC)
    processor = AutoImageProcessor.from_pretrained(TOY_SYNTHETIC)
    assert model.config.id2label == {0: "real", 1: "fake"}
    assert {p.name for p in TOY_SYNTHETIC.iterdir()} >= {
        "config.json",
        "model.safetensors",
        "preprocessor_config.json",
        "README.md",
    }
    pixels = processor([Image.new("RGB", (300, 120)), Image.new("RGB", (17, 40))], return_tensors="pt")
    assert pixels["pixel_values"].shape == (2, 3, 32, 32)  # any size in, the training size out


def test_toy_detector_on_a_generator_it_never_saw(one_torch_thread):
    unseen = heldout_generator(UNSEEN, seed=0)  # the trainer's: same spec, seed and data
    detector = _toy()
    real = list(real_images(400, HELDOUT_SEED, "heldout"))  # photos no model has seen, fresh scenes
    fake = to_pil(sample(unseen, 400, HELDOUT_SEED + 1))
    scores = detector(Batch({}, real + fake))["synthetic_score"].to_numpy()
    auc = roc_auc(scores, np.r_[np.zeros(400, bool), np.ones(400, bool)])
    print(f"toy synthetic detector, unseen generator AUC: {auc:.4f} (card: {_card_figure()})")
    assert auc >= _card_figure() - TOLERANCE


def test_rows_without_an_image_get_a_null_score():
    scores = _toy()(Batch({}, [Image.new("RGB", (64, 48), (120, 90, 60)), None]))["synthetic_score"]
    assert scores.to_pylist()[1] is None
    assert 0 <= scores.to_pylist()[0] <= 1


@pytest.mark.parametrize(
    "label", ["fake", "FAKE", "Fake image", "ai_generated", "AI-image", "AIGenerated", "AI", "artificial", "synthetic", "deepfake"]
)  # fmt: skip
def test_labels_that_mean_generated(label):
    assert means_generated(label)


@pytest.mark.parametrize(
    "label", ["real", "REAL", "human", "plain", "painting", "hair", "Realism", "natural"]
)
def test_labels_that_do_not_mean_generated(label):
    assert not means_generated(label)


def test_the_default_label_is_the_one_that_says_generated():
    assert check_models(ModelsConfig(profile="toy"))["synthetic_label"] == "fake"
    assert generated_label("x", ["human", "artificial"], None) == "artificial"
    assert generated_label("x", ["REAL", "FAKE"], None) == "FAKE"


def test_an_explicit_label_is_used_and_must_exist():
    assert _toy(synthetic_label="real").label == "real"
    assert check_models(ModelsConfig(profile="toy", synthetic_label="real"))["synthetic_label"] == "real"
    with pytest.raises(ConfigError, match=r"synthetic_label='generated'.*\['real', 'fake'\]"):
        check_models(ModelsConfig(profile="toy", synthetic_label="generated"))


def test_a_checkpoint_without_a_generated_label_names_its_labels(tmp_path):
    folder = tmp_path / "cats"
    shutil.copytree(TOY_SYNTHETIC, folder)
    config = json.loads((folder / "config.json").read_text())
    config |= {"id2label": {"0": "cat", "1": "plain"}, "label2id": {"cat": 0, "plain": 1}}
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match=r"no label .*models.synthetic_label.*\['cat', 'plain'\]"):
        check_models(ModelsConfig(profile="toy", synthetic=str(folder)))
    with pytest.raises(ConfigError, match=r"2 labels"):
        generated_label("x", ["fake", "ai"], None)
    ids = check_models(ModelsConfig(profile="toy", synthetic=str(folder), synthetic_label="cat"))
    assert ids["synthetic"] == str(folder) and ids["synthetic_label"] == "cat"


def _detectors(models: ModelsConfig) -> list[Synthetic]:
    return [a for a in build_annotators(models, AnnotateConfig(ocr="off")) if isinstance(a, Synthetic)]


def test_none_turns_the_signal_off():
    assert not _detectors(ModelsConfig(profile="toy", synthetic="none"))
    assert not _detectors(ModelsConfig(profile="laion"))  # no detector named outside the toy profile
    assert check_models(ModelsConfig(profile="none"))["synthetic"] == "none"
    assert [a.spec for a in _detectors(ModelsConfig(profile="toy"))] == ["toy"]


def test_a_missing_checkpoint_is_an_error_that_says_how_to_get_it(tmp_path):
    with pytest.raises(ModelLoadError, match=r"nothere.*no such folder.*save_pretrained"):
        check_models(ModelsConfig(profile="toy", synthetic=str(tmp_path / "nothere")))
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "config.json").write_text("{}")
    with pytest.raises(ModelLoadError, match="no weights"):
        check_models(ModelsConfig(profile="toy", synthetic=str(tmp_path / "empty")))
    with pytest.raises(ModelLoadError, match=r"not in the Hugging Face cache.*hf download"):
        check_models(ModelsConfig(profile="toy", synthetic="pairsmith-tests/no-such-detector"))
