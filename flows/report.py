"""`pairsmith report OUT [--where EXPR | --recipe NAME] [--out FILE]`: one self-contained HTML page to
look at a dataset before choosing thresholds.

It shows rows per status and error kind, the run (manifest), a histogram of every signal with the
published thresholds and the share of rows on each side, image grids at both ends of each signal and
around its threshold, data types and languages, duplicate groups, caption sharing, the corruption
estimate, and what a selection keeps and removes rule by rule. Numbers: `flows/summary.py`; charts:
`flows/svg.py`; images: `flows/thumbnails.py` (a bounded number, whatever the row count). The page
has no script and names no other host: images are `data:` URIs, charts inline SVG.
"""

from __future__ import annotations

import json
import re
import time
from html import escape

import fsspec
import polars as pl

from pairsmith.flows import select as selection
from pairsmith.flows import summary, svg, thumbnails
from pairsmith.pipelines.layout import Layout, atomic_path, read_json

GRID = 8  # images per grid
GROUPS = 3  # duplicate groups shown per kind
TYPES = 4  # data types shown with a grid
CAPTION_CHARS = 90

STYLE = """
body{font-family:system-ui,sans-serif;margin:0 24px 40px;color:#222;max-width:1360px}
h1{margin:18px 0 4px}h2{border-bottom:2px solid #4c78a8;padding-bottom:4px;margin-top:36px}
h3{margin:22px 0 6px}nav a{margin-right:14px}code{background:#f2f2f2;padding:0 3px}
.lead{color:#555;margin:0 0 8px}.row>.lead{flex:1;min-width:320px}.row{display:flex;gap:28px;flex-wrap:wrap;align-items:flex-start}
table{border-collapse:collapse;font-size:13px}td,th{padding:2px 8px;text-align:left;vertical-align:top}
th{background:#eef2f7}td.n{text-align:right;font-variant-numeric:tabular-nums}
.bar{background:#4c78a8;height:10px;display:inline-block}
.grid{display:flex;gap:8px;flex-wrap:wrap;margin:4px 0 12px}
.grid-title{font-size:13px;font-weight:600;margin-top:8px}
figure{margin:0;width:140px;font-size:11px;border:2px solid #ddd;border-radius:4px;padding:3px;background:#fff}
figure img{width:140px;height:140px;object-fit:contain;background:#f4f4f4;display:block}
figure .none{width:140px;height:140px;background:#f4f4f4;color:#888;display:flex;align-items:center;
justify-content:center;text-align:center}
figure.out{border-color:#d62728}figure.kept{border-color:#2ca02c}
figcaption b{display:block}.tag{color:#d62728;font-weight:600}.keep{color:#2ca02c;font-weight:600}
.group{border-left:3px solid #bbb;padding-left:8px;margin:8px 0}
details pre{font-size:12px;background:#f7f7f7;padding:8px;max-height:400px;overflow:auto}
"""


class Gallery:
    """Cards that name their image by a placeholder; the thumbnails are read once, at the end."""

    def __init__(self) -> None:
        self.wanted: dict[str, tuple[str, str]] = {}

    def card(self, row: dict, value: str, css: str = "", note: str = "", text: str = "caption") -> str:
        caption = row.get(text) or ""
        short = caption if len(caption) <= CAPTION_CHARS else caption[: CAPTION_CHARS - 1] + "…"
        if row.get("member") and row.get("tar"):
            self.wanted[row["uid"]] = (row["tar"], row["member"])
            picture = f"\x00{row['uid']}\x00"
        else:
            why = row.get("error_kind") or row.get("status") or "no image"
            picture = f'<div class="none">no image<br>{escape(str(why))}</div>'
        return (
            f'<figure class="{css}" title="{escape(caption)}">{picture}<figcaption><b>{escape(value)}</b>'
            f"{note}{escape(short)}</figcaption></figure>"
        )

    def fill(self, html: str, image_root: str) -> tuple[str, int, int, list[str]]:
        """`html` with every placeholder replaced by its image; also the images placed, the distinct
        images and the tars that could not be read."""
        found, unreadable = thumbnails.load(image_root, self.wanted)
        placed = 0

        def image(match: re.Match) -> str:
            nonlocal placed
            uri = found.get(match.group(1))
            placed += uri is not None
            return f'<img src="{uri}" alt="">' if uri else '<div class="none">image not readable</div>'

        return re.sub("\x00([^\x00]*)\x00", image, html), placed, len(found), unreadable


