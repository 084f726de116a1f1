"""64-bit perceptual hash of the image (imagehash.phash), for near-duplicate search."""

from __future__ import annotations

import imagehash
from PIL import Image

from pairsmith.filters.base import ImageAnnotator
from pairsmith.schemas.record import FIELDS


class PerceptualHash(ImageAnnotator):
    fields = tuple(f for f in FIELDS if f.name == "phash")
    model_id = f"imagehash-{imagehash.__version__}-phash64"

    def annotate_image(self, image: Image.Image) -> dict[str, int]:
        return {"phash": int(str(imagehash.phash(image)), 16)}
