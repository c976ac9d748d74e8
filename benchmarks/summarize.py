"""Result JSON files -> one Markdown table (with ratios to the first) and SVG charts, for RESULTS.md and reviews.

``python -m benchmarks report A.json B.json ... --out DIR`` prints the table and writes ``DIR/summary.md``,
``DIR/timeline.svg`` (throughput per second of each file's median run) and ``DIR/latency.svg`` (median latency
percentiles of each file's key call). ``compare`` (see ``cli``) produces such files and calls this.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from benchmarks import plots, pngplots

# The call whose latency best says what a user sees, in order of preference: end to end, then from the intended
# start (open loop), then the first call of the cycle.
KEY_CALLS = ("put-to-get", "send-to-receive", "send-to-consume", "publish-to-receive", "SendMessageBatch@intended",
             "PutRecords@intended", "Send@intended", "Put@intended", "Publish@intended", "SendMessageBatch",
             "PutRecords", "Send", "Put", "Publish", "ReceiveMessage", "GetRecords")


@dataclass(frozen=True)
class Loaded:
    label: str
    data: dict[str, Any]

    @property
    def median(self) -> dict[str, Any]:
        return dict(self.data["median"])

    @property
    def runs(self) -> list[dict[str, Any]]:
        return list(self.data["runs"])

    @property
    def unit(self) -> str:
        return str(self.runs[0]["unit"]) if self.runs else "units"

    def key_call(self) -> str | None:
        latency = self.median.get("latency_us") or {}
        return next((c for c in KEY_CALLS if c in latency), next(iter(latency), None))

    def median_run(self) -> dict[str, Any]:
        """The run whose rate is the median (the lower middle one for an even count)."""
        ordered = sorted(self.runs, key=lambda r: float(r["rate_per_s"]))
        return ordered[(len(ordered) - 1) // 2]


def load(paths: Sequence[str | Path], labels: Sequence[str] = ()) -> list[Loaded]:
    """Read result files; a file's label is the given one or its name without ``.json``."""
    out = []
    for i, path in enumerate(paths):
        label = labels[i] if i < len(labels) else Path(path).stem
        out.append(Loaded(label, orjson.loads(Path(path).read_bytes())))
    return out


def _num(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _ms(us: float | None) -> str:
    return "-" if us is None else f"{us / 1000:,.1f}"


def markdown_table(results: Sequence[Loaded]) -> str:
    """One row per file: median rate (runs), ratio to the first row, CPU per unit, errors, key-call latency."""
    head = ("| target | scenario | procs x conns | rate/s, median (runs) | x first | server CPU-µs/unit | "
            "all nodes CPU-µs/unit | generator CPU-µs/unit | errors | latency of | p50 / p99 / p99.9 ms | "
            "consumer lag p50 / p99 ms |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    base = results[0].median.get("rate_per_s") if results else None
    for res in results:
        med = res.median
        runs = res.runs
        first = runs[0] if runs else {}
        rate = med.get("rate_per_s")
        ratio = f"{rate / base:.2f}" if rate and base else "-"
        spread = "; ".join(f"{float(r['rate_per_s']):,.0f}" for r in runs)
        nodes = med.get("node_cpu_us_per_unit") or {}
        call = res.key_call()
        pct = (med.get("latency_us") or {}).get(call or "", {})
        lag = (med.get("latency_us") or {}).get("consumer-lag")  # Kinesis MillisBehindLatest, in µs
        lag_text = f"{_ms(lag.get('p50'))} / {_ms(lag.get('p99'))}" if lag else "-"
        rate_text = f"{_num(rate)} ({spread})" + (f" at --rate {first['rate']:g}" if first.get("rate") else "")
        lines.append(
            f"| {res.label} | {first.get('scenario', '?')} | {first.get('processes', '?')} x "
            f"{first.get('connections_per_process', '?')} | {rate_text} | {ratio} | "
            f"{_num(med.get('server_cpu_us_per_unit'), 1)} | {_num(nodes.get('all'), 1)} | "
            f"{_num(med.get('client_cpu_us_per_unit'), 1)} | {med.get('errors', '-')} | {call or '-'} | "
            f"{_ms(pct.get('p50'))} / {_ms(pct.get('p99'))} / {_ms(pct.get('p99.9'))} | {lag_text} |")
    return "\n".join(lines)


def write(results: Sequence[Loaded], out: Path, title: str = "") -> str:
    """Write summary.md, timeline.svg and latency.svg under ``out`` (and the same charts as PNG when matplotlib,
    the ``bench`` extra, is installed); the Markdown."""
    out.mkdir(parents=True, exist_ok=True)
    table = markdown_table(results)
    (out / "summary.md").write_text(table + "\n")
    unit = results[0].unit if results else "units"
    scenario = title or " / ".join(dict.fromkeys(str(r.runs[0]["scenario"]) for r in results if r.runs))
    timeline = {r.label: [(float(t), float(v)) for t, v in r.median_run().get("timeline", [])] for r in results}
    (out / "timeline.svg").write_text(plots.timeline_svg(timeline, f"{scenario}: throughput (median run)", unit))
    calls = {r.label: r.key_call() for r in results}
    same = len(set(calls.values())) == 1
    latency: dict[str, dict[str, float | None]] = {}
    for r in results:
        call = calls[r.label]
        if call:
            latency[r.label if same else f"{r.label} ({call})"] = dict((r.median.get("latency_us") or {})[call])
    what = f"{next(iter(calls.values()))} latency" if same else "latency"
    (out / "latency.svg").write_text(plots.percentiles_svg(latency, f"{scenario}: {what}, median of runs"))
    if pngplots.available():
        pngplots.timeline_png(timeline, f"{scenario}: throughput (median run)", unit, out / "timeline.png")
        pngplots.percentiles_png(latency, f"{scenario}: {what}, median of runs", out / "latency.png")
    return table
