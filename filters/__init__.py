"""Annotators: one module per signal, each a small class over `filters.base.Annotator`."""

from __future__ import annotations

from pairsmith.filters.base import Annotator


def default_annotators() -> list[Annotator]:
    """The annotators of a run, in dependency order (later ones may read earlier columns)."""
    from pairsmith.filters.basic_rules import BasicRules
    from pairsmith.filters.caption_stats import CaptionStats
    from pairsmith.filters.image_geometry import AspectRatio
    from pairsmith.filters.language import LanguageId
    from pairsmith.filters.phash import PerceptualHash

    return [AspectRatio(), PerceptualHash(), CaptionStats(), LanguageId(), BasicRules()]
