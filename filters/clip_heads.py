"""Small heads on a CLIP model's image embeddings (LAION's NSFW MLP and aesthetic head), as torch MLPs
whose shapes are read from the released weights (a torch state_dict)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from pairsmith.filters.base import Annotator, Batch
from pairsmith.filters.named_weights import named_file

if TYPE_CHECKING:
    import torch
    from torch import nn

    from pairsmith.filters.clip_score import ClipScore


def mlp_from_state_dict(state: dict[str, torch.Tensor], sigmoid: bool) -> nn.Sequential:
    """A Linear-ReLU-...-Linear stack whose shapes are read from the weights (in key order)."""
    from torch import nn

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


class ClipEmbeddingHead(Annotator):
    """A head (a pairsmith weights name or a path, `spec`) on the image embeddings of `clip`; its first
    field is the score, any other stays null."""

    sigmoid: ClassVar[bool]
    needs = ("image_embedding",)

    def __init__(self, spec: str, clip: ClipScore):
        self.spec, self.clip = spec, clip
        self.model_id = f"{spec} on {clip.spec}"

    def setup(self) -> None:
        import torch

        state = torch.load(named_file(self.spec, self.spec), map_location="cpu")
        self.device = self.clip.embedder.device  # where the CLIP model runs (models.device, resolved)
        self.head = mlp_from_state_dict(state, self.sigmoid).to(self.device)

    def annotate(self, batch: Batch) -> dict[str, list[Any]]:
        import torch

        from pairsmith.filters.devices import head_autocast

        embeddings = batch.column(f"{self.clip.dataset}/image_embedding")
        rows = [i for i, e in enumerate(embeddings) if e is not None]
        values: list[float | None] = [None] * len(batch)
        if rows:
            x = torch.tensor(np.asarray([embeddings[i] for i in rows], np.float32)).to(self.device)
            # fp32 on every device: a few thousand FLOPs per row, read against fixed thresholds
            with torch.inference_mode(), head_autocast(self.device, self.clip.embedder.precision):
                scores = self.head(x).squeeze(-1).tolist()
            for row, value in zip(rows, scores, strict=True):
                values[row] = float(value)
        score, *others = self.fields
        return {score.name: values} | {f.name: [None] * len(batch) for f in others}
