"""What the leader knows about each follower's log, and the flow control of replication to it.

A follower is in one of three states (as in etcd): PROBE (one append in flight until we learn where logs match),
REPLICATE (optimistic pipelining, bounded by in-flight message count and bytes) and SNAPSHOT (an InstallSnapshot is
in progress; nothing else is sent until it completes or times out).
"""

from __future__ import annotations

import enum
from collections import deque


class ProgressState(enum.Enum):
    PROBE = "probe"
    REPLICATE = "replicate"
    SNAPSHOT = "snapshot"


class Inflights:
    """Appends sent but not yet acknowledged: (last index of the message, bytes)."""

    __slots__ = ("_q", "bytes", "max_bytes", "max_count")

    def __init__(self, max_count: int, max_bytes: int) -> None:
        self._q: deque[tuple[int, int]] = deque()
        self.bytes = 0
        self.max_count = max_count
        self.max_bytes = max_bytes

    def add(self, index: int, size: int) -> None:
        self._q.append((index, size))
        self.bytes += size

    def free_le(self, index: int) -> None:
        q = self._q
        while q and q[0][0] <= index:
            self.bytes -= q.popleft()[1]

    def free_first_one(self) -> None:
        """Make room for one message: a heartbeat answer shows the follower is alive, so a lost append must not
        block replication forever (the follower's rejection then rewinds us to probing)."""
        if self._q:
            self.bytes -= self._q.popleft()[1]

    def full(self) -> bool:
        return len(self._q) >= self.max_count or self.bytes >= self.max_bytes

    def reset(self) -> None:
        self._q.clear()
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._q)


class Progress:
    __slots__ = ("inflights", "is_learner", "match", "next", "pending_snapshot", "probe_sent", "recent_active",
                 "snapshot_ticks", "state")

    def __init__(self, next_index: int, max_inflight: int, max_inflight_bytes: int, is_learner: bool) -> None:
        self.match = 0
        self.next = next_index
        self.state = ProgressState.PROBE
        self.probe_sent = False
        self.pending_snapshot = 0
        self.snapshot_ticks = 0
        self.recent_active = False
        self.is_learner = is_learner
        self.inflights = Inflights(max_inflight, max_inflight_bytes)

    def _reset(self, state: ProgressState) -> None:
        self.probe_sent = False
        self.pending_snapshot = 0
        self.snapshot_ticks = 0
        self.state = state
        self.inflights.reset()

    def become_probe(self) -> None:
        if self.state == ProgressState.SNAPSHOT:
            pending = self.pending_snapshot
            self._reset(ProgressState.PROBE)
            self.next = max(self.match + 1, pending + 1)
        else:
            self._reset(ProgressState.PROBE)
            self.next = self.match + 1

    def become_replicate(self) -> None:
        self._reset(ProgressState.REPLICATE)
        self.next = self.match + 1

    def become_snapshot(self, index: int) -> None:
        self._reset(ProgressState.SNAPSHOT)
        self.pending_snapshot = index

    def maybe_update(self, n: int) -> bool:
        """A successful append response up to ``n``; return True if it taught us something."""
        updated = False
        if self.match < n:
            self.match = n
            updated = True
            self.probe_sent = False
        self.next = max(self.next, n + 1)
        return updated

    def maybe_decr_to(self, rejected: int, match_hint: int) -> bool:
        """A rejected append of index ``rejected``; move ``next`` back to just after the follower's hint."""
        if self.state == ProgressState.REPLICATE:
            if rejected <= self.match:
                return False  # stale rejection
            self.next = self.match + 1
            return True
        if self.next - 1 != rejected:
            return False  # stale: we did not probe that index most recently
        self.next = max(min(rejected, match_hint + 1), self.match + 1)
        self.probe_sent = False
        return True

    def sent_entries(self, last_index: int, size: int, count: int) -> None:
        """Record an append we just sent, for flow control."""
        if self.state == ProgressState.REPLICATE:
            if count:
                self.next = last_index + 1
                self.inflights.add(last_index, size)
        elif self.state == ProgressState.PROBE:
            self.probe_sent = True

    def is_paused(self) -> bool:
        if self.state == ProgressState.PROBE:
            return self.probe_sent
        if self.state == ProgressState.REPLICATE:
            return self.inflights.full()
        return True

    def __repr__(self) -> str:
        return f"{self.state.value} match={self.match} next={self.next}" + (" learner" if self.is_learner else "")
