"""`watermark_score`: P(watermark) from LAION's detector construction (see `watermark_model`).

Specs: `toy` (the toy zoo's detector), `CONFIG.json@WEIGHTS.pt`, or `laion-watermark` (LAION's
`watermark_model_v1.pt`: efficientnet_b3a at 256 px, from the pairsmith model folder).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pyarrow as pa

from pairsmith.filters.base import Annotator, Batch
from pairsmith.filters.named_weights import named_file
from pairsmith.schemas.record import column

if TYPE_CHECKING:
    from pairsmith.filters.watermark_model import WatermarkConfig


def resolve_watermark(spec: str) -> tuple[WatermarkConfig, str]:
    """(config, weights path) of a watermark spec; raises ModelLoadError if a file is missing."""
    from pairsmith.filters.clip_models import TOY_ZOO
    from pairsmith.filters.watermark_model import WatermarkConfig

    if spec == "toy":
        spec = f"{TOY_ZOO / 'toy-watermark.json'}@{TOY_ZOO / 'toy-watermark.pt'}"
    if "@" in spec:
        config_path, weights = spec.split("@", 1)
        named_file(config_path, spec)
        return WatermarkConfig.read(config_path), named_file(weights, spec)
    return WatermarkConfig(), named_file(spec, spec)


class Watermark(Annotator):
    """LAION's detector construction (timm backbone, head to 2 classes, softmax class 0); LAION keeps `< 0.8`."""

    fields = (
        column(
            "watermark_score",
            pa.float32(),
            "scores",
            "P(watermark) from LAION's detector construction (softmax class 0); LAION keeps rows under 0.8.",
        ),
    )
    reads_image = True
    model = "watermark"

    def __init__(self, spec: str, device: str = "auto", precision: str = "auto"):
        self.spec, self.device, self.precision, self.model_id = spec, device, precision, spec

    @classmethod
    def check(cls, run, spec: str) -> dict[str, str]:
        resolve_watermark(spec)
        return {"watermark": spec}

    @classmethod
    def configure(cls, run, spec: str) -> list[Watermark]:
        return [cls(spec, run.models.device, run.models.precision)]

    def setup(self) -> None:
        from pairsmith.filters.devices import resolve_device
        from pairsmith.filters.watermark_model import load_watermark_model, watermark_transform

        self.device = resolve_device(self.device)
        config, weights = resolve_watermark(self.spec)
        self.model = load_watermark_model(weights, config).to(self.device)
        self.transform = watermark_transform(config)

    def annotate(self, batch: Batch) -> dict[str, list[Any]]:
        import torch

        from pairsmith.filters.devices import autocast
        from pairsmith.filters.watermark_model import watermark_probability

        rows = [i for i, img in enumerate(batch.images) if img is not None]
        scores: list[float | None] = [None] * len(batch)
        if rows:
            pixels = torch.stack(batch.map(self.transform, [batch.images[i] for i in rows])).to(self.device)
            # a CNN under fp16 autocast on CUDA (fp32 on the CPU); the softmax reads fp32 logits
            with torch.inference_mode(), autocast(self.device, self.precision):
                logits = self.model(pixels)
            probabilities = watermark_probability(logits.float()).tolist()
            for row, p in zip(rows, probabilities, strict=True):
                scores[row] = float(p)
        return {"watermark_score": scores}
