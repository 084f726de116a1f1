"""RapidOCR on real photos with and without text (scikit-image's page and text, rendered captions)."""

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont
from skimage import data

from pairsmith.filters.base import Batch
from pairsmith.filters.text_in_image import TextInImage


def _rgb(name: str) -> Image.Image:
    return Image.fromarray(np.asarray(getattr(data, name)())).convert("RGB")


def _with_caption(photo: Image.Image, text: str) -> Image.Image:
    image = photo.copy()
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, image.height - 70, image.width, image.height), fill="white")
    draw.text((20, image.height - 60), text, font=ImageFont.load_default(size=44), fill="black")
    return image


@pytest.fixture(scope="module", params=[True, False], ids=["gated", "always"])
def ocr(request):
    annotator = TextInImage(gated=request.param)
    annotator.setup()
    return annotator


def test_text_is_found_where_there_is_text_and_not_elsewhere(ocr):
    images = [_rgb("page"), _with_caption(_rgb("astronaut"), "HELLO WORLD"), _rgb("coffee"), None]
    out = ocr(Batch({"caption": [""] * 4}, images))
    ratios, texts = out["text_area_ratio"].to_pylist(), out["ocr_text"].to_pylist()
    assert ratios[0] > 0.2 and "segmentation" in texts[0].lower()
    assert 0.01 < ratios[1] < 0.3 and "HELLO" in texts[1].upper()
    assert ratios[2] == 0.0 and texts[2] == ""
    assert ratios[3] is None and texts[3] is None


def test_always_reads_low_contrast_handwriting_that_the_cheap_check_can_miss():
    ocr = TextInImage(gated=False)
    ocr.setup()
    out = ocr(Batch({"caption": [""]}, [_rgb("text")]))
    assert out["text_area_ratio"][0].as_py() > 0 and out["ocr_text"][0].as_py()
