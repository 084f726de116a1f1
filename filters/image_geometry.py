"""Aspect ratio of the downloaded image (long side / short side), from its original size."""

from __future__ import annotations

from typing import Any

from pairsmith.filters.base import Annotator, Batch
from pairsmith.schemas.record import FIELDS


class AspectRatio(Annotator):
    fields = tuple(f for f in FIELDS if f.name == "aspect_ratio")

    def annotate(self, batch: Batch) -> dict[str, list[Any]]:
        ratios = []
        for w, h in zip(batch.column("original_width"), batch.column("original_height"), strict=True):
            ratios.append(max(w, h) / min(w, h) if w and h else None)
        return {"aspect_ratio": ratios}
