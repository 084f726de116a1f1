"""Caption length in characters and words."""

from __future__ import annotations

from typing import Any

from pairsmith.filters.base import Annotator, Batch
from pairsmith.schemas.record import FIELDS


class CaptionStats(Annotator):
    fields = tuple(f for f in FIELDS if f.name in ("caption_chars", "caption_words"))

    def annotate(self, batch: Batch) -> dict[str, list[Any]]:
        texts = [(c or "").strip() for c in batch.column("caption")]
        return {
            "caption_chars": [len(t) for t in texts],
            "caption_words": [len(t.split()) for t in texts],
        }
