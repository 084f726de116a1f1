"""`synthetic_score`: P(generated) from an image classifier of real vs AI-generated images.

CIFAKE (Bird & Lotfi 2024) showed that a small CNN tells real from generated 32x32 images (92.98 %
accuracy on CIFAR-10 against Stable Diffusion images), and Grad-CAM showed it uses small background
imperfections rather than the object: a detector knows the generators it was trained on.

Specs (`models.synthetic`): `toy` (the toy zoo's detector, `filters/toy_zoo/toy-synthetic/`, trained
by `tools/train_toy_synthetic.py`), a Hugging Face image-classification repo id (from the cache), or a
local folder written by `save_pretrained`; `none` turns the signal off. Every spec loads the same
way: `AutoImageProcessor` (which resizes any image to the model's input) and
`AutoModelForImageClassification`. The score is the probability of the label that means "generated":
`models.synthetic_label`, else the one label whose name has the word `fake`, `ai`, `synthetic` or
`artificial` (`FAKE`, `ai_generated`, `AI-image`, `artificial`; not `plain` or `painting`).

`resolve` and `generated_label` check a spec before any work, reading only `config.json` (no torch),
and fail with what to do.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pyarrow as pa

from pairsmith.filters.base import Annotator, Batch
from pairsmith.schemas.errors import ConfigError, ModelLoadError
from pairsmith.schemas.record import column

TOY_SYNTHETIC = Path(__file__).resolve().parent / "toy_zoo" / "toy-synthetic"
HOW_TO_GET = (
    "run once with network access so that it is cached (`hf download REPO_ID`), point HF_HOME at a "
    "cache that has it, or pass a local folder written by save_pretrained (HF_HUB_OFFLINE=1 downloads "
    "nothing); the toy detector is `toy` (`python -m tools.train_toy_synthetic` rebuilds it)"
)
WEIGHT_PATTERNS = ("*.safetensors", "*.safetensors.index.json", "pytorch_model*.bin", "model*.bin")
REPO_ID = re.compile(r"^[\w.-]+(/[\w.-]+)?$")
GENERATED_WORDS = ("fake", "synthetic", "artificial")  # found inside a word too: deepfake, Artificial
GENERATED_TOKENS = ("ai",)  # only as a word of its own: ai_generated, AI-image, AIGenerated; not plain


def _fail(spec: str, why: str) -> ModelLoadError:
    return ModelLoadError(f"cannot load synthetic-image detector {spec!r} (models.synthetic): {why}")


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() not in ("0", "", "false")


def _has_weights(folder: Path) -> bool:
    return any(next(folder.glob(pattern), None) is not None for pattern in WEIGHT_PATTERNS)


def resolve(spec: str) -> tuple[str, Path]:
    """(what `from_pretrained` is given, the path of its config.json) for `spec`; ModelLoadError,
    saying how to get the model, when it cannot be loaded here."""
    if spec == "toy":
        spec = str(TOY_SYNTHETIC)
    folder = Path(spec).expanduser()
    if folder.exists() or spec.startswith(("/", ".", "~")) or not REPO_ID.match(spec):
        if not folder.is_dir():
            raise _fail(spec, f"no such folder, and not a Hugging Face repo id; {HOW_TO_GET}")
        if not (folder / "config.json").is_file():
            raise _fail(spec, f"{folder} has no config.json (expected a folder written by save_pretrained)")
        if not _has_weights(folder):
            raise _fail(spec, f"{folder} has no weights (*.safetensors or *.bin)")
        if not (folder / "preprocessor_config.json").is_file():
            raise _fail(spec, f"{folder} has no preprocessor_config.json (save the image processor too)")
        return str(folder), folder / "config.json"
    from huggingface_hub import hf_hub_download, snapshot_download

    try:
        if not _offline():
            return spec, Path(hf_hub_download(spec, "config.json"))  # weights come with from_pretrained
        snapshot = Path(snapshot_download(spec, local_files_only=True))
    except Exception as exc:  # noqa: BLE001  (every hub failure means the same to the user)
        raise _fail(spec, f"not in the Hugging Face cache ({type(exc).__name__}); {HOW_TO_GET}") from None
    if not (snapshot / "config.json").is_file() or not _has_weights(snapshot):
        raise _fail(spec, f"the cached copy in {snapshot} has no config.json or no weights; {HOW_TO_GET}")
    return spec, snapshot / "config.json"


def _words(label: str) -> list[str]:
    """A label's words, lower case: split at non-letters and at camelCase joins (AIGenerated: ai, generated)."""
    return [w.lower() for w in re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+", label)]


def means_generated(label: str) -> bool:
    """Whether a label's name says "generated": `fake`, `synthetic` or `artificial` in it, or the word `ai`."""
    words = _words(label)
    return any(g in w for w in words for g in GENERATED_WORDS) or any(t in words for t in GENERATED_TOKENS)


def labels_of(config_path: Path) -> list[str]:
    """The class names of a checkpoint (its config.json's id2label), in class-index order."""
    id2label = json.loads(Path(config_path).read_text()).get("id2label") or {}
    return [str(id2label[k]) for k in sorted(id2label, key=int)]


def generated_label(spec: str, labels: list[str], explicit: str | None) -> str:
    """The label whose probability is `synthetic_score`: `explicit` (models.synthetic_label) if given,
    else the one label that `means_generated`; ConfigError naming the labels otherwise."""
    if explicit is not None:
        if explicit not in labels:
            raise ConfigError(
                f"models.synthetic_label={explicit!r} is not a label of {spec!r}; its labels: {labels}"
            )
        return explicit
    found = [label for label in labels if means_generated(label)]
    if len(found) != 1:
        why = "no label" if not found else f"{len(found)} labels ({found})"
        raise ConfigError(
            f"models.synthetic={spec!r}: {why} name a generated class (a word fake, ai, synthetic or "
            f"artificial); set models.synthetic_label to one of its labels: {labels}"
        )
    return found[0]


class Synthetic(Annotator):
    """A real-vs-generated image classifier (CIFAKE's construction; any Hugging Face image-classification checkpoint): P(generated label)."""

    fields = (
        column(
            "synthetic_score",
            pa.float32(),
            "scores",
            "P(AI-generated) from an image classifier (`models.synthetic`; the probability of "
            "`models.synthetic_label`); it knows only the generators it was trained on.",
        ),
    )
    reads_image = True
    model = "synthetic"

    def __init__(self, spec: str, label: str, device: str = "auto", precision: str = "auto"):
        self.spec, self.label, self.model_id = spec, label, spec
        self.device, self.precision = device, precision

    @classmethod
    def _label(cls, run, spec: str) -> str:
        _, config_path = resolve(spec)
        return generated_label(spec, labels_of(config_path), run.models.synthetic_label)

    @classmethod
    def check(cls, run, spec: str) -> dict[str, str]:
        return {"synthetic": spec, "synthetic_label": cls._label(run, spec)}

    @classmethod
    def configure(cls, run, spec: str) -> list[Synthetic]:
        return [cls(spec, cls._label(run, spec), run.models.device, run.models.precision)]

    def setup(self) -> None:
        from transformers import AutoImageProcessor, AutoModelForImageClassification

        from pairsmith.filters.devices import resolve_device

        source, _ = resolve(self.spec)
        self.device = resolve_device(self.device)
        try:
            self.processor = AutoImageProcessor.from_pretrained(source)
            self.classifier = AutoModelForImageClassification.from_pretrained(source)
        except Exception as exc:  # noqa: BLE001
            raise _fail(self.spec, f"{type(exc).__name__}: {exc}") from exc
        self.classifier.to(self.device).eval()
        config = self.classifier.config
        self.index = {str(v): int(k) for k, v in config.id2label.items()}[self.label]
        self.multi_label = config.problem_type == "multi_label_classification"

    def annotate(self, batch: Batch) -> dict[str, list[Any]]:
        import torch

        from pairsmith.filters.devices import autocast

        rows = [i for i, image in enumerate(batch.images) if image is not None]
        scores: list[float | None] = [None] * len(batch)
        if rows:
            pixels = self.processor([batch.images[i] for i in rows], return_tensors="pt")["pixel_values"]
            with torch.inference_mode(), autocast(self.device, self.precision):
                logits = self.classifier(pixel_values=pixels.to(self.device)).logits.float()
            probabilities = logits.sigmoid() if self.multi_label else logits.softmax(-1)
            for row, p in zip(rows, probabilities[:, self.index].tolist(), strict=True):
                scores[row] = float(p)
        return {"synthetic_score": scores}
