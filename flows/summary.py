"""What a pairsmith output holds, signal by signal: plain functions over polars frames.

The HTML report (`flows/report.py`) renders them; `stats` can print the same numbers. Nothing here
reads files or formats text.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from pairsmith.flows.recipes import LAION_CLIP_ENGLISH, LAION_CLIP_OTHER, LAION_NSFW_MAX, LAION_WATERMARK_MAX

SYNTHETIC_MAX = 0.5  # P(generated): below it a row is taken as a photo (README, `synthetic_score`)

DUPLICATE_KINDS = {
    "exact": "dup_exact_group",
    "image": "dup_image_group",
    "caption": "dup_caption_group",
    "semantic": "dup_semantic_group",
}
QUANTILES = (0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99)


@dataclass(frozen=True)
class Threshold:
    """A published cut-off: filters keep the rows on the `keep` side ("above": >=, "below": <)."""

    value: float
    label: str
    keep: str


@dataclass(frozen=True)
class Signal:
    column: str
    label: str
    thresholds: tuple[Threshold, ...] = ()
    text: str = "caption"  # the text the signal is about, shown under its images


CLIP_THRESHOLDS = (
    Threshold(LAION_CLIP_ENGLISH, f"LAION English >= {LAION_CLIP_ENGLISH}", "above"),
    Threshold(LAION_CLIP_OTHER, f"LAION other >= {LAION_CLIP_OTHER}", "above"),
)
SIGNALS = (
    Signal("clip_score", "CLIP score, primary model (image-caption cosine)", CLIP_THRESHOLDS),
    Signal("recaption_clip_score", "CLIP score of the recaption", text="recaption"),
    Signal(
        "nsfw_score", "NSFW score", (Threshold(LAION_NSFW_MAX, f"LAION punsafe < {LAION_NSFW_MAX}", "below"),)
    ),
    Signal(
        "watermark_score",
        "watermark score",
        (Threshold(LAION_WATERMARK_MAX, f"LAION pwatermark < {LAION_WATERMARK_MAX}", "below"),),
    ),
    Signal(
        "synthetic_score",
        "AI-generated score (P(generated))",
        (Threshold(SYNTHETIC_MAX, f"P(generated) < {SYNTHETIC_MAX}", "below"),),
    ),
    Signal("aesthetic_score", "aesthetic score (1-10)"),
    Signal("corruption_score", "corruption score (probability the pair is mismatched)"),
    Signal("text_area_ratio", "share of the image covered by text"),
    Signal("sharpness", "sharpness (variance of the Laplacian; low = blurry)"),
    Signal("width", "stored width, px"),
    Signal("height", "stored height, px"),
    Signal("original_width", "downloaded width, px"),
    Signal("original_height", "downloaded height, px"),
    Signal("image_bytes", "downloaded file size, bytes"),
    Signal("caption_chars", "caption length, characters"),
    Signal("caption_words", "caption length, words"),
    Signal("caption_nouns", "nouns in the caption"),
    Signal("recaption_words", "recaption length, words", text="recaption"),
    Signal("recaption_nouns", "nouns in the recaption", text="recaption"),
)


def signals(frame: pl.DataFrame, extra: tuple[Signal, ...] = ()) -> list[Signal]:
    """The signals of `frame` (SIGNALS, then `extra`) that have at least one value; every
    `clip_score_<alias>` follows `clip_score`, with the same (ViT-B/32) LAION thresholds."""
    extra_clip = [
        Signal(c, f"CLIP score, model {c.removeprefix('clip_score_')}", CLIP_THRESHOLDS)
        for c in frame.columns
        if c.startswith("clip_score_")
    ]
    ordered = []
    for signal in (*SIGNALS, *extra):
        ordered.append(signal)
        if signal.column == "clip_score":
            ordered += extra_clip
    return [s for s in ordered if s.column in frame.columns and frame[s.column].null_count() < frame.height]


@dataclass(frozen=True)
class Histogram:
    edges: list[float]
    counts: list[int]
    values: int  # non-null values
    nulls: int
    above_range: int  # values past the last edge, counted in the last bin


def histogram(values: pl.Series, bins: int = 40, include: tuple[float, ...] = ()) -> Histogram:
    """Bins from the minimum to the maximum (or to the 99th percentile when the top 1 % would take
    more of the axis than the rest: long-tailed sizes), widened to show every value in `include`."""
    known = values.drop_nulls().cast(pl.Float64)
    low, high = known.min(), known.max()
    q99 = known.quantile(0.99)
    if high - q99 > q99 - low:
        high = q99
    low, high = min([low, *include]), max([high, *include])
    if high <= low:
        high = low + 1.0
    width = (high - low) / bins
    index = ((known.clip(low, high) - low) / width).floor().clip(0, bins - 1).cast(pl.Int64)
    per_bin = index.value_counts()
    counts = [0] * bins
    for i, count in per_bin.iter_rows():
        counts[i] = count
    return Histogram(
        [low + i * width for i in range(bins + 1)],
        counts,
        known.len(),
        values.null_count(),
        int((known > high).sum()),
    )


def quantiles(values: pl.Series) -> dict[float, float]:
    known = values.drop_nulls().cast(pl.Float64)
    return {q: known.quantile(q) for q in QUANTILES}


def kept_share(values: pl.Series, threshold: Threshold) -> tuple[int, int]:
    """(rows a filter at `threshold` keeps, rows it removes) among the rows with a value."""
    known = values.drop_nulls()
    kept = int(
        (known >= threshold.value).sum() if threshold.keep == "above" else (known < threshold.value).sum()
    )
    return kept, known.len() - kept


def with_image(frame: pl.DataFrame) -> pl.DataFrame:
    """Rows whose image is in a tar (the ones a grid can show)."""
    return frame.filter((pl.col("status") == "success") & pl.col("member").is_not_null())


def distinct(frame: pl.DataFrame) -> pl.DataFrame:
    """`frame` less the rows marked `is_duplicate` (one row per duplicate group is left)."""
    return (
        frame.filter(~pl.col("is_duplicate").fill_null(False)) if "is_duplicate" in frame.columns else frame
    )


def samples(frame: pl.DataFrame, column: str, centre: float, k: int = 8) -> dict[str, pl.DataFrame]:
    """Rows with an image and no duplicate mark at the low end of `column`, at the high end, and (of the
    others) just below and just above `centre` (k / 2 each when both sides have them), sorted by value."""
    rows = distinct(with_image(frame)).filter(pl.col(column).is_not_null()).sort(column, "uid")
    low, high = rows.head(k), rows.tail(k)
    middle = rows.filter(~pl.col("uid").is_in(low["uid"].to_list() + high["uid"].to_list()))
    below = middle.filter(pl.col(column) < centre).tail(k)
    above = middle.filter(pl.col(column) >= centre).head(k)
    n_below = min(below.height, max(k // 2, k - above.height))
    around = pl.concat([below.tail(n_below), above.head(k - n_below)])
    return {"low": low, "around": around, "high": high}


def counts(frame: pl.DataFrame, column: str, top: int = 25) -> pl.DataFrame:
    """Rows per value of `column` (null shown as "(none)"), most frequent first, with their share."""
    total = max(frame.height, 1)
    return (
        frame.select(pl.col(column).cast(pl.String).fill_null("(none)").alias("value"))
        .group_by("value")
        .len("rows")
        .sort(["rows", "value"], descending=[True, False])
        .head(top)
        .with_columns((pl.col("rows") / total).alias("share"))
    )


def data_type_examples(frame: pl.DataFrame, data_type: str, k: int = 8) -> pl.DataFrame:
    """Rows with an image (one per duplicate group) labelled `data_type`, the most confident first,
    with that type's probability as `data_type_p`."""
    rows = distinct(with_image(frame)).filter(pl.col("data_type") == data_type)
    p = pl.col("data_type_scores").struct.field(data_type) if "data_type_scores" in frame.columns else None
    rows = rows.with_columns((p if p is not None else pl.lit(None, pl.Float32)).alias("data_type_p"))
    return rows.sort(["data_type_p", "uid"], descending=[True, False], nulls_last=True).head(k)


