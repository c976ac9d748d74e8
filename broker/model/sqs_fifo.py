"""The message-group index of a FIFO queue: which groups can deliver now, oldest head first, in O(log n).

A group delivers only while none of its messages is in flight, and then strictly from its head (its oldest live
message), which must be visible. ``Queue`` calls the hooks below whenever a message of a FIFO queue is added,
removed, goes in flight or becomes visible; ``ready`` is a heap of (head seq, group) with lazy invalidation: an
entry counts only while its group is ready with that head, so every hook is O(log n) and stale entries are dropped
when met (or all at once when they outnumber the groups).
"""

from __future__ import annotations

import heapq
from collections import deque
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from broker.model.sqs_queue import Msg

VISIBLE = 0  # same value as sqs_queue.VISIBLE (kept here so this module does not import the queue)


class Group:
    """The live messages of one group in arrival order (dead seqs are skipped lazily) and its in-flight count."""

    __slots__ = ("inflight", "name", "seqs")

    def __init__(self, name: str) -> None:
        self.name = name
        self.seqs: deque[int] = deque()
        self.inflight = 0


class FifoGroups:
    """All groups of one FIFO queue, over the queue's ``messages`` dict (passed to each call: it is replaced on
    purge)."""

    __slots__ = ("groups", "ready")

    def __init__(self) -> None:
        self.groups: dict[str, Group] = {}
        self.ready: list[tuple[int, str]] = []

    def head(self, group: Group, messages: dict[int, Msg]) -> Msg | None:
        """The oldest live message of ``group`` (dropping seqs of messages that are gone)."""
        seqs = group.seqs
        while seqs:
            msg = messages.get(seqs[0])
            if msg is not None:
                return msg
            seqs.popleft()
        return None

    def _ready_head(self, group: Group, messages: dict[int, Msg]) -> Msg | None:
        if group.inflight:
            return None
        msg = self.head(group, messages)
        return msg if msg is not None and msg.state == VISIBLE else None

    def touch(self, name: str, messages: dict[int, Msg]) -> None:
        """Re-check one group after a change; queue it as ready if it is."""
        group = self.groups.get(name)
        if group is None:
            return
        head = self.head(group, messages)
        if head is None:
            del self.groups[name]
            return
        if not group.inflight and head.state == VISIBLE:
            heapq.heappush(self.ready, (head.seq, name))
            if len(self.ready) > 2 * len(self.groups) + 1024:
                self._compact(messages)

    def added(self, msg: Msg, name: str, inflight: bool, messages: dict[int, Msg]) -> None:
        group = self.groups.get(name)
        if group is None:
            group = self.groups[name] = Group(name)
        group.seqs.append(msg.seq)
        if inflight:
            group.inflight += 1
        self.touch(name, messages)

    def inflight_delta(self, name: str, delta: int, messages: dict[int, Msg]) -> None:
        group = self.groups.get(name)
        if group is not None:
            group.inflight += delta
            if delta < 0:
                self.touch(name, messages)

    def pop_ready(self, messages: dict[int, Msg]) -> Group | None:
        """The ready group with the oldest head, taken off the heap (it is pushed again by a later ``touch``)."""
        ready = self.ready
        while ready:
            seq, name = heapq.heappop(ready)
            group = self.groups.get(name)
            if group is None:
                continue
            head = self._ready_head(group, messages)
            if head is not None and head.seq == seq:
                return group
        return None

    def has_ready(self, messages: dict[int, Msg]) -> bool:
        ready = self.ready
        while ready:
            seq, name = ready[0]
            group = self.groups.get(name)
            if group is not None:
                head = self._ready_head(group, messages)
                if head is not None and head.seq == seq:
                    return True
            heapq.heappop(ready)
        return False

    def _compact(self, messages: dict[int, Msg]) -> None:
        ready: list[tuple[int, str]] = []
        for name, group in self.groups.items():
            head = self._ready_head(group, messages)
            if head is not None:
                ready.append((head.seq, name))
        heapq.heapify(ready)
        self.ready = ready

    def clear(self) -> None:
        self.groups = {}
        self.ready = []
