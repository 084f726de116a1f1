"""LAION's watermark detector architecture: a timm backbone with a 3-layer head, softmax class 0.

LAION's released detector (../shared/ANCHORS.md): timm `efficientnet_b3a`, 256x256 input, ImageNet
normalisation, head 1536-625-256-2, P(watermark) = softmax(logits)[:, 0]. The toy zoo's detector is
the same construction on a tiny timm backbone; a JSON file next to the weights says which.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import timm
import torch
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class WatermarkConfig:
    """What the weights need around them: backbone, input size and normalisation."""

    arch: str = "efficientnet_b3a"
    input_size: int = 256
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    @classmethod
    def read(cls, path: Path) -> WatermarkConfig:
        data = json.loads(Path(path).read_text())
        return cls(data["arch"], data["input_size"], tuple(data["mean"]), tuple(data["std"]))


def build_watermark_model(arch: str = "efficientnet_b3a") -> nn.Module:
    """The timm backbone with LAION's head (num_features -> 625 -> 256 -> 2), untrained."""
    model = timm.create_model(arch, pretrained=False, num_classes=2)
    model.classifier = nn.Sequential(
        nn.Linear(model.num_features, 625),
        nn.ReLU(),
        nn.Dropout(p=0.1),
        nn.Linear(625, 256),
        nn.ReLU(),
        nn.Linear(256, 2),
    )
    return model


def load_watermark_model(weights: str | Path, config: WatermarkConfig) -> nn.Module:
    """The detector with its weights (a torch state_dict), in eval mode."""
    weights = Path(weights)
    if not weights.is_file():
        raise FileNotFoundError(f"watermark weights not found: {weights}")
    model = build_watermark_model(config.arch)
    model.load_state_dict({k: v.float() for k, v in torch.load(weights, map_location="cpu").items()})
    return model.eval()


def watermark_probability(logits: torch.Tensor) -> torch.Tensor:
    """P(watermark): LAION's detector puts 'watermark' in class 0."""
    return logits.softmax(-1)[:, 0]


def watermark_transform(config: WatermarkConfig):
    """PIL image -> normalised tensor at the detector's input size (LAION resizes to a square)."""
    from torchvision import transforms

    return transforms.Compose(
        [
            transforms.Resize((config.input_size, config.input_size)),
            transforms.ToTensor(),
            transforms.Normalize(config.mean, config.std),
        ]
    )
