"""Profiles: one name for the model of every signal.

- `toy`: pairsmith's toy zoo, offline; knows the synthetic shapes world, not real photos.
- `laion`: LAION-5B's choices (CLIP ViT-B/32 trained on LAION-2B; ../shared/ANCHORS.md).
- `datacomp`: DataComp's scoring model, CLIP ViT-L/14 from OpenAI.
- `none`: no model-based signals.
"""

from __future__ import annotations

from pairsmith.schemas.config import ClipModelConfig, ModelsConfig

PROFILES: dict[str, dict[str, list[ClipModelConfig]]] = {
    "toy": {"clip": [ClipModelConfig(alias="toy", spec="toy")]},
    "laion": {"clip": [ClipModelConfig(alias="b32", spec="ViT-B-32/laion2b_s34b_b79k")]},
    "datacomp": {"clip": [ClipModelConfig(alias="l14", spec="ViT-L-14/openai")]},
    "none": {"clip": []},
}


def clip_models(cfg: ModelsConfig) -> list[ClipModelConfig]:
    """The CLIP models of a run: the explicit list, else the profile's."""
    return cfg.clip if cfg.clip is not None else PROFILES[cfg.profile]["clip"]
