"""The selection recipes of `pairsmith select OUT --recipe NAME`, all in this one file (`--list`).

A recipe is a list of rules, each a polars expression over the record columns with where its numbers
come from (../shared/ANCHORS.md). Rules that judge image-text agreement (CLIP thresholds) are marked
`agreement`: `--target-corruption` replaces them with its corruption-ratio target, because they exist
to remove the very pairs that a target keeps on purpose.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from pairsmith.schemas.errors import RecipeError

LAION_CLIP_ENGLISH = 0.28  # LAION-5B: CLIP ViT-B/32 cosine >= 0.28 for English (laion2B-en)
LAION_CLIP_OTHER = 0.26  # LAION-5B: 0.26 for laion2B-multi and laion1B-nolang
# English by `lang`: the detector that measured better on short captions (langid; README "Caption
# language"); LAION itself used CLD3. `lang_fasttext` is DataComp's, for `datacomp_basic_ok` only.
LAION_NSFW_MAX = 0.5  # LAION's punsafe: keep < 0.5
LAION_WATERMARK_MAX = 0.8  # LAION's pwatermark: keep < 0.8
DATACOMP_TOP_SHARE = 0.3  # DataComp: CLIP score top 30 % (ViT-L/14)


@dataclass(frozen=True)
class Context:
    """What rules need from the dataset: its CLIP score columns and quantiles of a column."""

    clip: str  # the primary model's score, `clip_score`
    b32: str | None  # the column of a ViT-B/32 model's score, if the dataset has one (or --clip-column)
    quantile: Callable[[str, float], float]
    models: tuple[str, ...] = ()  # the dataset's CLIP specs, for messages

    def b32_column(self) -> str:
        if self.b32 is None:
            raise RecipeError(
                "this recipe's CLIP thresholds are for ViT-B/32 scores, and this dataset's CLIP models are "
                f"{list(self.models) or 'none'}: add one (models.clip) or pass --clip-column COLUMN to apply "
                "the thresholds to another score anyway"
            )
        return self.b32


@dataclass(frozen=True)
class Rule:
    text: str
    build: Callable[[Context], pl.Expr]
    agreement: bool = False  # an image-text agreement rule: replaced by --target-corruption


@dataclass(frozen=True)
class Recipe:
    name: str
    summary: str
    rules: tuple[Rule, ...]


SUCCESS = Rule(
    "status == success (an image was downloaded and decoded)", lambda c: pl.col("status") == "success"
)

NOT_DUPLICATE = Rule(
    "~is_duplicate: one row per duplicate group (exact, image, caption, semantic); --keep-duplicates keeps all",
    lambda c: ~pl.col("is_duplicate").fill_null(False),
)

RECIPES = {
    r.name: r
    for r in (
        Recipe(
            "laion",
            "LAION-5B (Schuhmann et al., 2022): its basic rule, its CLIP thresholds, and the cut-offs it "
            "recommends for its NSFW and watermark tags",
            (
                SUCCESS,
                Rule(
                    "laion_basic_ok: caption >= 5 characters and image file >= 5 KB",
                    lambda c: pl.col("laion_basic_ok"),
                ),
                Rule(
                    f"CLIP ViT-B/32 cosine >= {LAION_CLIP_ENGLISH} for English captions (lang == en), "
                    f">= {LAION_CLIP_OTHER} for others (another or no language)",
                    lambda c: (
                        pl.col(c.b32_column())
                        >= pl.when(pl.col("lang") == "en")
                        .then(LAION_CLIP_ENGLISH)
                        .otherwise(LAION_CLIP_OTHER)
                    ),
                    agreement=True,
                ),
                Rule(
                    f"nsfw_score < {LAION_NSFW_MAX} (punsafe)",
                    lambda c: pl.col("nsfw_score") < LAION_NSFW_MAX,
                ),
                Rule(
                    f"watermark_score < {LAION_WATERMARK_MAX} (pwatermark)",
                    lambda c: pl.col("watermark_score") < LAION_WATERMARK_MAX,
                ),
            ),
        ),
        Recipe(
            "datacomp-basic",
            "DataComp's basic filter (Gadre et al., 2023): English, > 2 words, > 5 characters, shorter "
            "side >= 200 px, aspect ratio <= 3",
            (SUCCESS, Rule("datacomp_basic_ok", lambda c: pl.col("datacomp_basic_ok"))),
        ),
        Recipe(
            "clip-top-30",
            "DataComp's CLIP score filter: the top 30 % of the pool by CLIP score (DataComp ranks with "
            "ViT-L/14; here the dataset's primary model)",
            (
                SUCCESS,
                Rule(
                    "clip_score >= the dataset's 70th percentile",
                    lambda c: pl.col(c.clip) >= c.quantile(c.clip, 1 - DATACOMP_TOP_SHARE),
                    agreement=True,
                ),
            ),
        ),
    )
}


def get_recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise RecipeError(f"unknown recipe {name!r}; known: {', '.join(RECIPES)} (pairsmith select --list)")
    return RECIPES[name]


def describe() -> str:
    """What `pairsmith select --list` prints."""
    lines = []
    for recipe in RECIPES.values():
        lines += [f"{recipe.name}: {recipe.summary}"]
        for rule in recipe.rules:
            note = "   [agreement: replaced by --target-corruption]" if rule.agreement else ""
            lines.append(f"  - {rule.text}{note}")
        lines += [f"  - {NOT_DUPLICATE.text}   [after --where; every selection]", ""]
    lines.append(
        "--target-corruption R: after the recipe's other rules, drop the pairs most likely mismatched "
        "until the mean corruption_score of the rest (their estimated corruption ratio) is R."
    )
    return "\n".join(lines)
