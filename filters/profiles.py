"""Signals and profiles: the annotator of every signal, and the model each profile gives it.

A new signal is its module plus one line in `SIGNALS`; one that takes a model also names its model
in the profiles that run it (a profile without the key leaves the signal off). The order of `SIGNALS`
never decides what runs first (`filters.registry` orders annotators by the columns they read); it
only breaks ties, and so orders the columns of a record group.
"""

from __future__ import annotations

from pairsmith.schemas.config import ClipModelConfig, ModelsConfig

# signal -> its annotator class, "module:Class" (imported when the registry first needs it) or a class.
SIGNALS: dict[str, str | type] = {
    "aspect_ratio": "pairsmith.filters.image_geometry:AspectRatio",
    "phash": "pairsmith.filters.phash:PerceptualHash",
    "image_stats": "pairsmith.filters.image_stats:ImageStats",
    "text_in_image": "pairsmith.filters.text_in_image:TextInImage",
    "caption_stats": "pairsmith.filters.caption_stats:CaptionStats",
    "caption_quality": "pairsmith.filters.caption_quality:CaptionQuality",
    "language": "pairsmith.filters.language:LanguageId",
    "published_rules": "pairsmith.filters.basic_rules:BasicRules",
    "clip": "pairsmith.filters.clip_score:ClipScore",
    "nsfw_nudenet": "pairsmith.filters.nsfw:NudeNetNsfw",
    "nsfw_clip_head": "pairsmith.filters.nsfw:NsfwHead",
    "watermark": "pairsmith.filters.watermark:Watermark",
    "aesthetic": "pairsmith.filters.aesthetic:AestheticHead",
    "data_type": "pairsmith.filters.data_type:DataType",
    "recaption": "pairsmith.captioners.annotator:Recaption",
    "caption_nouns": "pairsmith.filters.caption_nouns:CaptionNouns",
    "recaption_nouns": "pairsmith.captioners.annotator:RecaptionNouns",
    "recaption_grounding": "pairsmith.captioners.grounding:GroundRecaption",
    "synthetic": "pairsmith.filters.synthetic:Synthetic",
}

# profile -> model key -> spec ("none": off). `clip` is a list: the first model is primary.
PROFILES: dict[str, dict] = {
    "laion": {
        "clip": [ClipModelConfig(alias="b32", spec="ViT-B-32/laion2b_s34b_b79k")],
        "nsfw": "laion-nsfw-b32",
        "watermark": "laion-watermark",
        "aesthetic": "laion-aesthetic-l14",
    },
    "datacomp": {"clip": [ClipModelConfig(alias="l14", spec="ViT-L-14/openai")]},
    "toy": {
        "clip": [ClipModelConfig(alias="toy", spec="toy")],
        "nsfw": "nudenet",
        "watermark": "toy",
        "synthetic": "toy",
        "recaption": "toy",
        "grounding": "clip",
    },
    "none": {"clip": []},
}
ABOUT = {
    "laion": "LAION-5B's choices (CLIP ViT-B/32 trained on LAION-2B; ../shared/ANCHORS.md)",
    "datacomp": "DataComp's scoring model, CLIP ViT-L/14 from OpenAI",
    "toy": "pairsmith's toy zoo, offline (demo, tests); knows the synthetic shapes world, not real photos",
    "none": "no model-based signals",
}


def profile_spec(cfg: ModelsConfig, key: str):
    """The model of signal `key`: the config's `models.<key>` where it has one, else the profile's."""
    explicit = getattr(cfg, key) if key in type(cfg).model_fields else None
    return explicit if explicit is not None else PROFILES[cfg.profile].get(key, "none")


def clip_models(cfg: ModelsConfig) -> list[ClipModelConfig]:
    """The CLIP models of a run: the explicit list, else the profile's."""
    return profile_spec(cfg, "clip")
