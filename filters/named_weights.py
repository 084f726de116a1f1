"""Weights that have no hub name (LAION's NSFW, watermark and aesthetic heads) by pairsmith name.

A name such as `laion-watermark` is a file in the model folder (`PAIRSMITH_MODELS`, default
`~/.cache/pairsmith/models`); any other spec is a path. A missing file is a `ModelLoadError` that
says where to put it and where it comes from.
"""

from __future__ import annotations

import os
from pathlib import Path

from pairsmith.schemas.errors import ModelLoadError

NAMED = {
    "laion-watermark": (
        "watermark_model_v1.pt",
        "LAION-AI/watermark-detection, models/watermark_model_v1.pt (efficientnet_b3a state_dict)",
    ),
    "laion-nsfw-b32": (
        "laion-nsfw-b32.pt",
        "LAION-AI/CLIP-based-NSFW-Detector clip_autokeras_nsfw_b32, Dense kernels transposed to a torch state_dict",
    ),
    "laion-nsfw-l14": (
        "laion-nsfw-l14.pt",
        "LAION-AI/CLIP-based-NSFW-Detector clip_autokeras_binary_nsfw, Dense kernels transposed to a torch state_dict",
    ),
    "laion-aesthetic-l14": (
        "sa_0_4_vit_l_14_linear.pth",
        "LAION-AI/aesthetic-predictor, sa_0_4_vit_l_14_linear.pth",
    ),
}


def model_folder() -> Path:
    return Path(os.environ.get("PAIRSMITH_MODELS", Path.home() / ".cache" / "pairsmith" / "models"))


def named_file(name_or_path: str, spec: str) -> str:
    """The file behind a pairsmith name or a path; ModelLoadError (with how to get it) if missing."""
    if name_or_path in NAMED:
        filename, origin = NAMED[name_or_path]
        path = model_folder() / filename
        if not path.is_file():
            raise ModelLoadError(
                f"cannot load model {spec!r}: {path} not found; get it from {origin} (or set PAIRSMITH_MODELS)"
            )
        return str(path)
    if not Path(name_or_path).is_file():
        raise ModelLoadError(f"cannot load model {spec!r}: {name_or_path} not found")
    return name_or_path
