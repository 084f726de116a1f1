"""`pairsmith stats OUT [--where EXPR] [--json]`: every signal of an output on one screen.

Rows per status and error kind, each score's quantiles with the share its published thresholds keep,
flag rates, data types, languages, duplicates by kind, caption sharing and the corruption estimate.
The numbers are the report's (`flows/summary.py`); `collect` gives them as a dict with stable keys
(`--json`), `render` as text.
"""

from __future__ import annotations

import polars as pl

from pairsmith.flows import summary
from pairsmith.flows.select import evaluate, parse_where
from pairsmith.pipelines.layout import Layout, read_json
from pairsmith.pipelines.shard_check import require_output

WIDTH = 120  # characters per distribution line of the text: the most frequent values that fit (JSON: all)
SHOWN = (0.01, 0.1, 0.5, 0.9, 0.99)  # quantiles in the text (the JSON has all of summary.QUANTILES)
EXTRA = (  # signals the report leaves out (no image grid), counted here
    summary.Signal("lang_score", "language identification confidence"),
    summary.Signal("aspect_ratio", "width / height"),
    summary.Signal("brightness", "mean brightness"),
    summary.Signal("contrast", "contrast"),
    summary.Signal("colourfulness", "colourfulness"),
)


def _key(q: float) -> str:
    return f"p{round(q * 100):02d}"


def _counts(frame: pl.DataFrame, column: str) -> dict[str, int]:
    if column not in frame.columns or frame.is_empty():
        return {}
    return dict(summary.counts(frame, column, top=frame.height).select("value", "rows").iter_rows())


def _signal(frame: pl.DataFrame, signal: summary.Signal) -> dict:
    values = frame[signal.column]
    thresholds = []
    for t in signal.thresholds:
        kept, removed = summary.kept_share(values, t)
        thresholds.append(
            {"label": t.label, "value": t.value, "keep": t.keep, "kept": kept, "removed": removed}
        )
    return {
        "label": signal.label,
        "values": values.len() - values.null_count(),
        "nulls": values.null_count(),
        "mean": values.cast(pl.Float64).mean(),
        "quantiles": {_key(q): v for q, v in summary.quantiles(values).items()},
        "thresholds": thresholds,
    }


def _duplicates(frame: pl.DataFrame) -> dict:
    kinds = summary.duplicate_kinds(frame) if not frame.is_empty() else pl.DataFrame()
    return {
        "rows_marked": int(frame["is_duplicate"].fill_null(False).sum())
        if "is_duplicate" in frame.columns
        else 0,
        "kinds": {
            row["kind"]: {
                "groups": row["groups"],
                "rows_in_groups": row["rows in groups"],
                "largest_group": row["largest group"],
                "marked_is_duplicate": row["marked is_duplicate"],
            }
            for row in kinds.iter_rows(named=True)
        },
    }


def _corruption(layout: Layout, frame: pl.DataFrame) -> dict:
    report = read_json(layout.corruption_report) if layout.exists(layout.corruption_report) else {}
    scores = (
        frame["corruption_score"] if "corruption_score" in frame.columns else pl.Series([], dtype=pl.Float32)
    )
    flags = summary.corruption_flags(frame) if "corruption_flags" in frame.columns else None
    return {
        "estimated_ratio": report.get("estimated_corruption_ratio"),
        "rows_scored": report.get("rows_scored"),
        "method": report.get("method"),
        "mean_score": scores.mean(),
        "rows_with_score": scores.len() - scores.null_count(),
        "flags": dict(flags.iter_rows()) if flags is not None else {},
    }


