"""Aspect ratio of the downloaded image (long side / short side), from its original size."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from pairsmith.filters.base import Annotator, Batch
from pairsmith.schemas.record import column


class AspectRatio(Annotator):
    """Long side / short side of the downloaded image's original size."""

    fields = (
        column(
            "aspect_ratio", pa.float32(), "image", "Long side / short side of the downloaded image (>= 1)."
        ),
    )
    needs = ("original_width", "original_height")

    def annotate(self, batch: Batch) -> dict[str, list[Any]]:
        ratios = []
        for w, h in zip(batch.column("original_width"), batch.column("original_height"), strict=True):
            ratios.append(max(w, h) / min(w, h) if w and h else None)
        return {"aspect_ratio": ratios}
