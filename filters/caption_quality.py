"""Caption repair (ftfy) and a flag for boilerplate alt-text that says nothing about the image."""

from __future__ import annotations

import re
from typing import Any

import pyarrow as pa

from pairsmith.filters.base import Annotator, Batch
from pairsmith.schemas.record import column

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
    from ftfy import fix_text

    return BOILERPLATE.match(fix_text(caption or "").strip()) is not None


class CaptionQuality(Annotator):
    """ftfy repair; boilerplate = file names, `IMG_1234`, `1920x1080`, "image", empty after cleaning."""

    fields = (
        column(
            "caption_fixed",
            pa.string(),
            "caption",
            "The caption repaired by ftfy (mojibake, HTML entities, odd characters).",
        ),
        column(
            "caption_boilerplate",
            pa.bool_(),
            "caption",
            "Alt-text that says nothing: a file name (`IMG_1234.jpg`), a resolution (`1920x1080`), a generic "
            "word (`image`, `photo`), or empty after cleaning.",
        ),
    )
    needs = ("caption",)

    def annotate(self, batch: Batch) -> dict[str, list[Any]]:
        from ftfy import fix_text

        captions = batch.column("caption")
        return {
            "caption_fixed": [None if c is None else fix_text(c) for c in captions],
            "caption_boilerplate": [is_boilerplate(c) for c in captions],
        }
