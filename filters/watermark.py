"""`watermark_score`: P(watermark) from LAION's detector construction (see `watermark_model`).

Specs: `toy` (the toy zoo's detector), `CONFIG.json@WEIGHTS.pt`, or `laion-watermark` (LAION's
`watermark_model_v1.pt`: efficientnet_b3a at 256 px, from the pairsmith model folder).
"""

from __future__ import annotations

from typing import Any

import torch

from pairsmith.filters.base import Annotator, Batch
from pairsmith.filters.clip_models import TOY_ZOO
from pairsmith.filters.named_weights import named_file
from pairsmith.filters.watermark_model import (
    WatermarkConfig,
    load_watermark_model,
    watermark_probability,
    watermark_transform,
)
from pairsmith.schemas.record import FIELDS

TOY_WATERMARK = f"{TOY_ZOO / 'toy-watermark.json'}@{TOY_ZOO / 'toy-watermark.pt'}"


def resolve_watermark(spec: str) -> tuple[WatermarkConfig, str]:
    """(config, weights path) of a watermark spec; raises ModelLoadError if a file is missing."""
    if spec == "toy":
        spec = TOY_WATERMARK
    if "@" in spec:
        config_path, weights = spec.split("@", 1)
        named_file(config_path, spec)
        return WatermarkConfig.read(config_path), named_file(weights, spec)
    return WatermarkConfig(), named_file(spec, spec)


class Watermark(Annotator):
    fields = tuple(f for f in FIELDS if f.name == "watermark_score")

    def __init__(self, spec: str, device: str = "cpu"):
        self.spec, self.device, self.model_id = spec, device, spec

    def setup(self) -> None:
        config, weights = resolve_watermark(self.spec)
        self.model = load_watermark_model(weights, config).to(self.device)
        self.transform = watermark_transform(config)

    @torch.inference_mode()
    def annotate(self, batch: Batch) -> dict[str, list[Any]]:
        rows = [i for i, img in enumerate(batch.images) if img is not None]
        scores: list[float | None] = [None] * len(batch)
        if rows:
            pixels = torch.stack([self.transform(batch.images[i]) for i in rows]).to(self.device)
            for row, p in zip(rows, watermark_probability(self.model(pixels)).tolist(), strict=True):
                scores[row] = float(p)
        return {"watermark_score": scores}
