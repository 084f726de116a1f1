"""Accuracy of the two caption language detectors, side by side, on held-out short captions.

    python benchmarks/lang_id.py [--markdown]

The captions (`tools/lang_gold.py`: 360 alt-text-like captions, 30 in each of 12 languages, written
by hand before either detector saw them) go through each detector exactly as pairsmith runs it:
langid (`lang`) on the stripped caption, fastText's compressed lid.176 (`lang_fasttext`, DataComp's
detector) on the raw caption. A caption counts as right when the detector's top language is its
label; langid's null (fewer than 3 letters) counts as wrong. Also: precision and recall of "en"
(what DataComp's English test and LAION's 0.28 / 0.26 split depend on), and microseconds per caption
measured in the same run.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: tools/

from pairsmith.filters.language import (  # noqa: E402
    fasttext_identifier,
    fasttext_language,
    langid_language,
    sparse_identifier,
)
from tools.lang_gold import GOLD  # noqa: E402


def detectors() -> dict[str, Callable[[str], str | None]]:
    """Name -> caption -> language, as the annotator computes `lang` and `lang_fasttext`."""
    identifier, model = sparse_identifier(), fasttext_identifier()

    def langid(text: str) -> str | None:
        found = langid_language(identifier, text)
        return found[0] if found else None

    return {"langid": langid, "fastText lid.176.ftz": lambda text: fasttext_language(model, text)[0]}


def measure(gold=GOLD) -> dict[str, dict]:
    """Per detector: `per_language` accuracy, `overall` accuracy, English `en_precision` and
    `en_recall`, `us_per_caption`, and the `wrong` (label, prediction, caption) triples."""
    out = {}
    for name, detect in detectors().items():
        start = time.perf_counter()
        predicted = [detect(caption) for _, caption in gold]
        seconds = time.perf_counter() - start
        labels = [label for label, _ in gold]
        per_language = {}
        for lang in dict.fromkeys(labels):
            pairs = [(t, p) for t, p in zip(labels, predicted, strict=True) if t == lang]
            per_language[lang] = sum(t == p for t, p in pairs) / len(pairs)
        said_en = [t for t, p in zip(labels, predicted, strict=True) if p == "en"]
        out[name] = {
            "per_language": per_language,
            "overall": sum(t == p for t, p in zip(labels, predicted, strict=True)) / len(gold),
            "en_precision": said_en.count("en") / len(said_en) if said_en else 0.0,
            "en_recall": said_en.count("en") / labels.count("en"),
            "us_per_caption": seconds / len(gold) * 1e6,
            "wrong": [(t, p, c) for (t, c), p in zip(gold, predicted, strict=True) if t != p],
        }
    return out


def table(results: dict[str, dict]) -> str:
    """The README's table: one row per language, then overall, English precision and speed."""
    names = list(results)
    langs = list(next(iter(results.values()))["per_language"])
    lines = [f"| language (captions) | {' | '.join(names)} |", "|---" * (len(names) + 1) + "|"]
    counts = {lang: sum(label == lang for label, _ in GOLD) for lang in langs}
    for lang in langs:
        cells = [f"{results[n]['per_language'][lang]:.1%}" for n in names]
        lines.append(f"| `{lang}` ({counts[lang]}) | {' | '.join(cells)} |")
    rows = [
        (f"**all** ({len(GOLD)})", "overall", "{:.1%}"),
        ('"en" precision', "en_precision", "{:.1%}"),
        ('"en" recall', "en_recall", "{:.1%}"),
        ("µs per caption", "us_per_caption", "{:.0f}"),
    ]
    for label, key, fmt in rows:
        lines.append(f"| {label} | {' | '.join(fmt.format(results[n][key]) for n in names)} |")
    return "\n".join(lines).replace("%", " %")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--markdown", action="store_true", help="only the README table")
    args = parser.parse_args()
    results = measure()
    print(table(results))
    if not args.markdown:
        for name, result in results.items():
            print(f"\n{name}: {len(result['wrong'])} wrong")
            for label, predicted, caption in result["wrong"]:
                print(f"  {label} -> {predicted}: {caption}")


if __name__ == "__main__":
    main()
