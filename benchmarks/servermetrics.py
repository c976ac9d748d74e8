"""Server-side counters scraped from ``GET /metrics`` before and after a run (Prometheus text format).

Why: msgs/s and CPU say how fast; the server's own group-commit figures (commits, entries per commit, time per
durable commit) say why. Only plain ``name value`` and ``name{labels} value`` samples are read; a server without
``/metrics`` (e.g. moto) simply yields nothing.
"""

from __future__ import annotations

from benchmarks.awsjson import Target
from benchmarks.http1 import HttpConnection, HttpConnectionError

# Histogram sums/counts that explain a durable broker's throughput (see broker/metrics.py).
COMMIT_SERIES = ("raftmq_fsync_seconds_sum", "raftmq_fsync_seconds_count", "raftmq_commit_batch_entries_sum",
                 "raftmq_commit_batch_entries_count")


def parse(text: str) -> dict[str, float]:
    """Samples by their full name including labels, e.g. ``raftmq_requests_total{action="X"}``."""
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, _, value = line.rpartition(" ")
        if not name:
            continue
        try:
            samples[name.strip()] = float(value)
        except ValueError:
            continue
    return samples


async def scrape(target: Target, timeout: float = 5.0) -> dict[str, float]:
    host, port = target.host_port
    conn = HttpConnection(host, port, timeout)
    try:
        response = await conn.request(f"GET /metrics HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
    except (HttpConnectionError, TimeoutError):
        return {}
    finally:
        conn.close()
    if response.status != 200:
        return {}
    return parse(response.body.decode("utf-8", "replace"))


def commit_summary(before: dict[str, float], after: dict[str, float], elapsed: float) -> dict[str, float] | None:
    """Group-commit figures over the run, or None when the server does not expose them."""
    if not all(name in after for name in COMMIT_SERIES):
        return None
    delta = {name: after[name] - before.get(name, 0.0) for name in COMMIT_SERIES}
    commits = delta["raftmq_commit_batch_entries_count"]
    if commits <= 0:
        return None
    return {"commits": commits, "commits_per_s": round(commits / elapsed, 1) if elapsed > 0 else 0.0,
            "entries_per_commit": round(delta["raftmq_commit_batch_entries_sum"] / commits, 1),
            "commit_ms_mean": round(1000 * delta["raftmq_fsync_seconds_sum"]
                                    / max(delta["raftmq_fsync_seconds_count"], 1.0), 2)}
