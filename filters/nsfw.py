"""NSFW likelihood, `nsfw_score` in [0, 1], by one of two detectors (the model spec says which).

- NudeNet (ships offline in its PyPI package): an ONNX body-part detector; the score is the highest
  confidence of an *exposed* intimate part (covered parts, faces and feet do not count), and every
  detected class is kept in `nsfw_classes`.
- LAION's `punsafe`: an MLP on the primary CLIP model's image embedding (B/32: 512-32-32-1, L/14:
  768-64-512-256-1, sigmoid), weights as a torch state_dict converted from LAION's release. LAION
  recommends keeping `punsafe < 0.5` (../shared/ANCHORS.md); the same reading applies to NudeNet's score.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from pairsmith.filters.base import Annotator, Batch
from pairsmith.filters.clip_heads import ClipEmbeddingHead
from pairsmith.filters.named_weights import named_file
from pairsmith.schemas.errors import ModelLoadError
from pairsmith.schemas.record import column

UNSAFE_CLASSES = frozenset(
    {
        "FEMALE_BREAST_EXPOSED",
        "FEMALE_GENITALIA_EXPOSED",
        "MALE_GENITALIA_EXPOSED",
        "BUTTOCKS_EXPOSED",
        "ANUS_EXPOSED",
    }
)
NSFW_FIELDS = (
    column(
        "nsfw_score",
        pa.float32(),
        "scores",
        "Likelihood that the image is NSFW, in [0, 1] (NudeNet's highest exposed-part confidence, or "
        "LAION's punsafe head); LAION keeps rows under 0.5.",
    ),
    column(
        "nsfw_classes", pa.list_(pa.string()), "scores", "Body-part classes NudeNet detected (NudeNet only)."
    ),
)


class NudeNetNsfw(Annotator):
    """NudeNet (offline ONNX): the highest *exposed* body-part confidence; LAION keeps `< 0.5`."""

    fields = NSFW_FIELDS
    reads_image = True
    model = "nsfw"
    model_id = "nudenet-3 320n.onnx"

    def __init__(self, batch_size: int = 8, device: str = "auto"):
        self.batch_size, self.device = batch_size, device

    @classmethod
    def accepts(cls, spec: Any) -> bool:
        return spec == "nudenet"

    @classmethod
    def configure(cls, run, spec: str) -> list[NudeNetNsfw]:
        return [cls(device=run.models.device)]

    def setup(self) -> None:
        from nudenet import NudeDetector

        from pairsmith.filters.devices import onnx_providers

        self.detector = NudeDetector()  # NudeNet 3 ignores its `providers` argument: a CPU session
        self.providers = onnx_providers(self.device)
        if self.providers != ["CPUExecutionProvider"]:  # onnxruntime-gpu and a GPU: the CUDA provider
            from pathlib import Path

            import nudenet
            import onnxruntime

            path = str(Path(nudenet.__file__).parent / "320n.onnx")  # the model NudeDetector() loads
            self.detector.onnx_session = onnxruntime.InferenceSession(path, providers=self.providers)

    def annotate(self, batch: Batch) -> dict[str, list[Any]]:
        rows = [i for i, img in enumerate(batch.images) if img is not None]
        bgr = [np.ascontiguousarray(np.asarray(batch.images[i])[..., ::-1]) for i in rows]
        found = self.detector.detect_batch(bgr, batch_size=self.batch_size) if bgr else []
        scores: list[float | None] = [None] * len(batch)
        classes: list[list[str] | None] = [None] * len(batch)
        for row, detections in zip(rows, found, strict=True):
            scores[row] = max((d["score"] for d in detections if d["class"] in UNSAFE_CLASSES), default=0.0)
            classes[row] = sorted({d["class"] for d in detections})
        return {"nsfw_score": scores, "nsfw_classes": classes}


class NsfwHead(ClipEmbeddingHead):
    """LAION's punsafe MLP on the primary CLIP model's image embeddings; LAION keeps `< 0.5`."""

    fields = NSFW_FIELDS
    model = "nsfw"
    sigmoid = True

    @classmethod
    def accepts(cls, spec: Any) -> bool:
        return spec not in ("none", "nudenet")

    @classmethod
    def check(cls, run, spec: str) -> dict[str, str]:
        if not run.clips:
            raise ModelLoadError(f"models.nsfw={spec!r} reads CLIP embeddings, but the run has no CLIP model")
        named_file(spec, spec)
        return {"nsfw": spec}

    @classmethod
    def configure(cls, run, spec: str) -> list[NsfwHead]:
        return [cls(spec, run.clips[0])]
