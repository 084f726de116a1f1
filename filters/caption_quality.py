"""Caption repair (ftfy) and a flag for boilerplate alt-text that says nothing about the image."""

from __future__ import annotations

import re
from typing import Any

import ftfy

from pairsmith.filters.base import Annotator, Batch
from pairsmith.schemas.record import FIELDS

BOILERPLATE = re.compile(
    r"""^(?:
        .*\.(?:jpe?g|png|gif|webp|bmp|tiff?|heic)          # a file name
      | (?:img|dsc|dscn|dcim|pxl|p|photo|image|screenshot)[\s_-]*\d+.*  # camera and app file stems
      | \d{2,5}\s*[x×]\s*\d{2,5}(?:\s*px)?                # a resolution
      | (?:an?\s+)?(?:image|photo|picture|pic|img|photograph|thumbnail|untitled|placeholder|
         default|null|none|n/?a|undefined|logo|icon|banner)s?  # a generic word
      | [\W\d_]*                                           # nothing left but digits and punctuation
    )$""",
    re.IGNORECASE | re.VERBOSE,
)


def is_boilerplate(caption: str | None) -> bool:
    """True for alt-text such as `IMG_1234.jpg`, `1920x1080`, `image`, or empty after cleaning."""
    return BOILERPLATE.match(ftfy.fix_text(caption or "").strip()) is not None


class CaptionQuality(Annotator):
    fields = tuple(f for f in FIELDS if f.name in ("caption_fixed", "caption_boilerplate"))

    def annotate(self, batch: Batch) -> dict[str, list[Any]]:
        captions = batch.column("caption")
        return {
            "caption_fixed": [None if c is None else ftfy.fix_text(c) for c in captions],
            "caption_boilerplate": [is_boilerplate(c) for c in captions],
        }
