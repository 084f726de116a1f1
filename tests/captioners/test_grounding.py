"""Grounded recaptions (`captioners/grounding.py`): phrases, the `clip` grounder on held-out toy scenes,
the registry and profile wiring, and the zero-shot detector path through the Auto classes."""

import io
import json

import numpy as np
import pyarrow as pa
import pytest
import torch
from PIL import Image

from pairsmith.captioners.annotator import recaption_annotators
from pairsmith.captioners.grounding import (
    GROUNDING_COLUMNS,
    REGION,
    TOY_CLIP_MARGIN,
    ClipGrounder,
    DetectorGrounder,
    GroundRecaption,
    check_grounding,
    grounding_spec,
)
from pairsmith.captioners.nouns import noun_phrases
from pairsmith.filters.clip_models import ClipEmbedder
from pairsmith.filters.clip_score import ClipScore
from pairsmith.filters.registry import annotator_classes, build_annotators, check_models
from pairsmith.filters.toy_world import render_scene_details
from pairsmith.pipelines.annotate import annotate_rows
from pairsmith.schemas.config import AnnotateConfig, ModelsConfig, RecaptionConfig
from pairsmith.schemas.errors import ModelLoadError
from pairsmith.schemas.record import FIELDS
from tools.calibrate_grounding import cases, measure

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # the calibration's setting
HELDOUT = 72_000  # neither the calibration seed (70_000) nor the model card's (71_000)


def test_object_phrases_of_a_dense_caption():
    text = "a picture of two shapes on a striped background, a small green square to the left of a blue star"
    assert noun_phrases(text) == [
        "a picture",
        "two shapes",
        "a striped background",
        "a small green square",
        "the left",
        "a blue star",
    ]
    assert noun_phrases(text, objects_only=True) == ["a small green square", "a blue star"]
    assert noun_phrases("A man riding a brown horse next to two dogs.", True) == [
        "A man",
        "a brown horse",
        "two dogs",
    ]
    assert noun_phrases("it is red") == [] and noun_phrases(None) == []


@pytest.fixture(scope="module")
def grounder():
    return ClipGrounder(ClipEmbedder("toy", "cpu")).load()


def test_heldout_toy_scenes(grounder):
    """The issue's bars on scenes of a seed the margin never saw: true recaptions grounded (>= 0.9 on
    average), an injected `a green star` caught (>= 0.8), boxes on the drawn shape (IoU >= 0.3 for >= 0.7)."""
    assert grounder.margin == TOY_CLIP_MARGIN
    figures = measure(grounder, cases(160, HELDOUT))
    assert figures["scenes"] >= 150
    assert figures["grounded_ratio_true"] >= 0.9, figures["grounded_ratio_true"]
    assert figures["injected_caught"] >= 0.8, figures["injected_caught"]
    assert figures["iou_at_least_0.3"] >= 0.7, figures["iou_at_least_0.3"]


def test_one_row_alone_is_judged_against_a_plain_image(grounder):
    image, _, details = render_scene_details(np.random.default_rng(5))
    phrase = f"a {details['things'][0][0]}"
    [[g]] = grounder.ground([image], [[phrase]])
    assert g.phrase == phrase and g.score > 0 and all(0 <= v <= 1 for v in g.box)


def test_the_toy_profile_grounds_with_clip_and_the_others_do_not():
    toy, laion = ModelsConfig(profile="toy"), ModelsConfig(profile="laion")
    assert (
        grounding_spec(toy, RecaptionConfig()) == "clip" and grounding_spec(laion, RecaptionConfig()) is None
    )
    assert grounding_spec(toy, RecaptionConfig(grounding_model="none")) is None
    assert check_models(toy)["grounding"] == "clip"
    # without recaptions there is nothing to ground
    off = check_models(toy, RecaptionConfig(model="none"))["grounding"]
    assert off.startswith("not computed") and "recaption" in off
    assert not any(
        isinstance(a, GroundRecaption)
        for a in build_annotators(toy, AnnotateConfig(), RecaptionConfig(model="none"))
    )
    names = [f.name for f in FIELDS]
    assert names.index("recaption_nouns") < names.index("recaption_grounded_ratio")
    assert next(f for f in FIELDS if f.name == "recaption_regions").type == pa.list_(REGION)
    order = annotator_classes()
    assert order.index(GroundRecaption) > [c.__name__ for c in order].index("Recaption")


