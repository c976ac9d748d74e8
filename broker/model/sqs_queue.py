"""One SQS queue in memory: its settings, its messages and the hot indexes over them.

Indexes (rebuilt from the tables at start-up, never persisted):
- ``visible``: heap of seqs of messages that can be received, oldest first;
- ``pending``: heap of (visible_at, seq) for delayed and in-flight messages, with lazy invalidation (an entry is
  live only while the message exists, is pending and still has that visible_at);
- ``order``: seqs in arrival order, which is retention order for every message sent here; ``late``: a heap of
  (retention start, seq) for messages that arrived with an older retention start (moved in from another queue
  keeping their enqueue time). The next to expire is the older of the two heads;
- ``groups`` (FIFO queues only, instead of ``visible``): the message groups that can deliver, see ``sqs_fifo``;
- counters per state, so the Approximate* attributes cost O(1) after ``advance``.
"""

from __future__ import annotations

import heapq
import json
from collections import deque

from broker.model.sqs_fifo import FifoGroups
from broker.model.sqs_types import QUEUE_TYPE_FIFO, StoredMessage
from broker.model.sqs_validation import DEFAULT_ATTRIBUTES, FIFO_DEFAULT_ATTRIBUTES, arn_queue

VISIBLE = 0
PENDING = 1


ON_DISK_MESSAGE = 1  # Msg.disk: its MESSAGES row is in a checkpoint
ON_DISK_STATE = 2  # its MSGSTATE row is


class Msg:
    """A message with its mutable delivery state."""

    __slots__ = ("disk", "first_receive_ts", "receipt", "receive_count", "received_at", "retain_from", "seq", "state",
                 "stored", "visible_at")

    def __init__(self, seq: int, stored: StoredMessage, visible_at: int) -> None:
        self.seq = seq
        self.stored = stored
        self.visible_at = visible_at
        self.receive_count = 0
        self.first_receive_ts = 0
        self.receipt = 0  # log index of the latest receive (part of its receipt handle)
        self.received_at = 0
        self.state = PENDING
        # when its retention period started: its enqueue time
        self.retain_from = stored.sent_ts if stored.enqueue_ts is None else stored.enqueue_ts
        # Which of its rows a checkpoint has written (ON_DISK_MESSAGE | ON_DISK_STATE): the model writes its
        # message rows itself at checkpoints (SqsModel.flush_rows).
        self.disk = 0


def _group(msg: Msg) -> str:
    return msg.stored.group_id or ""


