"""Annotators: one module per signal, each a small class over `filters.base.Annotator`."""

from __future__ import annotations

from pairsmith.filters.base import Annotator
from pairsmith.filters.clip_models import ModelLoadError
from pairsmith.schemas.config import AnnotateConfig, ModelsConfig, RecaptionConfig


def caption_annotators() -> list[Annotator]:
    """The annotators that read only the caption (rerun by `pairsmith corrupt` on replaced captions)."""
    from pairsmith.filters.caption_quality import CaptionQuality
    from pairsmith.filters.caption_stats import CaptionStats
    from pairsmith.filters.language import LanguageId

    return [CaptionStats(), CaptionQuality(), LanguageId()]


def build_annotators(
    models: ModelsConfig, annotate: AnnotateConfig, recaption: RecaptionConfig | None = None
) -> list[Annotator]:
    """The annotators of a run, in dependency order (later ones may read earlier columns).

    Cheap to call: models load in each annotator's `setup`, once per worker.
    """
    from pairsmith.filters.basic_rules import BasicRules
    from pairsmith.filters.clip_score import ClipScore
    from pairsmith.filters.data_type import DataType
    from pairsmith.filters.image_geometry import AspectRatio
    from pairsmith.filters.image_stats import ImageStats
    from pairsmith.filters.phash import PerceptualHash
    from pairsmith.filters.profiles import aesthetic_clip, clip_models, signal_model
    from pairsmith.filters.text_in_image import TextInImage
    from pairsmith.filters.watermark import Watermark

    configs = clip_models(models)
    clips = [
        ClipScore(m.alias, m.spec, primary=i == 0, device=models.device, precision=models.precision)
        for i, m in enumerate(configs)
    ]
    ocr = [TextInImage(gated=annotate.ocr == "gated")] if annotate.ocr != "off" else []
    cheap = [
        AspectRatio(),
        PerceptualHash(),
        ImageStats(),
        *ocr,
        *caption_annotators(),
    ]
    heads: list[Annotator] = [DataType(clips[0])] if clips else []
    nsfw, watermark, aesthetic = (signal_model(models, s) for s in ("nsfw", "watermark", "aesthetic"))
    if nsfw == "nudenet":
        from pairsmith.filters.nsfw import NudeNetNsfw

        heads.append(NudeNetNsfw())
    elif nsfw != "none" and clips:
        from pairsmith.filters.nsfw import ClipEmbeddingHead

        heads.append(ClipEmbeddingHead("nsfw_score", nsfw, clips[0], sigmoid=True))
    if watermark != "none":
        heads.append(Watermark(watermark))
    l14 = aesthetic_clip(models)
    if aesthetic != "none" and l14 is not None:
        from pairsmith.filters.nsfw import ClipEmbeddingHead

        heads.append(
            ClipEmbeddingHead("aesthetic_score", aesthetic, clips[configs.index(l14)], sigmoid=False)
        )
    from pairsmith.captioners.annotator import recaption_annotators

    recaptioners = recaption_annotators(models, recaption, clips[0] if clips else None)
    return [*cheap, BasicRules(), *clips, *heads, *recaptioners]


def check_models(models: ModelsConfig, recaption: RecaptionConfig | None = None) -> dict[str, str]:
    """Fail before any work if a model cannot be loaded here; returns what the manifest records."""
    from pairsmith.filters.clip_models import resolve
    from pairsmith.filters.named_weights import named_file
    from pairsmith.filters.profiles import aesthetic_clip, clip_models, signal_model
    from pairsmith.filters.watermark import resolve_watermark

    aliases = [m.alias for m in clip_models(models)]
    if len(set(aliases)) != len(aliases):
        from pairsmith.schemas.config import ConfigError

        raise ConfigError(f"models.clip: aliases must be unique, got {aliases}")
    ids = {}
    for m in clip_models(models):
        resolve(m.spec)
        ids[f"clip/{m.alias}"] = m.spec
    nsfw, watermark, aesthetic = (signal_model(models, s) for s in ("nsfw", "watermark", "aesthetic"))
    if nsfw not in ("none", "nudenet"):
        if not aliases:
            raise ModelLoadError(f"models.nsfw={nsfw!r} reads CLIP embeddings, but the run has no CLIP model")
        named_file(nsfw, nsfw)
    ids["nsfw"] = nsfw
    if watermark != "none":
        resolve_watermark(watermark)
    ids["watermark"] = watermark
    if aesthetic != "none" and aesthetic_clip(models) is None:
        ids["aesthetic"] = (
            f"not computed: {aesthetic} reads ViT-L-14 image embeddings and the run has no ViT-L-14 CLIP model"
        )
    elif aesthetic != "none":
        named_file(aesthetic, aesthetic)
        ids["aesthetic"] = aesthetic
    else:
        ids["aesthetic"] = "none"
    from pairsmith.captioners.annotator import check_captioner

    ids["recaption"] = check_captioner(models, recaption if recaption is not None else RecaptionConfig())
    return ids
