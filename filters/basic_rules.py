"""The published per-pair rules of LAION-5B, DataComp (basic filter) and ALIGN, as flags.

Numbers from ../shared/ANCHORS.md. A flag is None when a rule needs an image the row does not have.
"""

from __future__ import annotations

from typing import Any

from pairsmith.filters.base import Annotator, Batch
from pairsmith.schemas.record import FIELDS

LAION_MIN_CAPTION_CHARS = 5  # LAION-5B: drop alt-text under 5 chars
LAION_MIN_IMAGE_BYTES = 5 * 1024  # LAION-5B: drop images under 5 KB
DATACOMP_MIN_WORDS_EXCLUSIVE = 2  # DataComp basic: > 2 words
DATACOMP_MIN_CHARS_EXCLUSIVE = 5  # DataComp basic: > 5 chars
DATACOMP_MIN_SIDE = 200  # DataComp basic: min side >= 200
DATACOMP_MAX_ASPECT = 3.0  # DataComp basic: aspect <= 3
ALIGN_MIN_SIDE_EXCLUSIVE = 200  # ALIGN: shorter side > 200 px
ALIGN_MAX_ASPECT_EXCLUSIVE = 3.0  # ALIGN: aspect ratio < 3
ALIGN_WORDS = (3, 20)  # ALIGN: drop texts with < 3 or > 20 unigrams


class BasicRules(Annotator):
    """Needs `caption_chars`, `caption_words`, `lang` and `aspect_ratio` from earlier annotators."""

    fields = tuple(f for f in FIELDS if f.name in ("laion_basic_ok", "datacomp_basic_ok", "align_ok"))

    def annotate(self, batch: Batch) -> dict[str, list[Any]]:
        c = batch.columns
        out: dict[str, list[Any]] = {f.name: [] for f in self.fields}
        rows = zip(
            c["caption_chars"],
            c["caption_words"],
            c["lang"],
            c["original_width"],
            c["original_height"],
            c["aspect_ratio"],
            c["image_bytes"],
            strict=True,
        )
        for chars, words, lang, w, h, aspect, nbytes in rows:
            has_image = w is not None and h is not None and nbytes is not None
            side = min(w, h) if has_image else None
            out["laion_basic_ok"].append(
                chars >= LAION_MIN_CAPTION_CHARS and nbytes >= LAION_MIN_IMAGE_BYTES if has_image else None
            )
            out["datacomp_basic_ok"].append(
                lang == "en"
                and words > DATACOMP_MIN_WORDS_EXCLUSIVE
                and chars > DATACOMP_MIN_CHARS_EXCLUSIVE
                and side >= DATACOMP_MIN_SIDE
                and aspect <= DATACOMP_MAX_ASPECT
                if has_image
                else None
            )
            out["align_ok"].append(
                side > ALIGN_MIN_SIDE_EXCLUSIVE
                and aspect < ALIGN_MAX_ASPECT_EXCLUSIVE
                and ALIGN_WORDS[0] <= words <= ALIGN_WORDS[1]
                if has_image
                else None
            )
        return out
