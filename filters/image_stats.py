"""Cheap deterministic image measurements, where a formula is reliable.

- sharpness: variance of the Laplacian of the grey image at 256 px on the long side (blur -> low);
- brightness, contrast: mean and standard deviation of luma in [0, 1];
- colourfulness: Hasler and Suesstrunk (2003), 0 for grey images, ~100+ for vivid ones;
- near_uniform: CAPro's rule, >= 80 % of pixels share one grey value after a 64x64 resize.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
from PIL import Image

from pairsmith.filters.base import ImageAnnotator, grey
from pairsmith.schemas.record import column

NEAR_UNIFORM_SHARE = 0.8  # CAPro: >= 80% pixels one grey value after 64x64 resize


def laplacian_variance(grey: np.ndarray) -> float:
    """Variance of the 4-neighbour Laplacian (the usual focus measure)."""
    g = grey.astype(np.float32)
    lap = g[1:-1, :-2] + g[1:-1, 2:] + g[:-2, 1:-1] + g[2:, 1:-1] - 4 * g[1:-1, 1:-1]
    return float(lap.var())


def colourfulness(rgb: np.ndarray) -> float:
    r, g, b = (rgb[..., i].astype(np.float32) for i in range(3))
    rg, yb = r - g, 0.5 * (r + g) - b
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


class ImageStats(ImageAnnotator):
    """Formulas: variance of the Laplacian, luma statistics, Hasler-Suesstrunk, CAPro's near-uniform rule."""

    fields = (
        column(
            "sharpness",
            pa.float32(),
            "image",
            "Variance of the Laplacian of the grey image at 256 px (low = blurry).",
        ),
        column("brightness", pa.float32(), "image", "Mean luma in [0, 1]."),
        column("contrast", pa.float32(), "image", "Standard deviation of luma in [0, 1]."),
        column("colourfulness", pa.float32(), "image", "Hasler-Suesstrunk colourfulness (0 = grey)."),
        column(
            "near_uniform",
            pa.bool_(),
            "image",
            "CAPro: >= 80 % of pixels one grey value after a 64x64 resize.",
        ),
    )

    def annotate_image(self, image: Image.Image) -> dict[str, Any]:
        scale = 256 / max(image.size)
        work = (
            image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))))
            if scale < 1
            else image
        )
        rgb = np.asarray(work)
        work_grey = np.asarray(work.convert("L"))
        luma = work_grey.astype(np.float32) / 255
        small = np.asarray(grey(image).resize((64, 64)))
        share = np.bincount(small.ravel(), minlength=256).max() / small.size
        return {
            "sharpness": laplacian_variance(work_grey) if min(work_grey.shape) >= 3 else None,
            "brightness": float(luma.mean()),
            "contrast": float(luma.std()),
            "colourfulness": colourfulness(rgb),
            "near_uniform": bool(share >= NEAR_UNIFORM_SHARE),
        }
