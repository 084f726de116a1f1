"""NSFW likelihood, `nsfw_score` in [0, 1], by one of two detectors (the profile says which).

- NudeNet (ships offline in its PyPI package): an ONNX body-part detector; the score is the highest
  confidence of an *exposed* intimate part (covered parts, faces and feet do not count), and every
  detected class is kept in `nsfw_classes`.
- LAION's `punsafe`: an MLP on the CLIP image embedding (B/32: 512-32-32-1, L/14: 768-64-512-256-1,
  sigmoid), weights as a torch state_dict converted from LAION's release. LAION recommends
  keeping `punsafe < 0.5` (../shared/ANCHORS.md); the same reading applies to NudeNet's score.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from pairsmith.filters.base import Annotator, Batch
from pairsmith.filters.clip_score import ClipScore
from pairsmith.schemas.record import FIELDS

UNSAFE_CLASSES = frozenset(
    {
        "FEMALE_BREAST_EXPOSED",
        "FEMALE_GENITALIA_EXPOSED",
        "MALE_GENITALIA_EXPOSED",
        "BUTTOCKS_EXPOSED",
        "ANUS_EXPOSED",
    }
)
NSFW_FIELDS = tuple(f for f in FIELDS if f.name in ("nsfw_score", "nsfw_classes"))


class NudeNetNsfw(Annotator):
    fields = NSFW_FIELDS
    model_id = "nudenet-3 320n.onnx"

    def __init__(self, batch_size: int = 8):
        self.batch_size = batch_size

    def setup(self) -> None:
        from nudenet import NudeDetector

        self.detector = NudeDetector()

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


def mlp_from_state_dict(state: dict[str, torch.Tensor], sigmoid: bool) -> nn.Sequential:
    """A Linear-ReLU-...-Linear stack whose shapes are read from the weights (in key order)."""
    weights = [k for k in state if k.endswith("weight")]
    layers: list[nn.Module] = []
    for i, key in enumerate(weights):
        out_dim, in_dim = state[key].shape
        layers.append(nn.Linear(in_dim, out_dim))
        if i < len(weights) - 1:
            layers.append(nn.ReLU())
    if sigmoid:
        layers.append(nn.Sigmoid())
    model = nn.Sequential(*layers)
    linear = [m for m in model if isinstance(m, nn.Linear)]
    for layer, key in zip(linear, weights, strict=True):
        layer.weight.data.copy_(state[key].float())
        layer.bias.data.copy_(state[key.removesuffix("weight") + "bias"].float())
    return model.eval()


def load_head(path: str, sigmoid: bool) -> nn.Sequential:
    if not Path(path).is_file():
        raise FileNotFoundError(f"head weights not found: {path}")
    return mlp_from_state_dict(torch.load(path, map_location="cpu"), sigmoid)


class ClipEmbeddingHead(Annotator):
    """A small head on a CLIP model's image embeddings (LAION's NSFW MLP, LAION's aesthetic head)."""

    def __init__(self, column: str, path: str, clip: ClipScore, sigmoid: bool):
        self.fields = tuple(f for f in FIELDS if f.name == column) + (
            (next(f for f in NSFW_FIELDS if f.name == "nsfw_classes"),) if column == "nsfw_score" else ()
        )
        self.column, self.path, self.clip, self.sigmoid = column, path, clip, sigmoid
        self.model_id = f"{path} on {clip.spec}"

    def setup(self) -> None:
        self.head = load_head(self.path, self.sigmoid)

    @torch.inference_mode()
    def annotate(self, batch: Batch) -> dict[str, list[Any]]:
        embeddings = batch.column(f"{self.clip.dataset}/image_embedding")
        rows = [i for i, e in enumerate(embeddings) if e is not None]
        values: list[float | None] = [None] * len(batch)
        if rows:
            x = torch.tensor(np.asarray([embeddings[i] for i in rows], np.float32))
            for row, value in zip(rows, self.head(x).squeeze(-1).tolist(), strict=True):
                values[row] = float(value)
        out: dict[str, list[Any]] = {self.column: values}
        if self.column == "nsfw_score":
            out["nsfw_classes"] = [None] * len(batch)
        return out
