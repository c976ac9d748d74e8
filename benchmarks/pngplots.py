"""PNG charts (the issue asks for PNG, for people who look rather than read), drawn by matplotlib when installed.

matplotlib is the optional ``bench`` extra (and in ``test``, so this path is tested), never a dependency of the
broker: ``summarize.write`` always writes the dependency-free SVGs of ``plots`` and adds these PNGs when
``available()``. Same two charts, same inputs: throughput per second of each target's median run, and latency
percentiles on a log scale.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from benchmarks.plots import COLOURS

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

SIZE_IN = (8.2, 3.8)
DPI = 110


def available() -> bool:
    return importlib.util.find_spec("matplotlib") is not None


def _figure(title: str, x_label: str, y_label: str) -> tuple[Figure, Axes]:
    import matplotlib

    matplotlib.use("Agg")  # no display: render to files only
    from matplotlib import pyplot

    fig, ax = pyplot.subplots(figsize=SIZE_IN, dpi=DPI)
    ax.set_title(title, fontsize=11)
    ax.set_xlabel(x_label)
    ax.set_ylabel(y_label)
    ax.grid(True, color="#ddd")
    return fig, ax


def _save(fig: Figure, out: Path) -> None:
    from matplotlib import pyplot

    if fig.axes[0].get_legend_handles_labels()[0]:
        fig.axes[0].legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=9, frameon=False)
    fig.savefig(out, bbox_inches="tight")
    pyplot.close(fig)


def timeline_png(series: Mapping[str, Sequence[tuple[float, float]]], title: str, unit: str, out: Path) -> None:
    """One line per label of (seconds since start, rate per second), written to ``out``."""
    fig, ax = _figure(title, "seconds since the load started", f"{unit}/s")
    for i, (label, pts) in enumerate(series.items()):
        if pts:
            ax.plot([t for t, _ in pts], [r for _, r in pts], label=label, color=COLOURS[i % len(COLOURS)],
                    linewidth=1.8)
    ax.set_ylim(bottom=0)
    ax.set_xlim(left=0)
    from matplotlib.ticker import FuncFormatter

    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))  # 50,000 rather than 50000
    _save(fig, out)


def percentiles_png(series: Mapping[str, Mapping[str, float | None]], title: str, out: Path) -> None:
    """One line per label over percentiles of latency (µs in, ms on a log axis), written to ``out``."""
    pcts = list(dict.fromkeys(p for values in series.values() for p in values))
    fig, ax = _figure(title, "percentile", "latency (ms, log scale)")
    for i, (label, values) in enumerate(series.items()):
        pts = [(j, v / 1000) for j, p in enumerate(pcts) if (v := values.get(p)) is not None and v > 0]
        if pts:
            ax.plot([x for x, _ in pts], [y for _, y in pts], marker="o", label=label,
                    color=COLOURS[i % len(COLOURS)], linewidth=1.8)
    ax.set_yscale("log")
    from matplotlib.ticker import FuncFormatter

    plain = FuncFormatter(lambda v, _: f"{v:g}")  # 20 and 0.5, not 2 x 10^1 and 5 x 10^-1
    ax.yaxis.set_major_formatter(plain)
    ax.yaxis.set_minor_formatter(plain)
    ax.set_xticks(range(len(pcts)), pcts)
    _save(fig, out)
