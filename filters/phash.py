"""64-bit perceptual hash of the image (imagehash.phash), for near-duplicate search."""

from __future__ import annotations

from importlib.metadata import version

import pyarrow as pa
from PIL import Image

from pairsmith.filters.base import ImageAnnotator, grey
from pairsmith.schemas.record import column


class PerceptualHash(ImageAnnotator):
    """pHash (imagehash) of the stored image: near-duplicates are within a few bits."""

    fields = (
        column(
            "phash", pa.uint64(), "image", "64-bit perceptual hash (imagehash.phash) of the stored image."
        ),
    )
    model_id = f"imagehash-{version('imagehash')}-phash64"

    def annotate_image(self, image: Image.Image) -> dict[str, int]:
        import imagehash

        return {"phash": int(str(imagehash.phash(grey(image))), 16)}  # phash converts to "L" first
