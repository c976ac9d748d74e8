"""When each connection starts its next operation: at once (closed loop) or on a fixed schedule (open loop).

Why open loop: a closed loop waits for each reply before sending again, so a server that stalls is simply asked
less and its stall hides from the percentiles (coordinated omission). With ``--rate R`` the arrivals are fixed in
advance (R units/s over all connections, each connection's evenly spaced and phase-shifted so the whole generator
sends at an even pace); an operation that starts late because the previous one was slow is timed from when it
SHOULD have started, as wrk2 does, so a stall shows up in the latency of everything scheduled behind it.
Clocks: ``time.perf_counter_ns`` is CLOCK_MONOTONIC on Linux, the same in every process of the machine.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class Pacer:
    """One connection's schedule; ``stopping()`` says when to stop starting new operations."""

    def __init__(self, stopping: Callable[[], bool], interval_ns: int | None = None, first_ns: int = 0) -> None:
        """``interval_ns`` None: closed loop; else operations are due at ``first_ns + k * interval_ns``."""
        if interval_ns is not None and interval_ns <= 0:
            raise ValueError("interval must be > 0")
        self.stopping = stopping
        self.interval_ns = interval_ns
        self._due = first_ns

    @property
    def open_loop(self) -> bool:
        return self.interval_ns is not None

    async def next(self) -> int:
        """Wait until the next operation is due; its intended start (perf_counter_ns)."""
        now = time.perf_counter_ns()
        if self.interval_ns is None:
            return now
        due = self._due
        self._due += self.interval_ns
        if due > now:
            await asyncio.sleep((due - now) / 1e9)
        return due


def schedule(rate: float, units_per_op: int, connections: int, index: int, start_ns: int) -> tuple[int, int]:
    """(interval, first due time) of connection ``index`` of ``connections`` for ``rate`` units/s overall."""
    if rate <= 0:
        raise ValueError("--rate must be > 0")
    interval = round(units_per_op * connections * 1e9 / rate)
    return interval, start_ns + interval * index // connections


def closed(stopping: Callable[[], bool]) -> Pacer:
    return Pacer(stopping)
