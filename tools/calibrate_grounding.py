"""Calibrate and measure `clip` grounding (`captioners/grounding.py`) on toy scenes.

Scenes come from `filters/toy_world.py`, which knows where it drew each shape; each is recaptioned by
the toy captioner (preset `dense`, temperature 0.2, as a toy run does), and the recaption is checked
twice: as written (its phrases should be grounded) and with one absent object injected
(`, and a green star`; scenes that have a green star are left out). The margin is the one that best
separates the true phrases (those naming a drawn shape) from the injected ones on scenes of one seed
(Youden's J); the figures of another seed are held out.

    python -m tools.calibrate_grounding [--seed 70000] [--heldout 71000] [--n 400]
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from pairsmith.captioners.grounding import TOY_CLIP_MARGIN, ClipGrounder
from pairsmith.captioners.nouns import noun_phrases
from tools.train_toy_captioner import heldout_scenes, mentions
from tools.train_toy_zoo import one_thread

INJECTED = "a green star"


def iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


@one_thread()
def cases(n: int, seed: int) -> list[tuple]:
    """(image, recaption, details) of n fresh scenes without a green star, recaptioned by the toy captioner."""
    from pairsmith.captioners.hf import Generation, TransformersCaptioner
    from pairsmith.captioners.prompts import prompt_template

    scenes = [s for s in heldout_scenes(n, seed) if ("green", "star") not in [t[1:] for t in s[2]["things"]]]
    captioner = TransformersCaptioner(
        "toy", prompt_template("dense", None), Generation(48, 0.2), batch_size=32
    )
    recaptions = captioner.load().caption([s[0] for s in scenes], [s[1] for s in scenes])
    return [(image, text, details) for (image, _, details), text in zip(scenes, recaptions, strict=True)]


def _drawn(phrase: str, details: dict):
    """The box of the drawn shape a phrase names (by colour and shape), or None."""
    named = mentions(phrase)
    for (_, colour, shape), box in zip(details["things"], details["boxes"], strict=True):
        if named == [(colour, shape)]:
            return box
    return None


@one_thread()
def measure(grounder: ClipGrounder, scenes: list[tuple]) -> dict:
    """Grounding statistics of the true recaptions and the injected ones, and the figures at the
    grounder's margin."""
    images = [s[0] for s in scenes]
    true_phrases = [noun_phrases(s[1], objects_only=True) for s in scenes]
    injected = [noun_phrases(f"{s[1]}, and {INJECTED}", objects_only=True) for s in scenes]
    vectors = grounder.embed_canvases(images)
    true_stats = grounder.statistics(images, true_phrases, vectors)
    injected_stats = grounder.statistics(images, injected, vectors)
    positives, negatives, ratios, caught, overlaps = [], [], [], [], []
    for (_, _, details), phrases, stats, inj, inj_stats in zip(
        scenes, true_phrases, true_stats, injected, injected_stats, strict=True
    ):
        if phrases:
            ratios.append(np.mean([s > grounder.margin for s, _ in stats]))
        for phrase, (score, box) in zip(phrases, stats, strict=True):
            drawn = _drawn(phrase, details)
            if drawn is not None:
                positives.append(score)
                if score > grounder.margin:
                    overlaps.append(iou(box, drawn))
        score = next(s for p, (s, _) in zip(inj, inj_stats, strict=True) if p == INJECTED)
        negatives.append(score)
        caught.append(score <= grounder.margin)
    return {
        "scenes": len(scenes),
        "grounded_ratio_true": float(np.mean(ratios)),
        "injected_caught": float(np.mean(caught)),
        "iou_at_least_0.3": float(np.mean(np.array(overlaps) >= 0.3)),
        "grounded_boxes": len(overlaps),
        "positives": positives,
        "negatives": negatives,
    }


def youden_margin(positives, negatives) -> float:
    """The margin that maximises TPR - FPR (grounded: score > margin), midway between neighbours."""
    values = np.sort(np.r_[positives, negatives])
    candidates = (values[1:] + values[:-1]) / 2
    pos, neg = np.asarray(positives), np.asarray(negatives)
    j = [(pos > m).mean() - (neg > m).mean() for m in candidates]
    return float(candidates[int(np.argmax(j))])


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=70_000)
    parser.add_argument("--heldout", type=int, default=71_000)
    parser.add_argument("--n", type=int, default=400)
    args = parser.parse_args(argv)
    from pairsmith.filters.clip_models import ClipEmbedder

    grounder = ClipGrounder(ClipEmbedder("toy", "cpu")).load()
    calibration = measure(grounder, cases(args.n, args.seed))
    margin = youden_margin(calibration["positives"], calibration["negatives"])
    grounder.margin = margin
    heldout_cases = cases(args.n, args.heldout)
    heldout = measure(grounder, heldout_cases)
    grounder.margin = TOY_CLIP_MARGIN
    heldout_shipped = measure(grounder, heldout_cases)
    report = {
        "calibrated_margin": round(margin, 4),
        "shipped_margin": TOY_CLIP_MARGIN,
        "heldout_calibrated": {k: v for k, v in heldout.items() if k not in ("positives", "negatives")},
        "heldout_shipped": {k: v for k, v in heldout_shipped.items() if k not in ("positives", "negatives")},
    }
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
