"""`pairsmith stats OUT`: rows per status, flag rates and score histograms, in the terminal."""

from __future__ import annotations

import polars as pl

from pairsmith.pipelines.shard_check import require_output

BAR = 40
HISTOGRAMS = (
    "clip_score",
    "nsfw_score",
    "watermark_score",
    "text_area_ratio",
    "sharpness",
    "lang_score",
    "caption_words",
)


def _bar(share: float) -> str:
    return "#" * round(share * BAR)


def histogram(values: pl.Series, bins: int = 10) -> list[str]:
    """Text histogram of a numeric column (nulls ignored), one line per bin."""
    values = values.drop_nulls().cast(pl.Float64)
    if values.is_empty():
        return ["  (no values)"]
    low, high = values.quantile(0.0), values.quantile(0.99)
    if high <= low:
        return [f"  all {len(values)} values ~ {low:.3g}"]
    width = (high - low) / bins
    idx = ((values.clip(low, high) - low) / width).floor().clip(0, bins - 1).cast(pl.Int64)
    counts = idx.value_counts().sort(idx.name)
    per_bin = dict(zip(counts[idx.name].to_list(), counts["count"].to_list(), strict=True))
    top = max(per_bin.values())
    return [
        f"  {low + i * width:>9.3g} .. {low + (i + 1) * width:<9.3g} {per_bin.get(i, 0):>8} "
        f"{_bar(per_bin.get(i, 0) / top)}"
        for i in range(bins)
    ]


def render(out: str) -> str:
    """The report of a pairsmith output folder (OutputError if `out` is none)."""
    layout = require_output(out)
    shards = layout.shards("data")
    if not shards:
        return f"{out}: 0 rows (an empty output)"
    df = pl.read_parquet([layout.data_shard(s) for s in shards])
    total = df.height
    lines = [f"{out}: {total} rows", "", "rows per status"]
    for status, count in df["status"].value_counts(sort=True).iter_rows():
        lines.append(f"  {status:<22} {count:>8} {count / max(total, 1):>7.1%} {_bar(count / max(total, 1))}")
    flags = [c for c, t in df.schema.items() if t == pl.Boolean]
    lines += ["", "flag rates (true among rows where the flag is known)"]
    for name in flags:
        known = df[name].drop_nulls()
        rate = known.mean() if len(known) else 0.0
        lines.append(f"  {name:<22} {rate:>7.1%} of {len(known)}")
    for name in HISTOGRAMS:
        if name in df.columns:
            lines += ["", name, *histogram(df[name])]
    return "\n".join(lines)
