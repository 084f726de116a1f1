"""Weights that have no hub name (LAION's NSFW, watermark and aesthetic heads) by pairsmith name.

A name such as `laion-watermark` is a file in the model folder (`PAIRSMITH_MODELS`, default
`~/.cache/pairsmith/models`, or an fsspec URL); any other spec is a path or URL. A missing file is a `ModelLoadError` that
says where to put it and where it comes from; `pairsmith models pull NAME` (`flows/models.py`)
fetches it from the URL LAION publishes it at (converting LAION's Keras NSFW heads to the torch
state_dict that `filters/clip_heads.py` loads).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pairsmith.filters.model_files import is_url, local_copy
from pairsmith.schemas.errors import ModelLoadError

NSFW_DETECTOR = "https://github.com/LAION-AI/CLIP-based-NSFW-Detector/raw/main"


@dataclass(frozen=True)
class NamedWeights:
    """One file of the model folder: its name there, who publishes it, where, and in which form."""

    filename: str
    origin: str
    url: str
    form: str  # "torch": used as published; "keras-nsfw": a Keras head, converted on pull


NAMED = {
    "laion-watermark": NamedWeights(
        "watermark_model_v1.pt",
        "LAION-AI/LAION-5B-WatermarkDetection release 1.0 (efficientnet_b3a state_dict)",
        "https://github.com/LAION-AI/LAION-5B-WatermarkDetection/releases/download/1.0/model.pt",
        "torch",
    ),
    "laion-nsfw-b32": NamedWeights(
        "laion-nsfw-b32.pt",
        "LAION-AI/CLIP-based-NSFW-Detector clip_autokeras_nsfw_b32, Dense kernels transposed to a torch state_dict",
        f"{NSFW_DETECTOR}/clip_autokeras_nsfw_b32.zip",
        "keras-nsfw",
    ),
    "laion-nsfw-l14": NamedWeights(
        "laion-nsfw-l14.pt",
        "LAION-AI/CLIP-based-NSFW-Detector clip_autokeras_binary_nsfw, Dense kernels transposed to a torch state_dict",
        f"{NSFW_DETECTOR}/clip_autokeras_binary_nsfw.zip",
        "keras-nsfw",
    ),
    "laion-aesthetic-l14": NamedWeights(
        "sa_0_4_vit_l_14_linear.pth",
        "LAION-AI/aesthetic-predictor, sa_0_4_vit_l_14_linear.pth",
        "https://github.com/LAION-AI/aesthetic-predictor/raw/main/sa_0_4_vit_l_14_linear.pth",
        "torch",
    ),
}


def model_folder() -> Path:
    return Path(os.environ.get("PAIRSMITH_MODELS", Path.home() / ".cache" / "pairsmith" / "models"))


def named_path(name: str) -> Path:
    """Where the file of a pairsmith name lives in the model folder."""
    return model_folder() / NAMED[name].filename


def named_file(name_or_path: str, spec: str) -> str:
    """The local file behind a pairsmith name or a path (a remote model folder or path is copied to
    this machine once, `model_files.py`); ModelLoadError (with how to get it) if missing."""
    folder = os.environ.get("PAIRSMITH_MODELS", "")
    remote = f"{folder.rstrip('/')}/{NAMED[name_or_path].filename}" if name_or_path in NAMED else name_or_path
    if is_url(remote):
        try:
            return local_copy(remote)
        except FileNotFoundError:
            origin = f"; get it from {NAMED[name_or_path].origin}" if name_or_path in NAMED else ""
            raise ModelLoadError(f"cannot load model {spec!r}: {remote} not found{origin}") from None
    if name_or_path in NAMED:
        path = named_path(name_or_path)
        if not path.is_file():
            raise ModelLoadError(
                f"cannot load model {spec!r}: {path} not found; get it from {NAMED[name_or_path].origin} "
                "(or set PAIRSMITH_MODELS)"
            )
        return str(path)
    if not Path(name_or_path).is_file():
        raise ModelLoadError(f"cannot load model {spec!r}: {name_or_path} not found")
    return name_or_path


def is_hub_clip_spec(spec: str) -> bool:
    """A CLIP spec whose weights open_clip takes from the Hugging Face Hub (`ARCH/TAG`, `hf-hub:`)."""
    if spec.startswith("hf-hub:"):
        return True
    return spec != "toy" and "@" not in spec and not spec.startswith(("local-dir:", "/", ".")) and "/" in spec


def pullable(spec: str) -> bool:
    """Whether `pairsmith models pull SPEC` can fetch this model."""
    return spec in NAMED or is_hub_clip_spec(spec)
