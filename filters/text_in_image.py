"""Text in the image: RapidOCR (ONNX, ships offline) boxes and text.

OCR costs far more than every other annotator (~430 ms per image on 2 CPU cores, 90 % of the
annotate pass), and most web images hold no text, so by default (`annotate.ocr=gated`) a
detection-only pass at <= 320 px (~25 ms) decides whether the full detection + recognition pass runs;
`always` skips the check, `off` leaves the columns null. Measure with `benchmarks/annotate_cost.py`.
The check can miss small, low-contrast text (scikit-image's chalk-board `text` photo is one); use
`always` where that matters.

RapidOCR runs on the CPU on every machine (also with `models.device=cuda`): its CUDA provider settings
search cuDNN's convolution algorithms exhaustively for every new input shape, and OCR inputs change
shape with every image; RapidOCR's own advice for a GPU is its Paddle build.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
from PIL import Image

from pairsmith.filters.base import ImageAnnotator
from pairsmith.schemas.record import column

CHECK_SIDE = 320


def polygon_area(points) -> float:
    """Shoelace area of a box given as its corner points."""
    xs, ys = np.asarray(points, float).T
    return 0.5 * abs(np.dot(xs, np.roll(ys, 1)) - np.dot(ys, np.roll(xs, 1)))


class TextInImage(ImageAnnotator):
    """RapidOCR (offline ONNX); `annotate.ocr=gated` (default) runs the full OCR only where a detection
    pass at <= 320 px finds text: about 25 ms instead of ~430 ms per text-free image here."""

    thread_safe = False  # one RapidOCR pipeline per worker; onnxruntime threads inside it already

    fields = (
        column(
            "text_area_ratio",
            pa.float32(),
            "image",
            "Share of the image covered by text boxes found by RapidOCR (sum of box areas, capped at 1); "
            "0 when the gated check finds no text; null with `annotate.ocr=off`.",
        ),
        column(
            "ocr_text",
            pa.string(),
            "image",
            "Text read by RapidOCR, in reading order, at most 500 characters.",
        ),
    )
    model_id = "rapidocr-onnxruntime (PP-OCR det+rec)"

    def __init__(self, gated: bool = True, max_chars: int = 500):
        self.gated, self.max_chars = gated, max_chars

    @classmethod
    def configure(cls, run, spec) -> list[TextInImage]:
        return [] if run.annotate.ocr == "off" else [cls(gated=run.annotate.ocr == "gated")]

    def setup(self) -> None:
        from rapidocr_onnxruntime import RapidOCR

        self.engine = RapidOCR()
        # RapidOCR's detector upscales to >= 736 px by default; the check runs at <= 320 px instead.
        self.check = RapidOCR(det_limit_side_len=CHECK_SIDE, det_limit_type="max")

    def likely_has_text(self, image: Image.Image) -> bool:
        boxes, _ = self.check(np.asarray(image), use_det=True, use_cls=False, use_rec=False)
        return bool(boxes)

    def annotate_image(self, image: Image.Image) -> dict[str, Any]:
        if self.gated and not self.likely_has_text(image):
            return {"text_area_ratio": 0.0, "ocr_text": ""}
        result, _ = self.engine(np.asarray(image))
        result = result or []
        area = sum(polygon_area(box) for box, _, _ in result)
        return {
            "text_area_ratio": min(1.0, area / (image.width * image.height)),
            "ocr_text": " ".join(text for _, text, _ in result)[: self.max_chars],
        }
