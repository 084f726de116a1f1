"""Annotators: one module per signal, each a small class over `filters.base.Annotator`, listed in
`filters.profiles.SIGNALS` and ordered by `filters.registry`."""

from pairsmith.filters.registry import build_annotators, caption_annotators, check_models

__all__ = ["build_annotators", "caption_annotators", "check_models"]