class Queue:
    """Settings, messages and indexes of one queue (account, name)."""

    __slots__ = ("account", "attempt_order", "attempts", "attributes", "content_dedup", "created_ts", "dedup",
                 "dedup_by_group", "dedup_order", "delay_ms", "groups", "horizon", "last_purge_ts", "late",
                 "max_size", "messages", "modified_ts", "n_delayed", "n_inflight", "n_visible", "name", "order",
                 "order_ts", "pending",
                 "queue_id", "queue_type", "redrive", "retention_ms", "tags", "visibility_s", "visible")

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
        self.order_ts = 0  # retention start of the last message appended to ``order``
        self.late: list[tuple[int, int]] = []
        self.groups = FifoGroups() if queue_type == QUEUE_TYPE_FIFO else None
        self.horizon = 0  # the latest time ``advance`` was called with (reads may run ahead of the log)
        # FIFO deduplication: key -> (message id, sequence number, expires); keys in expiry order
        self.dedup: dict[tuple[str, str], tuple[str, str, int]] = {}
        self.dedup_order: deque[tuple[int, tuple[str, str]]] = deque()
        # ReceiveRequestAttemptId -> (expires, ((seq, receive index, visible_at), ...)); ids in expiry order
        self.attempts: dict[str, tuple[int, tuple[tuple[int, int, int], ...]]] = {}
        self.attempt_order: deque[tuple[int, str]] = deque()
        self.redrive: tuple[tuple[str, str], int] | None = None
        self.content_dedup = self.dedup_by_group = False
        self.n_visible = 0
        self.n_inflight = 0
        self.n_delayed = 0
        self.delay_ms = self.max_size = self.retention_ms = self.visibility_s = 0
        self.settings_changed()

    def settings_changed(self) -> None:
        """Cache the numeric settings the hot path reads."""
        attrs = self.effective_attributes()
        self.delay_ms = int(attrs["DelaySeconds"]) * 1000
        self.max_size = int(attrs["MaximumMessageSize"])
        self.retention_ms = int(attrs["MessageRetentionPeriod"]) * 1000
        self.visibility_s = int(attrs["VisibilityTimeout"])
        self.content_dedup = attrs.get("ContentBasedDeduplication") == "true"
        self.dedup_by_group = attrs.get("DeduplicationScope") == "messageGroup"
        self.redrive = None
        if attrs.get("RedrivePolicy"):
            policy = json.loads(attrs["RedrivePolicy"])
            target = arn_queue(str(policy["deadLetterTargetArn"]))
            if target is not None:
                self.redrive = (target, int(policy["maxReceiveCount"]))

    @property
    def fifo(self) -> bool:
        return self.groups is not None

    def effective_attributes(self) -> dict[str, str]:
        if self.groups is not None:
            return {**DEFAULT_ATTRIBUTES, **FIFO_DEFAULT_ATTRIBUTES, **self.attributes}
        return {**DEFAULT_ATTRIBUTES, **self.attributes}

    # -- state transitions (counters and indexes kept in step) -------------------------------------------------

    def add(self, msg: Msg, now: int) -> None:
        self.messages[msg.seq] = msg
        if msg.retain_from >= self.order_ts:
            self.order.append(msg.seq)
            self.order_ts = msg.retain_from
        else:
            heapq.heappush(self.late, (msg.retain_from, msg.seq))
        inflight = False
        if msg.visible_at <= now:
            msg.state = VISIBLE
            self.n_visible += 1
            if self.groups is None:
                heapq.heappush(self.visible, msg.seq)
        else:
            if msg.receive_count:
                self.n_inflight += 1
                inflight = True
            else:
                self.n_delayed += 1
            msg.state = PENDING
            heapq.heappush(self.pending, (msg.visible_at, msg.seq))
        if self.groups is not None:
            self.groups.added(msg, _group(msg), inflight, self.messages)

    def remove(self, msg: Msg) -> None:
        del self.messages[msg.seq]
        self._uncount(msg)
        if self.groups is not None:
            self.groups.touch(_group(msg), self.messages)
        if len(self.order) + len(self.late) > 2 * len(self.messages) + 1024:
            self._compact()

    def _uncount(self, msg: Msg) -> None:
        if msg.state == VISIBLE:
            self.n_visible -= 1
        elif msg.receive_count:
            self.n_inflight -= 1
            if self.groups is not None:
                self.groups.inflight_delta(_group(msg), -1, self.messages)
        else:
            self.n_delayed -= 1

    def make_pending(self, msg: Msg, visible_at: int) -> None:
        """Hide ``msg`` until ``visible_at`` (a receive, a visibility change, or an early promotion undone)."""
        self._uncount(msg)
        msg.state = PENDING
        msg.visible_at = visible_at
        if msg.receive_count:
            self.n_inflight += 1
            if self.groups is not None:
                self.groups.inflight_delta(_group(msg), 1, self.messages)
        else:
            self.n_delayed += 1
        heapq.heappush(self.pending, (visible_at, msg.seq))

    def advance(self, now: int) -> None:
        """Make every pending message whose time has come visible."""
        if now > self.horizon:
            self.horizon = now
        pending = self.pending
        messages = self.messages
        groups = self.groups
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
            if groups is None:
                heapq.heappush(self.visible, seq)
            elif msg.receive_count:
                groups.inflight_delta(_group(msg), -1, messages)
            else:
                groups.touch(_group(msg), messages)
        if len(pending) > 2 * (self.n_inflight + self.n_delayed) + 1024:
            self._compact()

    def _compact(self) -> None:
        """Drop stale index entries once they outnumber live ones: memory stays O(live messages), amortised O(1)."""
        self.pending = [(m.visible_at, m.seq) for m in self.messages.values() if m.state == PENDING]
        heapq.heapify(self.pending)
        if self.groups is None:
            self.visible = [m.seq for m in self.messages.values() if m.state == VISIBLE]
            heapq.heapify(self.visible)
        if not self.late:
            self.order = deque(self.messages)  # dict order is arrival order, here also retention order
            return
        self.order, self.order_ts, self.late = deque(), 0, []
        for msg in self.messages.values():
            if msg.retain_from >= self.order_ts:
                self.order.append(msg.seq)
                self.order_ts = msg.retain_from
            else:
                self.late.append((msg.retain_from, msg.seq))
        heapq.heapify(self.late)

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
        messages = self.messages
        order = self.order
        head: Msg | None = None
        while order:
            head = messages.get(order[0])
            if head is not None:
                break
            order.popleft()
        late = self.late
        while late:
            msg = messages.get(late[0][1])
            if msg is not None:
                return msg if head is None or msg.retain_from < head.retain_from else head
            heapq.heappop(late)
        return head

    def has_deliverable(self, now: int) -> bool:
        """Whether a receive at ``now`` could return something (FIFO: some group is ready)."""
        self.advance(now)
        if self.groups is not None:
            return self.groups.has_ready(self.messages)
        return self.n_visible > 0

    def clear(self) -> list[Msg]:
        """Drop every message; return them (the caller records the deletes)."""
        gone = list(self.messages.values())
        self.messages = {}
        self.visible = []
        self.pending = []
        self.order = deque()
        self.late = []
        if self.groups is not None:
            self.groups.clear()
        self.n_visible = self.n_inflight = self.n_delayed = 0
        return gone
