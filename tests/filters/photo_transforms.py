"""Generated versions of a photo for the data types that a formula can produce (Udandarao et al.).

Used to test the zero-shot data-type annotator and the deterministic image measurements.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter


def _jpeg(image: Image.Image, quality: int) -> Image.Image:
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def _noise(image: Image.Image, sigma: float, seed: int = 0) -> Image.Image:
    pixels = np.asarray(image, np.float32) + np.random.default_rng(seed).normal(
        0, sigma, (image.height, image.width, 3)
    )
    return Image.fromarray(pixels.clip(0, 255).astype(np.uint8))


TRANSFORMS = {
    "normal_photo": lambda im: im,
    "left_rotate": lambda im: im.rotate(90, expand=True),
    "right_rotate": lambda im: im.rotate(-90, expand=True),
    "vertical_flip": lambda im: im.transpose(Image.Transpose.FLIP_TOP_BOTTOM),
    "gaussian_noise": lambda im: _noise(im, 60),
    "defocus_blur": lambda im: im.filter(ImageFilter.GaussianBlur(6)),
    "high_brightness": lambda im: ImageEnhance.Brightness(im).enhance(2.2),
    "low_brightness": lambda im: ImageEnhance.Brightness(im).enhance(0.25),
    "high_contrast": lambda im: ImageEnhance.Contrast(im).enhance(3.0),
    "low_contrast": lambda im: ImageEnhance.Contrast(im).enhance(0.25),
    "jpeg_compress": lambda im: _jpeg(im, 5),
}
