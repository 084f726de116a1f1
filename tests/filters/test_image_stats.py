"""The deterministic image measurements against the transformations applied to real photos."""

import io

import pytest
from PIL import Image, ImageEnhance, ImageFilter
from skimage import data

from pairsmith.filters.base import Batch
from pairsmith.filters.image_stats import ImageStats
from pairsmith.filters.jpeg_quality import estimate_jpeg_quality

PHOTOS = [
    Image.fromarray(getattr(data, name)()).convert("RGB")
    for name in ("astronaut", "coffee", "chelsea", "rocket")
]


def _stats(images):
    out = ImageStats()(Batch({"caption": [""] * len(images)}, images))
    return {name: array.to_pylist() for name, array in out.items()}


@pytest.mark.parametrize("photo", PHOTOS, ids=["astronaut", "coffee", "chelsea", "rocket"])
def test_measurements_follow_the_transformation(photo):
    blurred = photo.filter(ImageFilter.GaussianBlur(3))
    bright = ImageEnhance.Brightness(photo).enhance(1.6)
    dark = ImageEnhance.Brightness(photo).enhance(0.4)
    flat = ImageEnhance.Contrast(photo).enhance(0.3)
    grey = photo.convert("L").convert("RGB")
    s = _stats([photo, blurred, bright, dark, flat, grey])
    assert s["sharpness"][1] < 0.3 * s["sharpness"][0]
    assert s["brightness"][2] > s["brightness"][0] > s["brightness"][3]
    assert s["contrast"][4] < 0.5 * s["contrast"][0]
    assert s["colourfulness"][5] < 1e-3 < s["colourfulness"][0]
    assert not any(s["near_uniform"])


def test_near_uniform_is_capros_rule():
    blank = Image.new("RGB", (300, 200), (240, 240, 240))
    icon = blank.copy()
    icon.paste((0, 0, 0), (140, 90, 160, 110))  # a small mark: still >= 80 % one grey value
    half = blank.copy()
    half.paste((0, 0, 0), (0, 0, 150, 200))
    assert _stats([blank, icon, half, None])["near_uniform"] == [True, True, False, None]


@pytest.mark.parametrize("quality", [30, 50, 75, 90, 95])
def test_jpeg_quality_is_recovered_from_the_file(quality):
    buf = io.BytesIO()
    PHOTOS[0].save(buf, "JPEG", quality=quality)
    assert abs(estimate_jpeg_quality(buf.getvalue()) - quality) <= 2


def test_jpeg_quality_is_null_for_other_formats():
    buf = io.BytesIO()
    PHOTOS[0].save(buf, "PNG")
    assert estimate_jpeg_quality(buf.getvalue()) is None
    assert estimate_jpeg_quality(b"not an image") is None
