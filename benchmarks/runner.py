"""Closed-loop driver: P worker processes x C connections each, a shared deadline, live progress, merged results.

Why processes: one Python process saturates one core long before the server does; several processes let the
generator use what the server leaves. Workers are spawned (not forked) so no parent state leaks into them. They
connect lazily, start together on an event, stop starting new cycles at a deadline on the system-wide monotonic
clock, and send their totals back through a queue. Server CPU is read from ``/proc`` just before the start event and
just after the last worker reports, so setup and teardown are outside the window.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import queue as queue_mod
import resource
import sys
import time
import traceback
from collections.abc import Callable, Coroutine, MutableSequence
from dataclasses import dataclass, field
from multiprocessing.sharedctypes import Synchronized
from typing import Any, TextIO

from benchmarks import pacing, procstat, servermetrics
from benchmarks.awsjson import Target
from benchmarks.histogram import LogHistogram
from benchmarks.scenarios.base import Scenario
from benchmarks.stats import WorkerResult, WorkerStats, merge

START_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class RunConfig:
    processes: int = 2
    connections: int = 32  # per process
    duration: float = 20.0
    server_pid: int | None = None
    progress: bool = True
    uvloop: bool = True
    warmup: float = 0.0  # seconds of load before the measured window (ramp-up, caches, first allocations)
    node_pids: tuple[tuple[str, int], ...] = ()  # (node id, pid) of every cluster node: CPU read per node
    rate: float | None = None  # open loop: units/s over all connections on a fixed schedule; None: closed loop

    def __post_init__(self) -> None:
        if self.processes < 1 or self.connections < 1:
            raise ValueError("--processes and --connections must be >= 1")
        if self.duration <= 0:
            raise ValueError("--duration must be > 0")
        if self.warmup < 0:
            raise ValueError("--warmup must be >= 0")
        if self.rate is not None and self.rate <= 0:
            raise ValueError("--rate must be > 0")


@dataclass
class RunResult:
    scenario: str
    unit: str
    headline: str
    params: dict[str, object]
    config: RunConfig
    elapsed: float
    counters: dict[str, int]
    errors: dict[str, int]
    latency: dict[str, LogHistogram]
    client_cpu_seconds: float
    server_cpu_seconds: float | None
    failures: list[str]
    server_commits: dict[str, float] | None = None  # group-commit figures from the server's /metrics
    timeline: list[tuple[float, float]] = field(default_factory=list)  # (seconds since start, rate over last s)
    server_written_bytes: int | None = None  # storage writes of the server process during the run
    node_cpu_seconds: dict[str, float] | None = None  # per cluster node, when the config names node pids

    @property
    def total(self) -> int:
        return self.counters.get(self.headline, 0)

    @property
    def rate(self) -> float:
        return self.total / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def server_cpu_us_per_unit(self) -> float | None:
        if self.server_cpu_seconds is None or self.total == 0:
            return None
        return self.server_cpu_seconds * 1e6 / self.total

    @property
    def server_written_bytes_per_unit(self) -> float | None:
        if self.server_written_bytes is None or self.total == 0:
            return None
        return self.server_written_bytes / self.total

    @property
    def node_cpu_us_per_unit(self) -> dict[str, float] | None:
        """CPU-µs per unit of each cluster node, plus ``all`` (the whole cluster's)."""
        if self.node_cpu_seconds is None or self.total == 0:
            return None
        per = {node: cpu * 1e6 / self.total for node, cpu in self.node_cpu_seconds.items()}
        per["all"] = sum(self.node_cpu_seconds.values()) * 1e6 / self.total
        return per

    @property
    def client_cpu_us_per_unit(self) -> float | None:
        return self.client_cpu_seconds * 1e6 / self.total if self.total else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario, "params": self.params,
            "processes": self.config.processes, "connections_per_process": self.config.connections,
            "duration_s": self.config.duration, "warmup_s": self.config.warmup, "rate": self.config.rate,
            "elapsed_s": round(self.elapsed, 3), "unit": self.unit,
            "total": self.total, "rate_per_s": round(self.rate, 1), "counters": self.counters, "errors": self.errors,
            "server_pid": self.config.server_pid,
            "server_cpu_s": self.server_cpu_seconds, "server_cpu_us_per_unit": _round(self.server_cpu_us_per_unit),
            "node_cpu_s": self.node_cpu_seconds,
            "node_cpu_us_per_unit": None if self.node_cpu_us_per_unit is None else {
                k: round(v, 2) for k, v in self.node_cpu_us_per_unit.items()},
            "server_written_bytes": self.server_written_bytes,
            "server_written_bytes_per_unit": _round(self.server_written_bytes_per_unit),
            "client_cpu_s": round(self.client_cpu_seconds, 3),
            "client_cpu_us_per_unit": _round(self.client_cpu_us_per_unit),
            "latency_us": {k: h.summary() for k, h in sorted(self.latency.items())},
            "server_commits": self.server_commits, "failures": self.failures,
            "timeline": [list(point) for point in self.timeline],
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _server_written(pid: int | None) -> int | None:
    if pid is None:
        return None
    try:
        return procstat.written_bytes(pid)
    except (OSError, ValueError):
        return None


def _server_cpu(pid: int | None) -> float | None:
    if pid is None:
        return None
    try:
        return procstat.tree_cpu_seconds(pid)
    except (OSError, ValueError, IndexError):
        return None


def _nodes_cpu(node_pids: tuple[tuple[str, int], ...]) -> dict[str, float | None]:
    return {node: _server_cpu(pid) for node, pid in node_pids}


def _cpu_delta(before: dict[str, float | None], after: dict[str, float | None]) -> dict[str, float] | None:
    """Per-node CPU over the window; None when there are no nodes or one could not be read."""
    if not before:
        return None
    out: dict[str, float] = {}
    for node, cpu0 in before.items():
        cpu1 = after.get(node)
        if cpu0 is None or cpu1 is None:
            return None
        out[node] = round(cpu1 - cpu0, 3)
    return out


def run(scenario: Scenario, target: Target, config: RunConfig, log: TextIO = sys.stderr) -> RunResult:
    """Set the scenario up, drive it for ``config.duration`` seconds, tear it down, return merged results."""
    asyncio.run(scenario.setup(target))
    try:
        return _drive(scenario, target, config, log)
    finally:
        asyncio.run(scenario.teardown(target))


def _drive(scenario: Scenario, target: Target, config: RunConfig, log: TextIO) -> RunResult:
    ctx = mp.get_context("spawn")
    progress = ctx.RawArray("q", config.processes)
    errors = ctx.RawArray("q", config.processes)
    deadline = ctx.Value("d", 0.0, lock=False)
    go = ctx.Event()
    ready: mp.Queue[int] = ctx.Queue()
    results: mp.Queue[WorkerResult] = ctx.Queue()
    workers = [ctx.Process(target=worker_main, name=f"bench-worker-{i}",
                           args=(i, scenario, target, config, progress, errors, deadline, go, ready, results))
               for i in range(config.processes)]
    for w in workers:
        w.start()
    try:
        _await_ready(ready, workers)
        before: list[tuple[dict[str, float], float | None, int | None, dict[str, float | None]]] = []

        def measure_from_now() -> None:
            before.append((asyncio.run(servermetrics.scrape(target)), _server_cpu(config.server_pid),
                           _server_written(config.server_pid), _nodes_cpu(config.node_pids)))

        if config.warmup == 0:
            measure_from_now()
        start = time.monotonic()
        measure_start = start + config.warmup
        deadline.value = measure_start + config.duration
        go.set()
        timeline: list[tuple[float, float]] = []
        collected = _collect(results, workers, config, progress, errors, start, log, scenario.unit, timeline,
                             None if before else (measure_start, measure_from_now))
        elapsed = time.monotonic() - measure_start
        metrics0, cpu0, written0, nodes0 = before[0]
        cpu1 = _server_cpu(config.server_pid)
        nodes1 = _nodes_cpu(config.node_pids)
        written1 = _server_written(config.server_pid)
        metrics1 = asyncio.run(servermetrics.scrape(target))
    finally:
        for w in workers:
            w.join(timeout=10)
            if w.is_alive():
                w.kill()
                w.join()
    merged = merge(collected)
    server_cpu = None if cpu0 is None or cpu1 is None else round(cpu1 - cpu0, 3)
    server_written = None if written0 is None or written1 is None else written1 - written0
    return RunResult(scenario.name, scenario.unit, scenario.headline, scenario.describe(), config, elapsed,
                     merged.counters, merged.errors, merged.latency, merged.client_cpu_seconds, server_cpu,
                     merged.failures, servermetrics.commit_summary(metrics0, metrics1, elapsed), timeline,
                     server_written, _cpu_delta(nodes0, nodes1))


def _await_ready(ready: mp.Queue[int], workers: list[Any]) -> None:
    """Wait until every worker is ready; fail fast if one dies while starting (e.g. an import error)."""
    deadline = time.monotonic() + START_TIMEOUT_S
    pending = len(workers)
    while pending:
        try:
            ready.get(timeout=0.5)
            pending -= 1
            continue
        except queue_mod.Empty:
            pass
        dead = [w for w in workers if w.exitcode is not None]
        if dead:
            raise RuntimeError(f"worker {dead[0].name} exited with code {dead[0].exitcode} while starting")
        if time.monotonic() > deadline:
            raise RuntimeError(f"workers not ready within {START_TIMEOUT_S:.0f} s")


def _collect(results: mp.Queue[WorkerResult], workers: list[Any], config: RunConfig,
             progress: MutableSequence[int], errors: MutableSequence[int], start: float, log: TextIO,
             unit: str, timeline: list[tuple[float, float]],
             mark: tuple[float, Callable[[], None]] | None) -> list[WorkerResult]:
    """Gather one result per worker; every second meanwhile append (t, rate) to ``timeline`` and print it.

    ``mark`` is (when, callback): the callback runs once at that time (the end of the warm-up).
    """
    collected: list[WorkerResult] = []
    last_total, last_t = 0, start
    cpu_last = _server_cpu(config.server_pid)
    next_tick = start + 1.0
    hard_deadline = start + config.warmup + config.duration + START_TIMEOUT_S
    while len(collected) < len(workers):
        now = time.monotonic()
        if mark is not None and now >= mark[0]:
            mark[1]()
            mark = None
            continue
        if now > hard_deadline:
            raise RuntimeError(f"workers did not finish within {START_TIMEOUT_S:.0f} s after the deadline")
        wake = next_tick if mark is None else min(next_tick, mark[0])
        try:
            collected.append(results.get(timeout=max(0.0, wake - now)))
            continue
        except queue_mod.Empty:
            pass
        if time.monotonic() < next_tick:
            continue  # woke for the mark, not for a progress tick
        if not any(w.is_alive() for w in workers) and results.empty():
            raise RuntimeError("all workers exited without reporting (see their stderr)")
        now = time.monotonic()
        next_tick = now + 1.0
        total = sum(progress)
        rate = (total - last_total) / (now - last_t)
        timeline.append((round(now - start, 2), round(rate, 1)))
        if config.progress:
            cpu_now = _server_cpu(config.server_pid)
            cpu_text = ""
            if cpu_now is not None and cpu_last is not None:
                cpu_text = f"  server CPU {100 * (cpu_now - cpu_last) / (now - last_t):5.1f}%"
                cpu_last = cpu_now
            line = progress_line(now - start, config.warmup + config.duration, rate, unit, total, sum(errors),
                                 cpu_text)
            if log.isatty():  # a live bar on a terminal; one line per second in a log file
                print(f"\r{line}\x1b[K", end="", file=log, flush=True)
            else:
                print(line, file=log, flush=True)
        last_total, last_t = total, now
    if config.progress and log.isatty():
        print(file=log, flush=True)
    return collected


BAR_WIDTH = 20


def progress_line(elapsed: float, planned: float, rate: float, unit: str, total: int, errors: int,
                  extra: str = "") -> str:
    """``[  3.0s/10s ######-------------- ]      1,234 msgs/s  total 3,702  errors 0`` (+ ``extra``)."""
    done = min(1.0, elapsed / planned) if planned > 0 else 1.0
    filled = round(done * BAR_WIDTH)
    bar = "#" * filled + "-" * (BAR_WIDTH - filled)
    return (f"[{elapsed:6.1f}s/{planned:g}s {bar}] {rate:10,.0f} {unit}/s  total {total:,}  errors {errors:,}"
            f"{extra}")


def worker_main(index: int, scenario: Scenario, target: Target, config: RunConfig,
                progress: MutableSequence[int], errors: MutableSequence[int], deadline: Synchronized[float],
                go: Any, ready: mp.Queue[int], results: mp.Queue[WorkerResult]) -> None:
    """Entry point of one worker process."""
    stats = WorkerStats(scenario.headline, progress, errors, index)
    ready.put(index)
    go.wait()
    end = float(deadline.value)
    usage0 = [resource.getrusage(resource.RUSAGE_SELF)]

    def measure_from_now() -> None:  # end of the warm-up: forget what was counted so far
        stats.reset()
        usage0[0] = resource.getrusage(resource.RUSAGE_SELF)

    failure = None
    try:
        _run_loop(_connections(scenario, target, config, stats, lambda: time.monotonic() >= end, index,
                               end - config.duration, measure_from_now), config.uvloop)
    except BaseException:  # report the crash to the parent instead of dying silently
        failure = f"worker {index}: {traceback.format_exc()}"
    usage1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (usage1.ru_utime - usage0[0].ru_utime) + (usage1.ru_stime - usage0[0].ru_stime)
    result = stats.snapshot(cpu)
    result.failure = failure
    results.put(result)


async def _connections(scenario: Scenario, target: Target, config: RunConfig, stats: WorkerStats,
                       stopping: Callable[[], bool], index: int, measure_start: float,
                       on_measure_start: Callable[[], None]) -> None:
    if config.warmup > 0:
        asyncio.get_running_loop().call_later(max(0.0, measure_start - time.monotonic()), on_measure_start)
    start_ns = round((measure_start - config.warmup) * 1e9)  # the shared start, on perf_counter's clock
    total = config.processes * config.connections
    async with asyncio.TaskGroup() as group:
        for c in range(config.connections):
            conn = index * config.connections + c
            pacer = pacing.closed(stopping)
            slot = paced_slot(scenario, total, conn)
            if config.rate is not None and slot is not None:
                pacer = pacing.Pacer(stopping, *pacing.schedule(config.rate, scenario.units_per_op, slot[1], slot[0],
                                                                start_ns))
            group.create_task(scenario.run_connection(target.for_connection(conn), stats, pacer, conn))


def paced_slot(scenario: Scenario, total: int, conn: int) -> tuple[int, int] | None:
    """(position, count) of connection ``conn`` among the connections that ``--rate`` paces, or None for one it
    does not: a scenario with ``is_consumer(index)`` (consumers of kinesis-cycle, sns-fanout, grpc-stream) follows
    what the producers make, so the whole rate goes to its producers."""
    is_consumer = getattr(scenario, "is_consumer", None)
    if is_consumer is None:
        return conn, total
    producers = [i for i in range(total) if not is_consumer(i)]
    return (producers.index(conn), len(producers)) if conn in producers else None


def _run_loop(main: Coroutine[Any, Any, None], use_uvloop: bool) -> None:
    try:
        import uvloop
    except ImportError:  # optional: the harness also runs where only the standard loop exists
        use_uvloop = False
    if use_uvloop:
        uvloop.run(main)
    else:
        asyncio.run(main)
