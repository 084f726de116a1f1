"""Annotators: one module per signal, each a small class over `filters.base.Annotator`."""

from __future__ import annotations

from pairsmith.filters.base import Annotator
from pairsmith.schemas.config import AnnotateConfig, ModelsConfig


def build_annotators(models: ModelsConfig, annotate: AnnotateConfig) -> list[Annotator]:
    """The annotators of a run, in dependency order (later ones may read earlier columns).

    Cheap to call: models load in each annotator's `setup`, once per worker.
    """
    from pairsmith.filters.basic_rules import BasicRules
    from pairsmith.filters.caption_quality import CaptionQuality
    from pairsmith.filters.caption_stats import CaptionStats
    from pairsmith.filters.clip_score import ClipScore
    from pairsmith.filters.data_type import DataType
    from pairsmith.filters.image_geometry import AspectRatio
    from pairsmith.filters.image_stats import ImageStats
    from pairsmith.filters.language import LanguageId
    from pairsmith.filters.phash import PerceptualHash
    from pairsmith.filters.profiles import clip_models
    from pairsmith.filters.text_in_image import TextInImage

    clips = [
        ClipScore(m.alias, m.spec, primary=i == 0, device=models.device, precision=models.precision)
        for i, m in enumerate(clip_models(models))
    ]
    ocr = [TextInImage(gated=annotate.ocr == "gated")] if annotate.ocr != "off" else []
    cheap = [
        AspectRatio(),
        PerceptualHash(),
        ImageStats(),
        *ocr,
        CaptionStats(),
        CaptionQuality(),
        LanguageId(),
    ]
    data_type = [DataType(clips[0])] if clips else []
    return [*cheap, BasicRules(), *clips, *data_type]


def check_models(models: ModelsConfig) -> dict[str, str]:
    """Fail before any work if a model cannot be loaded here; returns alias -> spec for the manifest."""
    from pairsmith.filters.clip_models import resolve
    from pairsmith.filters.profiles import clip_models

    aliases = [m.alias for m in clip_models(models)]
    if len(set(aliases)) != len(aliases):
        from pairsmith.schemas.config import ConfigError

        raise ConfigError(f"models.clip: aliases must be unique, got {aliases}")
    for m in clip_models(models):
        resolve(m.spec)
    return {f"clip/{m.alias}": m.spec for m in clip_models(models)}
