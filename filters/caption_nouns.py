"""Nouns per alt-text (`caption_nouns`), PixArt-alpha's concept density, on every row with a caption."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from pairsmith.captioners.nouns import count_nouns
from pairsmith.filters.base import Annotator, Batch
from pairsmith.schemas.record import column


class CaptionNouns(Annotator):
    """The offline heuristic tagger of `captioners/nouns.py` on the alt-text."""

    fields = (
        column(
            "caption_nouns",
            pa.int32(),
            "recaption",
            "Nouns in the alt-text (PixArt-alpha's concept density: 6.4 per LAION alt-text), by the offline "
            "heuristic tagger of `captioners/nouns.py`; every row with a caption.",
        ),
    )
    needs = ("caption",)

    def annotate(self, batch: Batch) -> dict[str, list[Any]]:
        return {"caption_nouns": [count_nouns(c) for c in batch.column("caption")]}