def collect(out: str, where: str | None = None) -> dict:
    """The numbers of the output folder `out` (of the rows `where` keeps, if given). OutputError if
    `out` is not one, SelectionError for a bad `where`."""
    layout = require_output(out)
    shards = layout.shards("data")
    frame = pl.read_parquet([layout.data_shard(s) for s in shards]) if shards else pl.DataFrame()
    total = frame.height
    if where is not None and shards:
        frame = frame.filter(evaluate(frame, parse_where(where)))
    known = summary.signals(frame, EXTRA) if shards else []
    flags = [c for c, t in frame.schema.items() if t == pl.Boolean and c != "is_duplicate"]
    return {
        "folder": out,
        "where": where,
        "rows_in_folder": total,
        "rows": frame.height,
        "status": _counts(frame, "status"),
        "error_kind": _counts(frame.filter(pl.col("status") != "success"), "error_kind") if shards else {},
        "signals": {s.column: _signal(frame, s) for s in known},
        "flags": {
            c: {
                "true": int(frame[c].sum()),
                "known": frame[c].len() - frame[c].null_count(),
                "rate": frame[c].mean(),
            }
            for c in flags
        },
        "data_type": _counts(frame, "data_type"),
        "lang": _counts(frame, "lang"),
        "duplicates": _duplicates(frame),
        "caption_sharing": (
            dict(summary.caption_sharing(frame)[0].iter_rows())
            if "caption_shared_count" in frame.columns
            else {}
        ),
        "corruption": _corruption(layout, frame),
    }


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def _share(rows: int, total: int) -> str:
    return f"{rows / total:.0%}" if total else "-"


def _line(name: str, counts: dict[str, int], total: int) -> str:
    """`name` then the most frequent values with their share, as many as fit on one line."""
    line, shown = f"{name:<16}", 0
    for value, rows in counts.items():
        item = f"{' · ' if shown else ''}{value} {rows} ({_share(rows, total)})"
        if shown and len(line) + len(item) > WIDTH - 10:
            break
        line, shown = line + item, shown + 1
    rest = sum(list(counts.values())[shown:])
    return line + (f" · other {rest}" if rest else "")


def render(numbers: dict) -> str:
    """The text of `collect`'s numbers: about 50 lines for the demo."""
    rows, total = numbers["rows"], numbers["rows_in_folder"]
    head = f"{numbers['folder']}: {rows} rows" + (
        f" of {total} (--where {numbers['where']})" if numbers["where"] is not None else ""
    )
    if not total:
        return f"{numbers['folder']}: 0 rows (an empty output)"
    failed = sum(v for k, v in numbers["status"].items() if k != "success")
    lines = [
        head,
        _line("status", numbers["status"], rows),
        _line("error_kind", numbers["error_kind"], failed),
    ]
    lines += [
        "",
        f"{'signal':<26}{'rows':>6} "
        + "".join(f"{_key(q):>8}" for q in SHOWN)
        + "  published cut-off: keeps",
    ]
    for column, s in numbers["signals"].items():
        cuts = " · ".join(
            f"{'>=' if t['keep'] == 'above' else '<'}{t['value']} {_share(t['kept'], t['kept'] + t['removed'])}"
            for t in s["thresholds"]
        )
        quantiles = "".join(f"{_number(s['quantiles'][_key(q)]):>8}" for q in SHOWN)
        lines.append(f"{column:<26}{s['values']:>6} {quantiles}  {cuts}")
    flags = [f"{c} {_share(f['true'], f['known'])} of {f['known']}" for c, f in numbers["flags"].items()]
    lines += ["", "flags (true among rows where known)"]
    lines += ["  " + " · ".join(flags[i : i + 3]) for i in range(0, len(flags), 3)]
    lines += ["", _line("data_type", numbers["data_type"], rows), _line("lang", numbers["lang"], rows)]
    duplicates = numbers["duplicates"]
    lines += [
        "",
        f"duplicates      {duplicates['rows_marked']} rows marked is_duplicate (one row per group kept)",
    ]
    for kind, d in duplicates["kinds"].items():
        lines.append(
            f"  {kind:<10} {d['groups']:>6} groups, {d['rows_in_groups']} rows in them, largest {d['largest_group']}, "
            f"{d['marked_is_duplicate'] if d['marked_is_duplicate'] is not None else '-'} marked for this kind"
        )
    lines.append(_line("caption sharing", numbers["caption_sharing"], rows))
    c = numbers["corruption"]
    if c["estimated_ratio"] is not None or c["rows_with_score"]:
        lines += [
            "",
            f"corruption      estimated ratio {_number(c['estimated_ratio'])} ({c['rows_scored']} rows scored, "
            f"corruption.json); mean corruption_score of these {c['rows_with_score']}: {_number(c['mean_score'])}",
        ]
        if c["method"]:
            lines.append(f"  how: {c['method'].split(' (')[0]}")
        if c["flags"]:
            lines.append(_line("  flags", c["flags"], c["rows_with_score"]))
    return "\n".join(lines)
