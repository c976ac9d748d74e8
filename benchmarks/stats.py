"""What one worker process measures: counters, errors by code, latency per call type; merged in the parent."""

from __future__ import annotations

from collections.abc import Iterable, MutableSequence
from dataclasses import dataclass, field
from typing import Any

from benchmarks.histogram import LogHistogram


class WorkerStats:
    """Per-process accumulators. ``headline`` is the counter that measures throughput; its running total and the
    error total are mirrored into a shared slot (single writer, no lock) so the parent can print live progress."""

    def __init__(self, headline: str, progress: MutableSequence[int] | None = None,
                 errors_shared: MutableSequence[int] | None = None, slot: int = 0) -> None:
        self.headline = headline
        self.counters: dict[str, int] = {}
        self.errors: dict[str, int] = {}
        self.latency: dict[str, LogHistogram] = {}
        self._progress = progress
        self._errors_shared = errors_shared
        self._slot = slot

    def add(self, counter: str, n: int = 1) -> None:
        self.counters[counter] = self.counters.get(counter, 0) + n
        if counter == self.headline and self._progress is not None:
            self._progress[self._slot] += n

    def error(self, code: str, n: int = 1) -> None:
        self.errors[code] = self.errors.get(code, 0) + n
        if self._errors_shared is not None:
            self._errors_shared[self._slot] += n

    def record(self, call: str, micros: int, times: int = 1) -> None:
        hist = self.latency.get(call)
        if hist is None:
            hist = self.latency[call] = LogHistogram()
        hist.record(micros, times)

    def reset(self) -> None:
        """Forget everything counted so far (end of a warm-up); the live progress slots keep running."""
        self.counters = {}
        self.errors = {}
        self.latency = {}

    def snapshot(self, cpu_seconds: float) -> WorkerResult:
        return WorkerResult(dict(self.counters), dict(self.errors),
                            {k: v.to_dict() for k, v in self.latency.items()}, cpu_seconds)


@dataclass
class WorkerResult:
    """A worker's totals in plain data, sent to the parent through a multiprocessing queue."""

    counters: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    latency: dict[str, dict[str, Any]] = field(default_factory=dict)
    cpu_seconds: float = 0.0
    failure: str | None = None  # a crash of the worker itself, reported instead of lost


@dataclass
class MergedStats:
    counters: dict[str, int]
    errors: dict[str, int]
    latency: dict[str, LogHistogram]
    client_cpu_seconds: float
    failures: list[str]


def merge(results: Iterable[WorkerResult]) -> MergedStats:
    merged = MergedStats({}, {}, {}, 0.0, [])
    for res in results:
        for k, n in res.counters.items():
            merged.counters[k] = merged.counters.get(k, 0) + n
        for k, n in res.errors.items():
            merged.errors[k] = merged.errors.get(k, 0) + n
        for k, data in res.latency.items():
            hist = LogHistogram.from_dict(data)
            if k in merged.latency:
                merged.latency[k].merge(hist)
            else:
                merged.latency[k] = hist
        merged.client_cpu_seconds += res.cpu_seconds
        if res.failure:
            merged.failures.append(res.failure)
    return merged