def _fmt(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return svg.number(value)
    return str(value)


def _rows(n: int) -> str:
    return f"{n} row" if n == 1 else f"{n} rows"


def _table(frame: pl.DataFrame, bar: str | None = None) -> str:
    """A table of `frame`; a column `bar` (a share in [0, 1]) is drawn as a bar and a percentage."""
    head = "".join(f"<th>{escape(c)}</th>" for c in frame.columns)
    body = []
    for row in frame.iter_rows(named=True):
        cells = []
        for name, value in row.items():
            if name == bar:
                cells.append(
                    f'<td class="n">{value:.1%} <span class="bar" style="width:{value * 160:.0f}px"></span></td>'
                )
            else:
                css = ' class="n"' if isinstance(value, int | float) else ""
                cells.append(f"<td{css}>{escape(_fmt(value))}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _grid(gallery: Gallery, title: str, rows: pl.DataFrame, label, text: str = "caption") -> str:
    """A titled grid; `label(row)` gives (value text, css class, note html) per card, `text` the
    column shown under each image."""
    cards = [gallery.card(row, *label(row), text=text) for row in rows.iter_rows(named=True)]
    body = "".join(cards) if cards else "<p class='lead'>(no rows)</p>"
    return f'<div class="grid-title">{title}</div><div class="grid">{body}</div>'


def _overview(frame: pl.DataFrame, manifest: dict) -> str:
    """Rows per status and error kind, and the run (of a subset: the run of its source)."""
    subset = manifest.get("selection")
    if subset:
        manifest = manifest.get("source_manifest") or {}
    status = summary.counts(frame, "status").rename({"value": "status"})
    failed = frame.filter(pl.col("status") != "success")
    parts = ['<h2 id="overview">Rows</h2><div class="row">', _table(status, "share")]
    if "error_kind" in frame.columns and failed.height:
        kinds = summary.counts(failed, "error_kind").rename({"value": "error_kind (rows not downloaded)"})
        parts.append(_table(kinds, "share"))
    parts.append("</div>")
    if subset:
        rules = "; ".join(subset.get("rules", []))
        parts.append(
            f'<p class="lead">A subset written by <code>pairsmith select</code> from {escape(subset["source"])} '
            f"({escape(rules or 'no rule')}); the run below is the source's.</p>"
        )
    run = [
        ("rows", manifest.get("output_rows", frame.height)),
        ("shards", manifest.get("shards")),
        ("run id", manifest.get("run_id")),
        ("config hash", manifest.get("config_hash")),
        ("finished at", manifest.get("finished_at")),
        ("wall time, s", manifest.get("wall_time_s")),
        ("duplicate rows marked", manifest.get("duplicate_rows")),
        ("estimated corruption ratio", manifest.get("estimated_corruption_ratio")),
    ]
    run += [(f"stage {k}, s", v) for k, v in (manifest.get("stage_seconds") or {}).items()]
    run_table = pl.DataFrame({"run": [k for k, _ in run], "value": [_fmt(v) for _, v in run]})
    models = manifest.get("model_ids") or {}
    model_table = pl.DataFrame({"signal": list(models), "model": [str(v) for v in models.values()]})
    parts += ['<h3>Run</h3><div class="row">', _table(run_table)]
    if models:
        parts.append(_table(model_table))
    parts.append("</div>")
    if manifest.get("config"):
        config = escape(json.dumps(manifest["config"], indent=2, default=str))
        parts.append(f"<details><summary>run config (manifest.json)</summary><pre>{config}</pre></details>")
    return "".join(parts)


def _signal(frame: pl.DataFrame, signal: summary.Signal, gallery: Gallery) -> str:
    values = frame[signal.column]
    hist = summary.histogram(values, include=tuple(t.value for t in signal.thresholds))
    q = summary.quantiles(values)
    centre, around = (
        (signal.thresholds[0].value, f"around the threshold {signal.thresholds[0].value}")
        if signal.thresholds
        else (q[0.5], f"around the median {svg.number(q[0.5])}")
    )
    markers = [svg.Marker(t.value, t.label) for t in signal.thresholds] or [
        svg.Marker(centre, f"median {svg.number(centre)}", "#777")
    ]
    lines = [
        f"{hist.values} rows with a value, {hist.nulls} null",
        "quantiles: " + ", ".join(f"{int(k * 100)} %: {svg.number(v)}" for k, v in q.items()),
    ]
    if hist.above_range:
        lines.append(f"{hist.above_range} values above {svg.number(hist.edges[-1])} counted in the last bin")
    for t in signal.thresholds:
        kept, removed = summary.kept_share(values, t)
        total = max(kept + removed, 1)
        lines.append(
            f"<b>{escape(t.label)}</b>: keeps {kept} ({kept / total:.1%}), removes "
            f'<span class="tag">{removed} ({removed / total:.1%})</span>'
        )
    first = signal.thresholds[0] if signal.thresholds else None
    removed = (first.value, "below" if first.keep == "above" else "above") if first else None

    def label(row: dict) -> tuple[str, str, str]:
        value = row[signal.column]
        if first is None:
            return f"{svg.number(value)}", "", ""
        kept = value >= first.value if first.keep == "above" else value < first.value
        return (
            f"{svg.number(value)}",
            "kept" if kept else "out",
            "" if kept else f'<span class="tag">removed by {escape(first.label)}</span><br>',
        )

    grids = summary.samples(frame, signal.column, centre, GRID)
    return (
        f'<section id="signal-{signal.column}"><h3>{escape(signal.label)} <code>{signal.column}</code></h3>'
        f'<div class="row">{svg.histogram(hist.edges, hist.counts, markers, signal.column, removed)}'
        f'<div class="lead">{"<br>".join(lines)}</div></div>'
        + _grid(gallery, "lowest values", grids["low"], label, signal.text)
        + _grid(gallery, around, grids["around"], label, signal.text)
        + _grid(gallery, "highest values", grids["high"], label, signal.text)
        + "</section>"
    )


def _signals(frame: pl.DataFrame, gallery: Gallery) -> str:
    found = summary.signals(frame)
    links = " · ".join(f'<a href="#signal-{s.column}">{s.column}</a>' for s in found)
    published = "; ".join(f"{s.column} {t.label}" for s in summary.SIGNALS for t in s.thresholds)
    note = (
        f"Red lines: published thresholds (LAION-5B: {escape(published)}). LAION's CLIP thresholds are for "
        "ViT-B/32 cosines: on "
        "another model's scale they only mark where LAION's cut would sit. Pink bars and red image borders: "
        "rows the first threshold removes; green borders: rows it keeps. Grids show rows with an image, one "
        "per duplicate group."
    )
    return f'<h2 id="signals">Signals</h2><p class="lead">{note}</p><p>{links}</p>' + "".join(
        _signal(frame, s, gallery) for s in found
    )


def _distributions(frame: pl.DataFrame, gallery: Gallery) -> str:
    if "data_type" not in frame.columns and "lang" not in frame.columns:
        return ""
    images = summary.with_image(frame)
    parts = ['<h2 id="types">Data types and languages</h2><div class="row">']
    if "data_type" in frame.columns:
        parts.append(
            _table(
                summary.counts(images, "data_type").rename({"value": "data_type (rows with an image)"}),
                "share",
            )
        )
    if "lang" in frame.columns:
        parts.append(_table(summary.counts(frame, "lang").rename({"value": "lang (caption)"}), "share"))
    parts.append("</div>")
    if "data_type" in frame.columns:
        top = summary.counts(images.filter(pl.col("data_type").is_not_null()), "data_type", TYPES)["value"]
        parts.append(
            f"<h3>The {len(top)} most frequent data types: their most confident rows</h3><p class='lead'>"
            "Zero-shot labels (informedness about 0.5): look before filtering on them.</p>"
        )
        for data_type in top:
            rows = summary.data_type_examples(frame, data_type, GRID)
            parts.append(
                _grid(gallery, escape(data_type), rows, lambda r: (f"p = {_fmt(r['data_type_p'])}", "", ""))
            )
    return "".join(parts)


def _duplicates(frame: pl.DataFrame, gallery: Gallery) -> str:
    kinds = summary.duplicate_kinds(frame)
    if kinds.is_empty():
        return ""
    marked = int(frame["is_duplicate"].fill_null(False).sum()) if "is_duplicate" in frame.columns else 0
    parts = [
        '<h2 id="duplicates">Duplicates</h2>',
        f'<p class="lead">{marked} rows are marked <code>is_duplicate</code>: every row of a group but one '
        "(green border: the kept row, highest CLIP score). A row can be in groups of several kinds.</p>",
        _table(kinds),
    ]
    for kind in kinds["kind"]:
        groups = summary.duplicate_groups(frame, kind, GROUPS)
        if not groups:
            continue
        parts.append(f"<h3>{kind} duplicates: the {len(groups)} largest groups</h3>")
        for group in groups:
            name = escape(str(group[summary.DUPLICATE_KINDS[kind]][0]))[:16]
            parts.append(
                '<div class="group">'
                + _grid(
                    gallery,
                    f"group {name}: {group.height} rows"
                    + (f" ({GRID} shown)" if group.height > GRID else ""),
                    group.head(GRID),
                    lambda r: ("duplicate", "out") if r.get("is_duplicate") else ("kept", "kept"),
                )
                + "</div>"
            )
    return "".join(parts)


def _caption_sharing(frame: pl.DataFrame) -> str:
    if "caption_shared_count" not in frame.columns:
        return ""
    buckets, most = summary.caption_sharing(frame)
    total = max(int(buckets["rows"].sum()), 1)
    buckets = buckets.rename({"value": "images sharing the caption"}).with_columns(
        (pl.col("rows") / total).alias("share")
    )
    return (
        '<h2 id="captions">Caption sharing</h2><p class="lead">How many images in the dataset carry the same '
        "caption (case and spacing ignored): boilerplate alt-texts such as file names or 'image' show up here."
        f'</p><div class="row">{_table(buckets, "share")}{_table(most)}</div>'
    )


def _corruption(frame: pl.DataFrame, report: dict | None, gallery: Gallery) -> str:
    if "corruption_score" not in frame.columns or frame["corruption_score"].null_count() == frame.height:
        return ""
    mean = frame["corruption_score"].mean()
    parts = [
        '<h2 id="corruption">Corruption (caption and image do not match)</h2>',
        f"<p>mean <code>corruption_score</code> of these rows: <b>{_fmt(mean)}</b> (it estimates their "
        "corruption ratio, for the whole dataset or any subset).</p>",
    ]
    if report:
        ratio = report.get("estimated_corruption_ratio")
        parts.append(
            f"<p><b>estimated corruption ratio: {_fmt(ratio)}</b> over {report.get('rows_scored')} scored rows. "
            f"How: {escape(report.get('method', ''))}.</p>"
        )
        pops = report.get("populations") or {}
        table = pl.DataFrame(
            [
                {"population": k, "rows": v.get("rows"), "estimated ratio": v.get("ratio")}
                for k, v in pops.items()
            ]
        )
        if not table.is_empty():
            parts.append(_table(table))
    if "corruption_flags" in frame.columns:
        parts.append("<h3>Flags</h3>" + _table(summary.corruption_flags(frame).rename({"value": "flag"})))
    rows = summary.most_mismatched(frame, GRID * 2)

    def label(row: dict) -> tuple[str, str, str]:
        flags = ", ".join(row.get("corruption_flags") or [])
        return f"score {svg.number(row['corruption_score'])}", "out", f"{escape(flags)}<br>"

    parts.append(_grid(gallery, "the pairs most likely mismatched", rows, label))
    return "".join(parts)


def _selection(frame: pl.DataFrame, rules: list[tuple[str, pl.Expr]], asked: str, gallery: Gallery) -> str:
    effects = summary.rule_effects(frame, rules, selection.evaluate)
    kept = effects[-1].left
    table = pl.DataFrame(
        {
            "rule (in order)": [e.rule for e in effects],
            "removes here": [e.removed.height for e in effects],
            "removes alone": [e.removed_alone for e in effects],
            "rows left": [e.left for e in effects],
        }
    )
    parts = [
        '<h2 id="selection">Selection</h2>',
        f"<p>{escape(asked)} <b>keeps {kept} of {frame.height} rows ({kept / max(frame.height, 1):.1%})</b>. "
        "'removes here': rows the rule removes after the rules above it; 'removes alone': rows it would "
        "remove from the whole dataset.</p>",
        _table(table),
    ]
    for effect, (_, expr) in zip(effects, rules, strict=True):
        sample = effect.removed.sample(min(GRID, effect.removed.height), seed=0).sort("uid")
        columns = [c for c in dict.fromkeys(expr.meta.root_names()) if c in frame.columns][:3]

        def label(row: dict, columns: list[str] = columns) -> tuple[str, str, str]:
            return ", ".join(f"{c} = {_fmt(row[c])}" for c in columns), "out", ""

        parts.append(
            _grid(
                gallery,
                f"removed by <code>{escape(effect.rule)}</code>: {_rows(effect.removed.height)}"
                + (f" ({GRID} at random)" if effect.removed.height > GRID else ""),
                sample,
                label,
            )
        )
    return "".join(parts)


def _asked(where: str | None, recipe: str | None, clip_column: str | None, keep_duplicates: bool) -> str:
    """The selection as typed: `pairsmith select ... --recipe laion --where ...`."""
    words = [f"--recipe {recipe}"] if recipe else []
    words += [f"--clip-column {clip_column}"] if recipe and clip_column else []
    words += [f"--where '{where}'"] if where else []
    words += ["--keep-duplicates"] if keep_duplicates else []
    return f"pairsmith select {' '.join(words)}:"


def _image_root(layout: Layout, manifest: dict) -> str:
    """Where relative `tar` paths start: the folder itself (an output, a subset since `select` writes
    absolute paths or its own tars), or the source of a subset written before (no `export` record)."""
    source = (manifest.get("selection") or {}).get("source")
    return layout.root if "export" in manifest or not source else source


def render(
    out: str,
    where: str | None = None,
    recipe: str | None = None,
    clip_column: str | None = None,
    keep_duplicates: bool = False,
) -> str:
    """The report page of the output folder `out` (and of a selection, with `where` / `recipe`, which
    also leaves duplicates out unless `keep_duplicates`, as `select` does)."""
    layout = Layout(out)
    shards = layout.shards("data")
    if not shards:
        raise selection.SelectionError(f"{out} has no data shards (is it a pairsmith output folder?)")
    manifest = read_json(layout.manifest) if layout.exists(layout.manifest) else {}
    corruption = read_json(layout.corruption_report) if layout.exists(layout.corruption_report) else None
    rules = (
        selection.selection_rules(layout, shards, where, recipe, clip_column, keep_duplicates)
        if where or recipe
        else []
    )
    frame = pl.read_parquet([layout.data_shard(s) for s in shards])
    gallery = Gallery()
    sections = {
        ("overview", "Rows"): _overview(frame, manifest),
        ("selection", "Selection"): _selection(
            frame, rules, _asked(where, recipe, clip_column, keep_duplicates), gallery
        )
        if rules
        else "",
        ("signals", "Signals"): _signals(frame, gallery),
        ("types", "Data types and languages"): _distributions(frame, gallery),
        ("duplicates", "Duplicates"): _duplicates(frame, gallery),
        ("captions", "Caption sharing"): _caption_sharing(frame),
        ("corruption", "Corruption"): _corruption(frame, corruption, gallery),
    }
    links = "".join(f'<a href="#{a}">{n}</a>' for (a, n), html in sections.items() if html)
    title = f"pairsmith report: {escape(out)}"
    body, images, distinct, unreadable = gallery.fill(
        "".join(sections.values()), _image_root(layout, manifest)
    )
    warning = (
        f'<p class="tag">images not readable from: {escape(", ".join(unreadable))}</p>' if unreadable else ""
    )
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{STYLE}</style></head><body><h1>{title}</h1>"
        f'<p class="lead">{frame.height} rows in {len(shards)} shards; {images} images shown ({distinct} distinct); written '
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by <code>pairsmith report</code>. "
        f"Hover an image for its whole caption.</p>{warning}<nav>{links}</nav>{body}</body></html>"
    )


def write_report(
    out: str,
    where: str | None = None,
    recipe: str | None = None,
    target: str | None = None,
    clip_column: str | None = None,
    keep_duplicates: bool = False,
) -> str:
    """Write the report (default `OUT/report.html`, atomically) and return its path."""
    path = target or f"{out.rstrip('/')}/report.html"
    html = render(out, where, recipe, clip_column, keep_duplicates)
    fs, _ = fsspec.core.url_to_fs(path)
    with atomic_path(path) as tmp, fs.open(tmp, "wb") as f:
        f.write(html.encode("utf-8"))
    return path