def _png(image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue()


def test_columns_through_annotate_and_pairsmith_recaption():
    """`pairsmith recaption`'s annotators (the same as the run's) fill the columns; a row without an
    image gets nulls; the CLIP model is the primary one's (shared, loaded once)."""
    models = ModelsConfig(profile="toy")
    clip = ClipScore("toy", "toy", True, "cpu")
    annotators = recaption_annotators(models, RecaptionConfig(device="cpu"), clip)
    grounding = annotators[-1]
    assert isinstance(grounding, GroundRecaption) and grounding.grounder.embedder is clip.embedder
    for a in annotators:
        a.setup()
    rng = np.random.default_rng(11)
    scenes = [render_scene_details(rng) for _ in range(6)]
    images = iter([*(_png(s[0]) for s in scenes), None])
    rows = pa.table({"caption": [*(s[1] for s in scenes), "a red circle"]})
    new = annotate_rows(rows, pa.table({}), images, annotators, batch_size=8)
    ratio = new["recaption_grounded_ratio"].to_pylist()
    assert all(r is not None and 0 <= r <= 1 for r in ratio[:6]) and ratio[6] is None
    assert new["recaption_regions"].type == pa.list_(REGION) and new["recaption_regions"][6].as_py() is None
    for regions, ungrounded, r in zip(
        new["recaption_regions"].to_pylist()[:6],
        new["recaption_ungrounded"].to_pylist()[:6],
        ratio[:6],
        strict=True,
    ):
        assert len(regions) / (len(regions) + len(ungrounded)) == pytest.approx(r)
        for region in regions:
            assert 0 <= region["x0"] < region["x1"] <= 1 and 0 <= region["y0"] < region["y1"] <= 1
    assert set(GROUNDING_COLUMNS) <= set(new)


def test_missing_detectors_are_clear_errors(tmp_path):
    for spec, message in [
        (str(tmp_path / "nothing"), "no such folder"),
        (str(tmp_path), "has no config.json"),
        ("google/owlv2-base-patch16-ensemble", "not in the Hugging Face cache"),
    ]:
        with pytest.raises(ModelLoadError, match=message) as err:
            check_grounding(ModelsConfig(profile="toy"), RecaptionConfig(grounding_model=spec))
        assert "grounding detector" in str(err.value)
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "model.safetensors").write_bytes(b"")
    from pairsmith.captioners.hf import TOY_CAPTIONER

    with pytest.raises(ModelLoadError, match="not a zero-shot object detector"):
        DetectorGrounder(str(TOY_CAPTIONER), device="cpu").load()


def _tiny_owl(folder, kind: str) -> str:
    """A randomly initialised OWL-ViT or OWLv2 with a word-level CLIP tokenizer, saved as a hub model is."""
    import transformers as tf

    words = ["a", "an", "the", "small", "large", "red", "green", "blue", "star", "circle", "square"]
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1} | {f"{w}</w>": i + 2 for i, w in enumerate(words)}
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = tf.CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=16)
    config_cls, model_cls, image_cls, processor_cls = {
        "owlvit": (tf.OwlViTConfig, tf.OwlViTForObjectDetection, tf.OwlViTImageProcessor, tf.OwlViTProcessor),
        "owlv2": (tf.Owlv2Config, tf.Owlv2ForObjectDetection, tf.Owlv2ImageProcessor, tf.Owlv2Processor),
    }[kind]
    small = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2)
    text = small | dict(
        vocab_size=len(vocab), max_position_embeddings=16, bos_token_id=0, eos_token_id=1, pad_token_id=1
    )
    config = config_cls(
        text_config=text, vision_config=small | dict(image_size=64, patch_size=16), projection_dim=32
    )
    torch.manual_seed(0)
    model = model_cls(config)
    image_processor = image_cls(size={"height": 64, "width": 64}, crop_size={"height": 64, "width": 64})
    out = folder / kind
    model.save_pretrained(out)
    processor_cls(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(out)
    return str(out)


@pytest.mark.parametrize("kind", ["owlvit", "owlv2"])
def test_a_zero_shot_detector_loads_and_grounds_end_to_end(tmp_path, kind):
    """A random detector means nothing, but proves the path: Auto classes, queries, post-processing,
    boxes normalised; threshold 0 grounds every phrase (each gets its best box), 1 none."""
    spec = _tiny_owl(tmp_path, kind)
    assert check_grounding(ModelsConfig(profile="toy"), RecaptionConfig(grounding_model=spec)) == spec
    image = Image.new("RGB", (96, 64), (200, 200, 200))
    phrases = [["a red circle", "a small blue star"], []]
    for threshold, grounded in [(0.0, True), (1.0, False)]:
        detector = DetectorGrounder(spec, threshold=threshold, device="cpu").load()
        result = detector.ground([image, image], phrases)
        assert [len(r) for r in result] == [2, 0]
        for g, phrase in zip(result[0], phrases[0], strict=True):
            assert g.phrase == phrase and g.grounded is grounded
            if grounded:
                assert len(g.box) == 4 and all(0 <= v <= 1 for v in g.box) and 0 <= g.score <= 1
    annotator = GroundRecaption.for_spec(
        spec, RecaptionConfig(grounding_model=spec, grounding_threshold=0.0), None, "cpu"
    )
    annotator.setup()
    from pairsmith.filters.base import Batch

    out = annotator(Batch({"recaption": ["a red circle above a blue star", None]}, [image, image]))
    assert out["recaption_grounded_ratio"].to_pylist() == [1.0, None]
    assert [r["phrase"] for r in out["recaption_regions"][0].as_py()] == ["a red circle", "a blue star"]