def duplicate_kinds(frame: pl.DataFrame) -> pl.DataFrame:
    """Per kind: groups of two or more rows, rows in them, the largest group, and rows marked
    `is_duplicate` because of this kind."""
    out = []
    for kind, column in DUPLICATE_KINDS.items():
        if column not in frame.columns:
            continue
        sizes = frame.filter(pl.col(column).is_not_null()).group_by(column).len().filter(pl.col("len") > 1)
        marked = (
            frame.filter(pl.col("is_duplicate") & pl.col("duplicate_kinds").list.contains(kind)).height
            if "duplicate_kinds" in frame.columns
            else None
        )
        out.append(
            {
                "kind": kind,
                "groups": sizes.height,
                "rows in groups": int(sizes["len"].sum()),
                "largest group": int(sizes["len"].max() or 0),
                "marked is_duplicate": marked,
            }
        )
    return pl.DataFrame(out)


def duplicate_groups(frame: pl.DataFrame, kind: str, n: int = 3) -> list[pl.DataFrame]:
    """The `n` largest groups of `kind` (ties: smallest group id), each with the kept row first."""
    column = DUPLICATE_KINDS[kind]
    top = (
        frame.filter(pl.col(column).is_not_null())
        .group_by(column)
        .len()
        .filter(pl.col("len") > 1)
        .sort(["len", column], descending=[True, False])
        .head(n)[column]
    )
    return [
        frame.filter(pl.col(column) == group).sort(pl.col("is_duplicate").fill_null(False), "uid")
        for group in top
    ]


