"""Dependency-free SVG charts of benchmark results: throughput over time, and latency percentiles.

Why SVG and not PNG: a PNG needs a rasteriser with fonts (matplotlib is not a dependency and should not become one
for two charts); SVG is text, renders on GitHub and in any browser, diffs in review and keeps its labels sharp.
Both charts take plain series so they work on any result JSON, ours or a peer's.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from xml.sax.saxutils import escape

WIDTH, HEIGHT = 820, 380
LEFT, RIGHT, TOP, BOTTOM = 78, 230, 40, 48
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")


def _nice_max(value: float) -> float:
    """The smallest of 1, 2, 2.5, 4, 5, 6, 8 x 10^k at or above ``value`` (axis top, little empty space)."""
    if value <= 0:
        return 1.0
    exp = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 4, 5, 6, 8, 10):
        if value <= step * exp:
            return float(step * exp)
    return float(10 * exp)  # unreachable


def _fmt(value: float) -> str:
    if value >= 1e6:
        return f"{value / 1e6:g}M"
    if value >= 1e3:
        return f"{value / 1e3:g}k"
    return f"{value:g}"


def _frame(title: str, x_label: str, y_label: str) -> list[str]:
    return [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
            f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">',
            f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
            f'<text x="{WIDTH / 2}" y="22" text-anchor="middle" font-size="15">{escape(title)}</text>',
            f'<text x="{LEFT + (WIDTH - LEFT - RIGHT) / 2}" y="{HEIGHT - 10}" text-anchor="middle">'
            f'{escape(x_label)}</text>',
            f'<text transform="translate(16 {TOP + (HEIGHT - TOP - BOTTOM) / 2}) rotate(-90)" '
            f'text-anchor="middle">{escape(y_label)}</text>']


def _legend(labels: Sequence[str]) -> list[str]:
    out = []
    for i, label in enumerate(labels):
        y = TOP + 10 + 18 * i
        colour = COLOURS[i % len(COLOURS)]
        out.append(f'<line x1="{WIDTH - RIGHT + 12}" y1="{y}" x2="{WIDTH - RIGHT + 32}" y2="{y}" '
                   f'stroke="{colour}" stroke-width="2.5"/>')
        out.append(f'<text x="{WIDTH - RIGHT + 38}" y="{y + 4}">{escape(label)}</text>')
    return out


def timeline_svg(series: Mapping[str, Sequence[tuple[float, float]]], title: str, unit: str) -> str:
    """One line per label of (seconds since start, rate per second)."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    x_max = _nice_max(max((t for pts in series.values() for t, _ in pts), default=1.0))
    y_max = _nice_max(max((r for pts in series.values() for _, r in pts), default=1.0))
    out = _frame(title, "seconds since the load started", f"{unit}/s")
    for k in range(6):
        y = TOP + plot_h - plot_h * k / 5
        out.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + plot_w}" y2="{y:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{_fmt(y_max * k / 5)}</text>')
        x = LEFT + plot_w * k / 5
        out.append(f'<text x="{x:.1f}" y="{TOP + plot_h + 18}" text-anchor="middle">{_fmt(x_max * k / 5)}</text>')
    out.append(f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#333"/>')
    for i, pts in enumerate(series.values()):
        if not pts:
            continue
        path = " ".join(f"{LEFT + plot_w * t / x_max:.1f},{TOP + plot_h - plot_h * r / y_max:.1f}" for t, r in pts)
        out.append(f'<polyline points="{path}" fill="none" stroke="{COLOURS[i % len(COLOURS)]}" '
                   'stroke-width="2"/>')
    out.extend(_legend(list(series)))
    out.append("</svg>")
    return "\n".join(out)


def percentiles_svg(series: Mapping[str, Mapping[str, float | None]], title: str) -> str:
    """One line per label over percentiles (``p50``...``p99.9``) of latency in microseconds, log-scaled in ms."""
    pcts = list(dict.fromkeys(p for values in series.values() for p in values))
    present = [v for values in series.values() for v in values.values() if v is not None and v > 0]
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    low = 10 ** math.floor(math.log10(min(present) / 1000)) if present else 0.1
    high = 10 ** math.ceil(math.log10(max(present) / 1000)) if present else 10.0
    if high <= low:
        high = low * 10
    decades = math.log10(high / low)

    def y_of(us: float) -> float:
        return TOP + plot_h - plot_h * math.log10(us / 1000 / low) / decades

    def x_of(i: int) -> float:
        return LEFT + plot_w * (i + 0.5) / max(len(pcts), 1)

    out = _frame(title, "percentile", "latency (ms, log scale)")
    for k in range(round(decades) + 1):
        ms = low * 10 ** k
        y = y_of(ms * 1000)
        out.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + plot_w}" y2="{y:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{ms:g}</text>')
    for i, p in enumerate(pcts):
        out.append(f'<text x="{x_of(i):.1f}" y="{TOP + plot_h + 18}" text-anchor="middle">{escape(p)}</text>')
    out.append(f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#333"/>')
    for i, values in enumerate(series.values()):
        colour = COLOURS[i % len(COLOURS)]
        pts = [(x_of(j), y_of(v)) for j, p in enumerate(pcts) if (v := values.get(p)) is not None and v > 0]
        if pts:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
            out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
            out.extend(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{colour}"/>' for x, y in pts)
    out.extend(_legend(list(series)))
    out.append("</svg>")
    return "\n".join(out)
