"""Profiles: one name for the model of every signal.

- `toy`: pairsmith's toy zoo, offline; knows the synthetic shapes world, not real photos.
- `laion`: LAION-5B's choices (CLIP ViT-B/32 trained on LAION-2B; ../shared/ANCHORS.md).
- `datacomp`: DataComp's scoring model, CLIP ViT-L/14 from OpenAI.
- `none`: no model-based signals.
"""

from __future__ import annotations

from pairsmith.schemas.config import ClipModelConfig, ModelsConfig

PROFILES: dict[str, dict] = {
    "toy": {
        "clip": [ClipModelConfig(alias="toy", spec="toy")],
        "nsfw": "nudenet",
        "watermark": "toy",
        "aesthetic": "none",
    },
    "laion": {
        "clip": [ClipModelConfig(alias="b32", spec="ViT-B-32/laion2b_s34b_b79k")],
        "nsfw": "laion-nsfw-b32",
        "watermark": "laion-watermark",
        "aesthetic": "laion-aesthetic-l14",  # null: LAION-5B's aesthetic head needs ViT-L/14
    },
    "datacomp": {
        "clip": [ClipModelConfig(alias="l14", spec="ViT-L-14/openai")],
        "nsfw": "none",
        "watermark": "none",
        "aesthetic": "none",
    },
    "none": {"clip": [], "nsfw": "none", "watermark": "none", "aesthetic": "none"},
}


def clip_models(cfg: ModelsConfig) -> list[ClipModelConfig]:
    """The CLIP models of a run: the explicit list, else the profile's."""
    return cfg.clip if cfg.clip is not None else PROFILES[cfg.profile]["clip"]


def signal_model(cfg: ModelsConfig, signal: str) -> str:
    """The model spec of `nsfw`, `watermark` or `aesthetic`: explicit, else the profile's."""
    explicit = getattr(cfg, signal)
    return explicit if explicit is not None else PROFILES[cfg.profile][signal]


def aesthetic_clip(cfg: ModelsConfig) -> ClipModelConfig | None:
    """The CLIP model LAION's aesthetic head reads: the first ViT-L-14 of the run, if any."""
    return next((m for m in clip_models(cfg) if m.spec.startswith("ViT-L-14")), None)
