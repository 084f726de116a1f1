"""A small inline-SVG histogram for the HTML report: bars, axis ticks and labelled threshold lines.

Written by hand instead of pulling in a plotting library: the report needs one kind of chart, and
inline SVG in HTML5 needs no namespace, script, font or file of its own (the page names no other host).
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

WIDTH, HEIGHT = 560, 210
LEFT, RIGHT, TOP, BOTTOM = 46, 12, 34, 36
BAR = "#4c78a8"
LINE = "#d62728"
REMOVED = "#e8a0a0"


@dataclass(frozen=True)
class Marker:
    """A vertical line at `value` with a label (a published threshold, or the median)."""

    value: float
    label: str
    colour: str = LINE


def number(value: float) -> str:
    """A short tick or label text: 0.28, 512, 1.2k, 3.4M."""
    size = abs(value)
    if size >= 1e6:
        return f"{value / 1e6:.3g}M"
    if size >= 1e3:
        return f"{value / 1e3:.3g}k"
    return f"{value:.3g}"


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    step = (high - low) / (count - 1)
    return [low + i * step for i in range(count)]


def histogram(
    edges: list[float],
    counts: list[int],
    markers: list[Marker],
    x_label: str,
    removed: tuple[float, str] | None = None,
) -> str:
    """An SVG histogram of `counts` over bins `edges` (len(counts) + 1), with marker lines; with
    `removed` = (value, "below" or "above"), the bins on that side of the value are drawn in red."""
    low, high = edges[0], edges[-1]
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    top = max(max(counts, default=0), 1)

    def x(value: float) -> float:
        return LEFT + (value - low) / (high - low) * plot_w

    parts = [
        f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" '
        f'height="{HEIGHT}" role="img" aria-label="histogram of {escape(x_label)}" font-family="sans-serif" '
        'font-size="11">'
    ]
    for left, right, count in zip(edges, edges[1:], counts, strict=False):
        h = count / top * plot_h
        centre = (left + right) / 2
        out = removed is not None and (centre < removed[0] if removed[1] == "below" else centre >= removed[0])
        parts.append(
            f'<rect x="{x(left):.1f}" y="{TOP + plot_h - h:.1f}" width="{max(x(right) - x(left) - 1, 0.5):.1f}" '
            f'height="{h:.1f}" fill="{REMOVED if out else BAR}"><title>{number(left)} .. {number(right)}: {count} rows</title></rect>'
        )
    base = TOP + plot_h
    parts.append(f'<line x1="{LEFT}" y1="{base}" x2="{WIDTH - RIGHT}" y2="{base}" stroke="#333"/>')
    for tick in _ticks(low, high):
        parts.append(
            f'<line x1="{x(tick):.1f}" y1="{base}" x2="{x(tick):.1f}" y2="{base + 4}" stroke="#333"/>'
            f'<text x="{x(tick):.1f}" y="{base + 16}" text-anchor="middle">{number(tick)}</text>'
        )
    parts.append(
        f'<text x="{LEFT - 6}" y="{TOP + 4}" text-anchor="end">{top}</text>'
        f'<text x="{LEFT - 6}" y="{base}" text-anchor="end">0</text>'
        f'<text x="{LEFT + plot_w / 2:.1f}" y="{HEIGHT - 4}" text-anchor="middle" fill="#555">'
        f"{escape(x_label)} (rows per bin)</text>"
    )
    for i, marker in enumerate(markers):
        mx = x(marker.value)
        anchor = "end" if mx > LEFT + plot_w * 0.6 else "start"
        dx = -4 if anchor == "end" else 4
        parts.append(
            f'<line x1="{mx:.1f}" y1="{TOP - 4}" x2="{mx:.1f}" y2="{base}" stroke="{marker.colour}" '
            f'stroke-width="1.5" stroke-dasharray="4 3"/>'
            f'<text x="{mx + dx:.1f}" y="{TOP - 20 + 12 * i}" text-anchor="{anchor}" fill="{marker.colour}">'
            f"{escape(marker.label)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)
