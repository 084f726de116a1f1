"""The published per-pair rules of LAION-5B, DataComp (basic filter) and ALIGN, as flags.

Numbers from ../shared/ANCHORS.md. A flag is None when a rule needs an image the row does not have.
DataComp's flag is computed as DataComp's own code does (`baselines/apply_filter.py`,
`load_uids_with_basic_filter_helper`): fastText's language (`lang_fasttext`), `len(text.split()) > 2`
and `len(text) > 5` on the raw caption (not stripped), and the original width and height with aspect
`max(w, h) / min(w, h) <= 3.0`.
ALIGN's last rule (a caption shared by at most 10 images) needs the whole dataset: the caption-sharing
stage applies it with `complete_align`.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from pairsmith.filters.base import Annotator, Batch
from pairsmith.schemas.record import column

LAION_MIN_CAPTION_CHARS = 5  # LAION-5B: drop alt-text under 5 chars
LAION_MIN_IMAGE_BYTES = 5 * 1024  # LAION-5B: drop images under 5 KB
DATACOMP_MIN_WORDS_EXCLUSIVE = 2  # DataComp basic: > 2 words
DATACOMP_MIN_CHARS_EXCLUSIVE = 5  # DataComp basic: > 5 chars
DATACOMP_MIN_SIDE = 200  # DataComp basic: min side >= 200
DATACOMP_MAX_ASPECT = 3.0  # DataComp basic: aspect <= 3
ALIGN_MIN_SIDE_EXCLUSIVE = 200  # ALIGN: shorter side > 200 px
ALIGN_MAX_ASPECT_EXCLUSIVE = 3.0  # ALIGN: aspect ratio < 3
ALIGN_WORDS = (3, 20)  # ALIGN: drop texts with < 3 or > 20 unigrams
ALIGN_MAX_SHARED = 10  # ALIGN: drop alt-texts shared by > 10 images


def complete_align(align_ok: pa.Array | pa.ChunkedArray, shared: pa.Array) -> pa.Array | pa.ChunkedArray:
    """`align_ok` with ALIGN's sharing rule added, given each row's `caption_shared_count`."""
    import pyarrow.compute as pc

    within = pc.fill_null(pc.less_equal(shared, ALIGN_MAX_SHARED), True)  # no caption: nothing shared
    return pc.and_kleene(align_ok, within)


def datacomp_basic(caption: str | None, lang_fasttext: str | None, width: int, height: int) -> bool:
    """DataComp's basic filter on one row, as its code computes it (raw caption, original size)."""
    text = caption or ""
    short, long = min(width, height), max(width, height)
    return (
        lang_fasttext == "en"
        and len(text.split()) > DATACOMP_MIN_WORDS_EXCLUSIVE
        and len(text) > DATACOMP_MIN_CHARS_EXCLUSIVE
        and short >= DATACOMP_MIN_SIDE
        and long / short <= DATACOMP_MAX_ASPECT
    )


class BasicRules(Annotator):
    """Flags, never drops."""

    fields = (
        column(
            "laion_basic_ok",
            pa.bool_(),
            "rules",
            "LAION-5B basic rule: caption >= 5 chars and image file >= 5 KB (CLIP threshold comes with CLIP).",
        ),
        column(
            "datacomp_basic_ok",
            pa.bool_(),
            "rules",
            "DataComp basic filter, counted as DataComp's code does: fastText says English (`lang_fasttext`), "
            "> 2 words (`str.split()`) and > 5 characters of the raw caption, original short side >= 200 px, "
            "original long side / short side <= 3.",
        ),
        column(
            "align_ok",
            pa.bool_(),
            "rules",
            "ALIGN's rules: short side > 200 px, aspect ratio < 3, 3..20 words, caption shared by at most 10 "
            "images (the last one filled by the global caption-sharing stage).",
        ),
    )
    needs = (
        "caption",
        "caption_chars",
        "caption_words",
        "lang_fasttext",
        "original_width",
        "original_height",
        "aspect_ratio",
        "image_bytes",
    )

    def annotate(self, batch: Batch) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {f.name: [] for f in self.fields}
        rows = zip(*(batch.column(name) for name in self.needs), strict=True)
        for caption, chars, words, lang_fasttext, w, h, aspect, nbytes in rows:
            has_image = w is not None and h is not None and nbytes is not None
            side = min(w, h) if has_image else None
            out["laion_basic_ok"].append(
                chars >= LAION_MIN_CAPTION_CHARS and nbytes >= LAION_MIN_IMAGE_BYTES if has_image else None
            )
            out["datacomp_basic_ok"].append(
                datacomp_basic(caption, lang_fasttext, w, h) if has_image else None
            )
            out["align_ok"].append(
                side > ALIGN_MIN_SIDE_EXCLUSIVE
                and aspect < ALIGN_MAX_ASPECT_EXCLUSIVE
                and ALIGN_WORDS[0] <= words <= ALIGN_WORDS[1]
                if has_image
                else None
            )
        return out
