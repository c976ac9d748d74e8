"""Message move tasks (StartMessageMoveTask): their replicated state and the rate budget of each step.

A task is created by ``StartMoveTask`` and advanced by ``MoveMessages`` commands that the leader's maintenance loop
proposes; each step moves messages atomically and records its progress in the same entry, so a crash mid-task
neither loses nor duplicates a message. The rate budget is computed from replicated time only: ``clock_ms`` is the
time up to which the budget has been spent (at most one second of unused budget is kept).
"""

from __future__ import annotations

from typing import Any

RUNNING = "RUNNING"
COMPLETED = "COMPLETED"
CANCELLING = "CANCELLING"
CANCELLED = "CANCELLED"
FAILED = "FAILED"
MAX_TASKS_PER_SOURCE = 10  # ListMessageMoveTasks shows at most 10; older finished tasks are dropped
BURST_MS = 1000


class MoveTask:
    """One move task; ``boundary``: only messages with a smaller seq (present when it started) are moved."""

    __slots__ = ("account", "boundary", "clock_ms", "dest", "dest_arn", "failure", "moved", "name", "rate",
                 "source_arn", "started_ts", "status", "task_id", "to_move")

    def __init__(self, task_id: int, account: str, name: str, source_arn: str, dest: tuple[str, str] | None,
                 dest_arn: str | None, rate: int | None, to_move: int, started_ts: int, boundary: int) -> None:
        self.task_id = task_id
        self.account = account
        self.name = name
        self.source_arn = source_arn
        self.dest = dest
        self.dest_arn = dest_arn
        self.rate = rate
        self.to_move = to_move
        self.started_ts = started_ts
        self.boundary = boundary
        self.clock_ms = started_ts
        self.moved = 0
        self.status = RUNNING
        self.failure: str | None = None

    def budget(self, now: int, limit: int) -> int:
        """How many messages this step may move at ``now`` (rate limited; at most ``limit``)."""
        if self.rate is None:
            return limit
        self.clock_ms = max(self.clock_ms, now - BURST_MS)
        return min(limit, (now - self.clock_ms) * self.rate // 1000)

    def spent(self, count: int, now: int) -> None:
        """Record ``count`` moves against the rate budget."""
        if self.rate is not None and count:
            self.clock_ms = min(now, self.clock_ms + -(-count * 1000 // self.rate))

    def next_due(self) -> int:
        """When the next message may move (replicated-time ms)."""
        return self.clock_ms + (0 if self.rate is None else -(-1000 // self.rate))

    def row(self) -> list[Any]:
        return [self.task_id, self.account, self.name, self.source_arn, list(self.dest) if self.dest else None,
                self.dest_arn, self.rate, self.to_move, self.started_ts, self.boundary, self.clock_ms, self.moved,
                self.status, self.failure]

    @classmethod
    def from_row(cls, f: list[Any]) -> MoveTask:
        task = cls(f[0], f[1], f[2], f[3], (f[4][0], f[4][1]) if f[4] else None, f[5], f[6], f[7], f[8], f[9])
        task.clock_ms, task.moved, task.status, task.failure = f[10], f[11], f[12], f[13]
        return task
