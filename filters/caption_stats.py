"""Caption length in characters and words."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from pairsmith.filters.base import Annotator, Batch
from pairsmith.schemas.record import column


class CaptionStats(Annotator):
    """Lengths of the stripped caption."""

    fields = (
        column("caption_chars", pa.int32(), "caption", "Caption length in characters (after stripping)."),
        column("caption_words", pa.int32(), "caption", "Caption length in whitespace-separated words."),
    )
    needs = ("caption",)

    def annotate(self, batch: Batch) -> dict[str, list[Any]]:
        texts = [(c or "").strip() for c in batch.column("caption")]
        return {
            "caption_chars": [len(t) for t in texts],
            "caption_words": [len(t.split()) for t in texts],
        }
