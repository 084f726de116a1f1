"""Estimate the IJG quality setting (1-100) a JPEG was saved with, from its quantisation tables.

IJG scales its standard luminance table by S = 5000/q (q < 50) or 200 - 2q (q >= 50); the mean
ratio of the file's table to the standard one gives S back, hence q. Header only, no decoding.
"""

from __future__ import annotations

import io

from PIL import Image

# IJG standard luminance quantisation table (ITU-T T.81, Annex K); order does not matter here.
STANDARD_LUMA = (
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
)  # fmt: skip


def estimate_jpeg_quality(data: bytes | io.BytesIO) -> int | None:
    """The estimated quality, or None if the bytes are not a JPEG with quantisation tables."""
    stream = data if isinstance(data, io.BytesIO) else io.BytesIO(data)
    try:
        with Image.open(stream) as image:
            tables = getattr(image, "quantization", None) if image.format == "JPEG" else None
    except (OSError, ValueError):
        return None
    if not tables or 0 not in tables:
        return None
    scale = 100 * sum(tables[0]) / sum(STANDARD_LUMA)
    quality = 5000 / scale if scale > 100 else (200 - scale) / 2
    return int(round(min(100, max(1, quality))))
