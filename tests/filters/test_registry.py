"""The registry: annotators declare their columns and what they read; order, schema and sets follow."""

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import torch
from PIL import Image

from pairsmith.filters import build_annotators
from pairsmith.filters.base import Annotator, Batch, ImageAnnotator
from pairsmith.filters.nsfw import NsfwHead
from pairsmith.filters.profiles import SIGNALS
from pairsmith.filters.registry import annotator_classes, caption_only_classes
from pairsmith.pipelines.annotate import annotate_rows
from pairsmith.schemas.config import AnnotateConfig, ModelsConfig, load_config
from pairsmith.schemas.record import FIELDS, column, record_schema

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "demo_rows.json"


class MeanRed(ImageAnnotator):
    """Mean of the red channel, in [0, 1]."""

    fields = (column("mean_red", pa.float32(), "image", "Mean red channel value, in [0, 1]."),)

    def annotate_image(self, image):
        return {"mean_red": float(np.asarray(image)[..., 0].mean() / 255)}


class RedCaption(Annotator):
    """Reads a column of `MeanRed` and the caption (listed before it in SIGNALS)."""

    fields = (column("red_caption", pa.bool_(), "caption", "Red image with 'red' in the caption."),)
    needs = ("caption", "mean_red")

    def annotate(self, batch: Batch):
        rows = zip(batch.column("caption"), batch.column("mean_red"), strict=True)
        return {"red_caption": [None if r is None else r > 0.5 and "red" in (c or "") for c, r in rows]}


def _png(colour) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 24), colour).save(buffer, "PNG")
    return buffer.getvalue()


def _annotate(annotators) -> dict[str, pa.Array]:
    """A red and a blue image and a row without one, through the annotate stage's loop."""
    rows = pa.table({"caption": ["a red square", "a red square", "no image"]})
    results = pa.table(
        {
            "original_width": pa.array([32, 32, None], pa.int32()),
            "original_height": pa.array([24, 24, None], pa.int32()),
            "image_bytes": pa.array([100, 100, None], pa.int64()),
        }
    )
    images = iter([_png((255, 0, 0)), _png((0, 0, 255)), None])
    for annotator in annotators:
        annotator.setup()
    return annotate_rows(rows, results, images, annotators, batch_size=2)


def test_a_new_signal_is_one_class_and_one_profile_entry(monkeypatch):
    monkeypatch.setitem(SIGNALS, "mean_red", MeanRed)
    names = record_schema().names
    assert names.index("ocr_text") + 1 == names.index("mean_red") == names.index("caption_chars") - 1
    new = _annotate(build_annotators(ModelsConfig(profile="none"), AnnotateConfig(ocr="off")))
    assert new["mean_red"].to_pylist() == [1.0, 0.0, None]
    assert new["caption_words"].to_pylist() == [3, 3, 2]  # the others still run


def test_an_annotator_runs_after_the_columns_it_reads_wherever_it_is_listed(monkeypatch):
    monkeypatch.setitem(SIGNALS, "red_caption", RedCaption)
    monkeypatch.setitem(SIGNALS, "mean_red", MeanRed)
    assert list(SIGNALS).index("red_caption") < list(SIGNALS).index("mean_red")
    new = _annotate(build_annotators(ModelsConfig(profile="none"), AnnotateConfig(ocr="off")))
    assert new["red_caption"].to_pylist() == [True, False, None]


def test_a_column_that_nothing_writes_is_refused(monkeypatch):
    class ReadsNothingKnown(Annotator):
        fields = (column("x", pa.int32(), "image", "x"),)
        needs = ("no_such_column",)

    monkeypatch.setitem(SIGNALS, "x", ReadsNothingKnown)
    with pytest.raises(ValueError, match="no_such_column"):
        annotator_classes()


def test_annotators_that_read_each_other_are_refused(monkeypatch):
    class ReadsY(Annotator):
        fields = (column("x", pa.int32(), "image", "x"),)
        needs = ("y",)

    class ReadsX(Annotator):
        fields = (column("y", pa.int32(), "image", "y"),)
        needs = ("x",)

    monkeypatch.setitem(SIGNALS, "x", ReadsY)
    monkeypatch.setitem(SIGNALS, "y", ReadsX)
    with pytest.raises(ValueError, match="ReadsY"):
        annotator_classes()


def test_caption_only_signals_are_those_corrupt_reruns(monkeypatch):
    names = {cls.__name__ for cls in caption_only_classes()}
    assert names == {"CaptionStats", "CaptionQuality", "LanguageId", "BasicRules", "CaptionNouns"}
    monkeypatch.setitem(SIGNALS, "mean_red", MeanRed)
    monkeypatch.setitem(SIGNALS, "red_caption", RedCaption)  # reads the caption, but also the image's red
    assert {cls.__name__ for cls in caption_only_classes()} == names


def test_the_contract_keeps_its_published_column_order():
    columns = json.loads(GOLDEN.read_text())["columns"]
    assert [f.name for f in FIELDS] == columns[: len(FIELDS)]


def test_declarations_load_without_torch():
    code = "import sys; from pairsmith.schemas.record import FIELDS; FIELDS; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_a_named_clip_head_loads_from_the_model_folder(monkeypatch, tmp_path):
    torch.manual_seed(0)
    state = {"0.weight": torch.randn(1, 64), "0.bias": torch.zeros(1)}
    torch.save(state, tmp_path / "laion-nsfw-b32.pt")
    monkeypatch.setenv("PAIRSMITH_MODELS", str(tmp_path))
    cfg = load_config(None, ["models.profile=toy", "models.nsfw=laion-nsfw-b32"])
    annotators = build_annotators(cfg.models, cfg.annotate, cfg.recaption)
    head = next(a for a in annotators if isinstance(a, NsfwHead))
    head.setup()
    batch = Batch({"embeddings/toy/image_embedding": [[0.1] * 64, None]}, [None, None])
    scores = head(batch)["nsfw_score"].to_pylist()
    expected = torch.sigmoid(state["0.weight"] @ torch.full((64,), 0.1)).item()
    assert scores[0] == pytest.approx(expected, abs=1e-6) and scores[1] is None
