"""One SQS queue in memory: its settings, its messages and the hot indexes over them.

Indexes (rebuilt from the tables at start-up, never persisted):
- ``visible``: heap of seqs of messages that can be received, oldest first;
- ``pending``: heap of (visible_at, seq) for delayed and in-flight messages, with lazy invalidation (an entry is
  live only while the message exists, is pending and still has that visible_at);
- ``order``: seqs in send order, for expiry (the oldest live message is the first to expire);
- counters per state, so the Approximate* attributes cost O(1) after ``advance``.
"""

from __future__ import annotations

import heapq
from collections import deque

from broker.model.sqs_types import StoredMessage
from broker.model.sqs_validation import DEFAULT_ATTRIBUTES

VISIBLE = 0
PENDING = 1


class Msg:
    """A message with its mutable delivery state."""

    __slots__ = ("first_receive_ts", "receipt", "receive_count", "received_at", "seq", "state", "stored",
                 "visible_at")

    def __init__(self, seq: int, stored: StoredMessage, visible_at: int) -> None:
        self.seq = seq
        self.stored = stored
        self.visible_at = visible_at
        self.receive_count = 0
        self.first_receive_ts = 0
        self.receipt = 0  # log index of the latest receive (part of its receipt handle)
        self.received_at = 0
        self.state = PENDING


class Queue:
    """Settings, messages and indexes of one queue (account, name)."""

    __slots__ = ("account", "attributes", "created_ts", "delay_ms", "last_purge_ts", "max_size", "messages",
                 "modified_ts", "n_delayed", "n_inflight", "n_visible", "name", "order", "pending", "queue_id",
                 "queue_type", "retention_ms", "tags", "visibility_s", "visible")

    def __init__(self, account: str, name: str, queue_id: int, queue_type: int, attributes: dict[str, str],
                 tags: dict[str, str], created_ts: int, modified_ts: int, last_purge_ts: int = 0) -> None:
        self.account = account
        self.name = name
        self.queue_id = queue_id
        self.queue_type = queue_type
        self.attributes = attributes
        self.tags = tags
        self.created_ts = created_ts
        self.modified_ts = modified_ts
        self.last_purge_ts = last_purge_ts
        self.messages: dict[int, Msg] = {}
        self.visible: list[int] = []
        self.pending: list[tuple[int, int]] = []
        self.order: deque[int] = deque()
        self.n_visible = 0
        self.n_inflight = 0
        self.n_delayed = 0
        self.delay_ms = self.max_size = self.retention_ms = self.visibility_s = 0
        self.settings_changed()

    def settings_changed(self) -> None:
        """Cache the numeric settings the hot path reads."""
        attrs = {**DEFAULT_ATTRIBUTES, **self.attributes}
        self.delay_ms = int(attrs["DelaySeconds"]) * 1000
        self.max_size = int(attrs["MaximumMessageSize"])
        self.retention_ms = int(attrs["MessageRetentionPeriod"]) * 1000
        self.visibility_s = int(attrs["VisibilityTimeout"])

    def effective_attributes(self) -> dict[str, str]:
        return {**DEFAULT_ATTRIBUTES, **self.attributes}

    # -- state transitions (counters and indexes kept in step) -------------------------------------------------

    def add(self, msg: Msg, now: int) -> None:
        self.messages[msg.seq] = msg
        self.order.append(msg.seq)
        if msg.visible_at <= now:
            msg.state = VISIBLE
            self.n_visible += 1
            heapq.heappush(self.visible, msg.seq)
            return
        if msg.receive_count:
            self.n_inflight += 1
        else:
            self.n_delayed += 1
        msg.state = PENDING
        heapq.heappush(self.pending, (msg.visible_at, msg.seq))

    def remove(self, msg: Msg) -> None:
        del self.messages[msg.seq]
        self._uncount(msg)
        if len(self.order) > 2 * len(self.messages) + 1024:
            self._compact()

    def _uncount(self, msg: Msg) -> None:
        if msg.state == VISIBLE:
            self.n_visible -= 1
        elif msg.receive_count:
            self.n_inflight -= 1
        else:
            self.n_delayed -= 1

    def make_pending(self, msg: Msg, visible_at: int) -> None:
        """Hide ``msg`` until ``visible_at`` (a receive, a visibility change, or an early promotion undone)."""
        self._uncount(msg)
        msg.state = PENDING
        msg.visible_at = visible_at
        if msg.receive_count:
            self.n_inflight += 1
        else:
            self.n_delayed += 1
        heapq.heappush(self.pending, (visible_at, msg.seq))

    def advance(self, now: int) -> None:
        """Make every pending message whose time has come visible."""
        pending = self.pending
        messages = self.messages
        while pending and pending[0][0] <= now:
            visible_at, seq = heapq.heappop(pending)
            msg = messages.get(seq)
            if msg is None or msg.state != PENDING or msg.visible_at != visible_at:
                continue  # stale entry
            if msg.receive_count:
                self.n_inflight -= 1
            else:
                self.n_delayed -= 1
            msg.state = VISIBLE
            self.n_visible += 1
            heapq.heappush(self.visible, seq)
        if len(pending) > 2 * (self.n_inflight + self.n_delayed) + 1024:
            self._compact()

    def _compact(self) -> None:
        """Drop stale index entries once they outnumber live ones: memory stays O(live messages), amortised O(1)."""
        self.pending = [(m.visible_at, m.seq) for m in self.messages.values() if m.state == PENDING]
        heapq.heapify(self.pending)
        self.visible = [m.seq for m in self.messages.values() if m.state == VISIBLE]
        heapq.heapify(self.visible)
        self.order = deque(self.messages)  # dict order is insertion order, which is seq order

    def pop_visible(self) -> Msg | None:
        """The oldest visible message, taken off the visible heap (the caller makes it pending or removes it)."""
        visible = self.visible
        messages = self.messages
        while visible:
            msg = messages.get(heapq.heappop(visible))
            if msg is not None and msg.state == VISIBLE:
                return msg
        return None

    def next_visible_at(self) -> int | None:
        """When the earliest pending message becomes visible (may be a stale entry: callers re-check)."""
        while self.pending:
            visible_at, seq = self.pending[0]
            msg = self.messages.get(seq)
            if msg is not None and msg.state == PENDING and msg.visible_at == visible_at:
                return visible_at
            heapq.heappop(self.pending)
        return None

    def oldest(self) -> Msg | None:
        """The oldest live message (the next to expire)."""
        order = self.order
        while order:
            msg = self.messages.get(order[0])
            if msg is not None:
                return msg
            order.popleft()
        return None

    def clear(self) -> list[Msg]:
        """Drop every message; return them (the caller records the deletes)."""
        gone = list(self.messages.values())
        self.messages = {}
        self.visible = []
        self.pending = []
        self.order = deque()
        self.n_visible = self.n_inflight = self.n_delayed = 0
        return gone
