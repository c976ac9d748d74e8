"""Human summary (stderr/stdout) and JSON of one run or of repeated runs (medians)."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from typing import Any

from benchmarks.runner import RunResult

_PCTS = ("p50", "p95", "p99", "p99.9")


def _singular(unit: str) -> str:
    """``msgs`` -> ``msg``, ``deliveries`` -> ``delivery``: for "CPU-us per one unit"."""
    return unit[:-3] + "y" if unit.endswith("ies") else unit.rstrip("s")


def _fmt(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def summary(result: RunResult) -> str:
    cfg = result.config
    lines = [
        f"{result.scenario}: {cfg.processes} processes x {cfg.connections} connections, {cfg.duration:g} s "
        f"(elapsed {result.elapsed:.1f} s{f', after {cfg.warmup:g} s warm-up' if cfg.warmup else ''}) "
        f"{result.params}",
        f"  {result.headline}: {result.total:,} {result.unit} -> {result.rate:,.0f} {result.unit}/s",
        "  counters: " + ", ".join(f"{k} {v:,}" for k, v in sorted(result.counters.items())),
        f"  server CPU: {_fmt(result.server_cpu_seconds, 2)} s = {_fmt(result.server_cpu_us_per_unit)} "
        f"CPU-us/{_singular(result.unit)} (pid {cfg.server_pid if cfg.server_pid is not None else 'unknown'})",
        f"  generator CPU: {result.client_cpu_seconds:,.2f} s = {_fmt(result.client_cpu_us_per_unit)} "
        f"CPU-us/{_singular(result.unit)}",
        "  errors: " + (", ".join(f"{k} {v:,}" for k, v in sorted(result.errors.items())) or "none"),
    ]
    if result.node_cpu_us_per_unit is not None:
        lines.append("  CPU-us/" + _singular(result.unit) + " per node: " + ", ".join(
            f"{node} {v:,.1f}" for node, v in result.node_cpu_us_per_unit.items()))
    if result.server_written_bytes is not None:
        lines.append(f"  server storage writes: {result.server_written_bytes / 1e6:,.1f} MB = "
                     f"{_fmt(result.server_written_bytes_per_unit, 0)} bytes/{_singular(result.unit)}")
    if result.server_commits:
        c = result.server_commits
        lines.append(f"  server group commit: {c['commits']:,.0f} commits ({c['commits_per_s']:,.1f}/s), "
                     f"{c['entries_per_commit']:,.1f} entries/commit, {c['commit_ms_mean']:,.2f} ms per durable "
                     "commit")
    lines.extend(f"  FAILURE {f}" for f in result.failures)
    lines.append(f"  {'latency (us)':<26}{'count':>10}" + "".join(f"{p:>11}" for p in _PCTS) + f"{'max':>11}")
    for call, hist in sorted(result.latency.items()):
        pct = hist.percentiles()
        lines.append(f"  {call:<26}{hist.count:>10,}" + "".join(f"{pct[p]:>11,}" for p in _PCTS)
                     + f"{hist.max:>11,}")
    return "\n".join(lines)


def median_of(results: Sequence[RunResult]) -> dict[str, Any]:
    """Medians across repeated runs of rate, server and generator CPU per unit, and each latency percentile."""
    def med(values: Sequence[float | None]) -> float | None:
        present = [v for v in values if v is not None]
        return round(statistics.median(present), 2) if present else None

    calls = sorted({c for r in results for c in r.latency})
    return {
        "runs": len(results),
        "rate_per_s": med([r.rate for r in results]),
        "server_cpu_us_per_unit": med([r.server_cpu_us_per_unit for r in results]),
        "client_cpu_us_per_unit": med([r.client_cpu_us_per_unit for r in results]),
        "server_written_bytes_per_unit": med([r.server_written_bytes_per_unit for r in results]),
        "node_cpu_us_per_unit": _node_medians(results, med),
        "errors": sum(sum(r.errors.values()) for r in results),
        "entries_per_commit": med([r.server_commits["entries_per_commit"] if r.server_commits else None
                                   for r in results]),
        "commit_ms_mean": med([r.server_commits["commit_ms_mean"] if r.server_commits else None for r in results]),
        "latency_us": {c: {p: med([float(r.latency[c].percentile(float(p[1:]))) if c in r.latency else None
                                   for r in results]) for p in _PCTS} for c in calls},
    }


def _node_medians(results: Sequence[RunResult],
                  med: Callable[[Sequence[float | None]], float | None]) -> dict[str, float | None] | None:
    per_run = [r.node_cpu_us_per_unit for r in results]
    nodes = sorted({n for per in per_run if per for n in per})
    if not nodes:
        return None
    return {n: med([per.get(n) if per else None for per in per_run]) for n in nodes}


def median_summary(results: Sequence[RunResult]) -> str:
    med = median_of(results)
    unit = results[0].unit
    lines = [f"median of {med['runs']} runs: {_fmt(med['rate_per_s'], 0)} {unit}/s, server "
             f"{_fmt(med['server_cpu_us_per_unit'])} CPU-us/{unit.rstrip('s')}, generator "
             f"{_fmt(med['client_cpu_us_per_unit'])} CPU-us/{unit.rstrip('s')}, errors {med['errors']:,}",
             "  runs (rate/s): " + ", ".join(f"{r.rate:,.0f}" for r in results)]
    if med["node_cpu_us_per_unit"]:
        lines.append(f"  CPU-us/{unit.rstrip('s')} per node: " + ", ".join(
            f"{n} {_fmt(v)}" for n, v in med["node_cpu_us_per_unit"].items()))
    if med["server_written_bytes_per_unit"] is not None:
        lines.append(f"  server storage writes: {med['server_written_bytes_per_unit']:,.0f} bytes/{unit.rstrip('s')}")
    if med["commit_ms_mean"] is not None:
        lines.append(f"  server group commit: {med['entries_per_commit']} entries/commit, "
                     f"{med['commit_ms_mean']} ms per durable commit")
    for call, pct in med["latency_us"].items():
        lines.append(f"  {call:<26}" + "  ".join(f"{p} {_fmt(v, 0)}" for p, v in pct.items()))
    return "\n".join(lines)


def to_json(results: Sequence[RunResult], extra: dict[str, Any]) -> dict[str, Any]:
    return {**extra, "median": median_of(results), "runs": [r.to_dict() for r in results]}
