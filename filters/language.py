"""Caption language and its probability, with langid's normalised-probability model (offline)."""

from __future__ import annotations

from typing import Any

from langid.langid import LanguageIdentifier, model

from pairsmith.filters.base import Annotator, Batch
from pairsmith.schemas.record import FIELDS


class LanguageId(Annotator):
    fields = tuple(f for f in FIELDS if f.name in ("lang", "lang_score"))
    model_id = "langid-1.1.6-norm_probs"

    def setup(self) -> None:
        self._identifier = LanguageIdentifier.from_modelstring(model, norm_probs=True)

    def annotate(self, batch: Batch) -> dict[str, list[Any]]:
        langs, scores = [], []
        for caption in batch.column("caption"):
            text = (caption or "").strip()
            if sum(ch.isalpha() for ch in text) < 3:  # "1920x1080", "IMG_1": nothing to identify
                langs.append(None)
                scores.append(None)
                continue
            lang, prob = self._identifier.classify(text[:2000])
            langs.append(lang)
            scores.append(float(prob))
        return {"lang": langs, "lang_score": scores}
