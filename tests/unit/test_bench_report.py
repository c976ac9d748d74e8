"""Summaries and medians across repeated runs; the cProfile wrapper used by --server-profile."""

from __future__ import annotations

import pstats
from pathlib import Path

from benchmarks import profiled, report
from benchmarks.histogram import LogHistogram
from benchmarks.runner import RunConfig, RunResult


def result(total: int, server_cpu: float | None, p50: int, commit_ms: float | None = None) -> RunResult:
    hist = LogHistogram()
    hist.record(p50, times=3)
    commits = None if commit_ms is None else {"commits": 10.0, "commits_per_s": 1.0, "entries_per_commit": 5.0,
                                             "commit_ms_mean": commit_ms}
    return RunResult("sqs-cycle", "msgs", "deleted", {"batch": 10}, RunConfig(processes=1, connections=1,
                     duration=10), elapsed=10.0, counters={"deleted": total}, errors={"X:Y": 1},
                     latency={"ReceiveMessage": hist}, client_cpu_seconds=1.0, server_cpu_seconds=server_cpu,
                     failures=[], server_commits=commits)


def test_medians_across_runs() -> None:
    runs = [result(10_000, 1.0, 100, 4.0), result(30_000, 6.0, 300, 8.0), result(20_000, None, 200, 6.0)]
    med = report.median_of(runs)
    assert med["rate_per_s"] == 2_000.0
    assert med["server_cpu_us_per_unit"] == 150.0  # median of 100 and 200; the run without a pid is skipped
    assert med["client_cpu_us_per_unit"] == 50.0  # median of 100, 33.3, 50
    assert med["errors"] == 3
    assert med["commit_ms_mean"] == 6.0
    assert med["latency_us"]["ReceiveMessage"]["p50"] == 200.0
    text = report.median_summary(runs)
    assert "median of 3 runs: 2,000 msgs/s" in text and "runs (rate/s): 1,000, 3,000, 2,000" in text


def test_summary_mentions_what_matters() -> None:
    res = result(10_000, 2.5, 1_234, 7.5)
    res.server_written_bytes = 50_000_000
    text = report.summary(res)
    assert "50.0 MB = 5,000 bytes/msg" in text
    assert "1,000 msgs/s" in text
    assert "250.0 CPU-us/msg" in text
    assert "X:Y 1" in text
    assert "7.50 ms per durable commit" in text
    assert "ReceiveMessage" in text and "1,234" in text


def test_profiled_runs_the_entry_point_and_dumps_stats(tmp_path: Path) -> None:
    out = tmp_path / "p.pstats"
    assert profiled.main([str(out), "builtins:int", "--"]) == 0  # int() returns 0
    assert pstats.Stats(str(out)).stats  # type: ignore[attr-defined]  # set by load_stats, not in typeshed
    out.unlink()
    assert profiled.main([str(out), "sys:exit", "--", "ignored"]) == 0  # SystemExit(None) is a clean exit
    assert out.exists()
    assert profiled.main([str(out), "sys:exit"]) == 2  # missing "--": usage error


def test_cluster_node_cpu_per_unit_and_its_medians() -> None:
    runs = [result(10_000, 1.0, 100), result(20_000, 1.0, 100), result(10_000, 1.0, 100)]
    for run, (n1, n2) in zip(runs, [(1.0, 0.5), (4.0, 1.0), (3.0, 2.0)], strict=True):
        run.node_cpu_seconds = {"n1": n1, "n2": n2}
    assert runs[0].node_cpu_us_per_unit == {"n1": 100.0, "n2": 50.0, "all": 150.0}
    med = report.median_of(runs)
    assert med["node_cpu_us_per_unit"] == {"all": 250.0, "n1": 200.0, "n2": 50.0}
    assert "per node: all 250.0, n1 200.0, n2 50.0" in report.median_summary(runs)
    assert report.median_of([result(1, 1.0, 1)])["node_cpu_us_per_unit"] is None
