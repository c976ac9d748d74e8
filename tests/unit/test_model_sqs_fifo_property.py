"""Hypothesis drives a FIFO queue of the model and a small, obviously-correct reference model side by side.

Rules: send batches with message groups and deduplication ids (some repeated), receive (with or without a
visibility override and a ReceiveRequestAttemptId), delete and change visibility with current and stale handles,
time passing (across the 5-minute windows), reads whose clock runs ahead of the log, and restore from the tables.
Every reply, the delivery order, the group blocking and the Approximate* counters must agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from broker.model import errors
from broker.model.commands import ChangeVisibility, DeleteMessages, ReceiveMessages, SendMessages
from broker.model.sqs_types import DEDUP_WINDOW_MS
from tests.unit.test_model_sqs import ACCOUNT, ModelHarness, entry

Q = "p.fifo"
VISIBILITY_S = 5
RETENTION_S = 600
GROUPS = ("A", "B", "C")
RECENT = 4  # handles are mostly drawn from the latest receives, where group blocking is subtle


@dataclass
class Ref:
    body: str
    group: str
    sent_ts: int
    visible_at: int
    receive_count: int = 0
    handle: str | None = None
    received_at: int = 0


@dataclass
class Reference:
    """Messages in send order; every question answered by looking at all of them."""

    messages: dict[str, Ref] = field(default_factory=dict)  # body -> message (bodies are unique)
    dedup: dict[str, tuple[str, int]] = field(default_factory=dict)  # dedup id -> (body, expires)
    attempts: dict[str, tuple[int, list[tuple[str, str, int]]]] = field(default_factory=dict)

    def send(self, body: str, group: str, dedup_id: str, ts: int) -> str:
        """The body of the message the send is answered with (the original one for a duplicate)."""
        hit = self.dedup.get(dedup_id)
        if hit is not None and hit[1] > ts:
            return hit[0]
        self.dedup[dedup_id] = (body, ts + DEDUP_WINDOW_MS)
        self.messages[body] = Ref(body, group, ts, ts)
        return body

    def in_flight(self, m: Ref, ts: int) -> bool:
        return m.receive_count > 0 and m.visible_at > ts

    def receive(self, ts: int, n: int, timeout: int) -> list[str]:
        by_group: dict[str, list[Ref]] = {}
        for m in self.messages.values():
            by_group.setdefault(m.group, []).append(m)
        out: list[str] = []
        for members in by_group.values():  # dict order: groups by their oldest message
            if any(self.in_flight(m, ts) for m in members):
                continue
            for m in members:
                if len(out) == n or m.visible_at > ts:
                    break
                if m.sent_ts + RETENTION_S * 1000 <= ts:
                    del self.messages[m.body]
                    continue
                m.receive_count += 1
                m.visible_at = ts + timeout * 1000
                m.received_at = ts
                out.append(m.body)
        return out

    def repeat(self, attempt: str, ts: int) -> list[str] | None:
        entry_ = self.attempts.get(attempt)
        if entry_ is None or entry_[0] <= ts:
            return None
        for body, handle, visible_at in entry_[1]:
            m = self.messages.get(body)
            if m is None or m.handle != handle or m.visible_at != visible_at or visible_at <= ts:
                return None
        return [body for body, _, _ in entry_[1]]

    def counts(self, ts: int) -> tuple[int, int]:
        visible = sum(1 for m in self.messages.values() if m.visible_at <= ts)
        return visible, sum(1 for m in self.messages.values() if self.in_flight(m, ts))

    def deliverable(self, ts: int) -> bool:
        by_group: dict[str, list[Ref]] = {}
        for m in self.messages.values():
            by_group.setdefault(m.group, []).append(m)
        return any(not any(self.in_flight(m, ts) for m in ms) and ms[0].visible_at <= ts for ms in by_group.values())


class FifoMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.h = ModelHarness(checkpoints=False)  # the tables change only at checkpoints, taken at random
        self.h.create(Q, FifoQueue="true", VisibilityTimeout=str(VISIBILITY_S),
                      MessageRetentionPeriod=str(RETENTION_S))
        self.ref = Reference()
        self.handles: list[tuple[str, str]] = []
        self.sent = 0
        self.ids: dict[str, str] = {}  # body -> MessageId

    @rule(items=st.lists(st.tuples(st.sampled_from(GROUPS), st.integers(0, 9)), min_size=1, max_size=4))
    def send(self, items: list[tuple[str, int]]) -> None:
        entries = []
        for i, (group, dedup) in enumerate(items):
            body = f"m{self.sent}"
            self.sent += 1
            entries.append(entry(str(i), body)._replace(group_id=group, dedup_id=f"d{dedup}"))
        reply = self.h.run(SendMessages(ACCOUNT, Q, "s", tuple(entries)))
        assert isinstance(reply, list)
        for e, outcome in zip(entries, reply, strict=True):
            assert e.group_id is not None and e.dedup_id is not None
            original = self.ref.send(e.body, e.group_id, e.dedup_id, self.h.ts)
            if original == e.body:
                self.ids[e.body] = e.message_id
            assert isinstance(outcome, tuple) and outcome[0] == self.ids[original]

    @rule(n=st.integers(1, 10), timeout=st.one_of(st.none(), st.integers(0, 30)),
          attempt=st.sampled_from([None, None, "r1", "r2"]))
    def receive(self, n: int, timeout: int | None, attempt: str | None) -> None:
        ts = self.h.ts
        reply = self.h.run(ReceiveMessages(ACCOUNT, Q, n, timeout, attempt))
        assert isinstance(reply, list)
        got = [r.message.body for r in reply]
        repeated = self.ref.repeat(attempt, ts) if attempt is not None else None
        if repeated is not None:
            assert got == repeated
            return
        expected = self.ref.receive(ts, n, VISIBILITY_S if timeout is None else timeout)
        assert got == expected
        taken: list[tuple[str, str, int]] = []
        for r in reply:
            ref = self.ref.messages[r.message.body]
            assert r.receive_count == ref.receive_count and r.message.group_id == ref.group
            ref.handle = r.receipt_handle
            self.handles.append((r.receipt_handle, r.message.body))
            taken.append((ref.body, r.receipt_handle, ref.visible_at))
        if attempt is not None and taken:
            self.ref.attempts[attempt] = (ts + DEDUP_WINDOW_MS, taken)

    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        if not self.handles:
            return
        handle, body = data.draw(st.sampled_from(self.handles))
        assert self.h.run(DeleteMessages(ACCOUNT, Q, (("e", handle),))) == [None]
        ref = self.ref.messages.get(body)
        if ref is not None and ref.handle == handle:
            del self.ref.messages[body]

    @rule(data=st.data(), timeout=st.sampled_from([0, 1, 10]))
    def change_visibility(self, data: st.DataObject, timeout: int) -> None:
        if not self.handles:
            return
        handle, body = data.draw(st.sampled_from(self.handles[-RECENT:]))
        replies = self.h.run(ChangeVisibility(ACCOUNT, Q, (("e", handle, timeout),)))
        assert isinstance(replies, list) and len(replies) == 1
        reply = replies[0]
        ref = self.ref.messages.get(body)
        if ref is None:
            assert isinstance(reply, errors.InvalidParameterValue)
        elif ref.handle != handle or ref.visible_at <= self.h.ts:
            assert isinstance(reply, errors.MessageNotInflight)
        else:
            assert reply is None
            ref.visible_at = self.h.ts + timeout * 1000

    @rule(ms=st.sampled_from([0, 1, 999, 1000, 5000, 30_000, DEDUP_WINDOW_MS, 700_000]))
    def advance_time(self, ms: int) -> None:
        self.h.advance(ms)

    @rule(ahead=st.sampled_from([1, 5000, 20_000]))
    def read_from_the_future(self, ahead: int) -> None:
        """A read whose clock is ahead of the next entries (a follower's or a racing read's view)."""
        self.h.model.has_visible(ACCOUNT, Q, self.h.ts + ahead)

    @rule()
    def checkpoint(self) -> None:
        self.h.checkpoint()

    @rule()
    def restart(self) -> None:
        self.h.checkpoint()  # a clean stop writes a checkpoint
        restored = self.h.restored()
        assert restored.snapshot() == self.h.model.snapshot()
        self.h.model = restored

    @rule()
    def crash(self) -> None:
        """kill -9: the last checkpoint plus the entries after it must give back exactly this state."""
        crashed = self.h.crashed()
        assert crashed.snapshot() == self.h.model.snapshot()
        self.h.model = crashed

    @invariant()
    def counters_agree(self) -> None:
        q = self.h.model.queues[(ACCOUNT, Q)]
        if q.horizon > self.h.ts:
            return  # a read ran ahead: the counters describe that later time until the log catches up
        got = self.h.model.get_queue_attributes(ACCOUNT, Q, ["All"], self.h.ts, "arn")
        assert (int(got["ApproximateNumberOfMessages"]),
                int(got["ApproximateNumberOfMessagesNotVisible"])) == self.ref.counts(self.h.ts)
        assert self.h.model.has_visible(ACCOUNT, Q, self.h.ts) == self.ref.deliverable(self.h.ts)


TestFifoModelAgainstReference = FifoMachine.TestCase
TestFifoModelAgainstReference.settings = settings(max_examples=150, stateful_step_count=40, deadline=None,
                                                  suppress_health_check=[HealthCheck.too_slow])