def normalised_caption() -> pl.Expr:
    return pl.col("caption").str.to_lowercase().str.replace_all(r"\s+", " ").str.strip_chars()


def caption_sharing(frame: pl.DataFrame, top: int = 10) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(rows per sharing bucket of `caption_shared_count`, the most shared captions with their count)."""
    shared = pl.col("caption_shared_count")
    buckets = (
        frame.filter(shared.is_not_null())
        .select(
            pl.when(shared <= 1)
            .then(pl.lit("1 (unique)"))
            .when(shared <= 10)
            .then(pl.lit("2-10"))
            .when(shared <= 100)
            .then(pl.lit("11-100 (ALIGN drops > 10)"))
            .otherwise(pl.lit("> 100"))
            .alias("value")
        )
        .group_by("value")
        .len("rows")
        .sort("value")
    )
    most = (
        frame.filter(shared > 1)
        .group_by(normalised_caption().alias("key"))
        .agg(pl.col("caption").first(), shared.max().alias("images"))
        .sort(["images", "key"], descending=[True, False])
        .head(top)
        .select("caption", "images")
    )
    return buckets, most


def corruption_flags(frame: pl.DataFrame) -> pl.DataFrame:
    """Rows per corruption flag (a row may have several)."""
    return (
        frame.select(pl.col("corruption_flags").explode().alias("value"))
        .drop_nulls()
        .group_by("value")
        .len("rows")
        .sort(["rows", "value"], descending=[True, False])
    )


def most_mismatched(frame: pl.DataFrame, k: int = 12) -> pl.DataFrame:
    """The rows most likely mismatched (highest `corruption_score`, then evidence)."""
    return (
        with_image(frame)
        .filter(pl.col("corruption_score").is_not_null())
        .sort(["corruption_score", "corruption_evidence", "uid"], descending=[True, True, False])
        .head(k)
    )


@dataclass(frozen=True)
class RuleEffect:
    rule: str
    removed_alone: int  # rows this rule removes from the whole frame
    removed: pl.DataFrame  # rows this rule removes after the rules before it
    left: int  # rows left after this rule and those before it


def rule_effects(
    frame: pl.DataFrame,
    rules: list[tuple[str, pl.Expr]],
    evaluate: Callable[[pl.DataFrame, pl.Expr], pl.Series],
) -> list[RuleEffect]:
    """Apply `rules` (text, expression) in order; `evaluate` gives a rule's boolean mask (null = removed)."""
    effects, left = [], frame
    for text, expr in rules:
        keep_all = evaluate(frame, expr)
        keep = evaluate(left, expr)
        effects.append(RuleEffect(text, int((~keep_all).sum()), left.filter(~keep), int(keep.sum())))
        left = left.filter(keep)
    return effects
