"""Open-loop schedule: even spacing, phase-shifted connections, and late operations timed from their due time."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest

from benchmarks.pacing import Pacer, closed, schedule


def test_schedule_splits_the_rate_over_connections_with_even_phases() -> None:
    # 1,000 msgs/s in batches of 10 over 4 connections: each sends a batch every 40 ms, 10 ms apart from the next
    plans = [schedule(1000.0, 10, 4, i, 1_000) for i in range(4)]
    assert [interval for interval, _ in plans] == [40_000_000] * 4
    assert [first for _, first in plans] == [1_000, 10_001_000, 20_001_000, 30_001_000]
    with pytest.raises(ValueError):
        schedule(0.0, 1, 1, 0, 0)


def test_open_loop_waits_for_each_due_time_and_never_moves_the_schedule() -> None:
    async def main() -> tuple[list[int], list[int], int]:
        start = time.perf_counter_ns()
        pacer = Pacer(lambda: False, 20_000_000, start + 20_000_000)
        dues, woke = [], []
        for _ in range(3):
            dues.append(await pacer.next())
            woke.append(time.perf_counter_ns())
        await asyncio.sleep(0.1)  # fall behind by several slots
        late_due = await pacer.next()
        return dues, woke, late_due - start

    dues, woke, late = asyncio.run(main())
    assert [b - a for a, b in itertools.pairwise(dues)] == [20_000_000, 20_000_000]
    assert all(w >= d for w, d in zip(woke, dues, strict=True))  # never early
    assert late == 80_000_000  # the 4th slot, although it is now ~160 ms after the start


def test_closed_loop_starts_at_once() -> None:
    pacer = closed(lambda: True)
    before = time.perf_counter_ns()
    assert not pacer.open_loop and pacer.stopping()
    assert before <= asyncio.run(pacer.next()) <= time.perf_counter_ns()
    with pytest.raises(ValueError):
        Pacer(lambda: False, 0)
