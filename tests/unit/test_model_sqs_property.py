"""Hypothesis drives the SQS model and a small, obviously-correct reference model side by side.

Rules: send (with or without delay), receive (with or without a visibility override), delete and change visibility
with current, stale and foreign receipt handles, time passing, expiry sweeps, purges, changes of the queue's
VisibilityTimeout, checkpoints at random, restore from the tables and replay after a crash; every reply and the
Approximate* counters must agree.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from broker.model import errors
from broker.model.commands import (
    ChangeVisibility,
    DeleteMessages,
    ExpireMessages,
    PurgeQueue,
    ReceiveMessages,
    SendMessages,
    SetQueueAttributes,
)
from tests.unit.test_model_sqs import ACCOUNT, ModelHarness, entry

VISIBILITY_S = 5
RETENTION_S = 60
MAX_TOTAL_VISIBILITY_S = 43_200


@dataclass
class RefMessage:
    body: str
    sent_ts: int
    visible_at: int
    receive_count: int = 0
    handle: str | None = None
    received_at: int = 0


class Reference:
    """Messages in a list, every question answered by looking at all of them."""

    def __init__(self) -> None:
        self.messages: dict[str, RefMessage] = {}  # body -> message (bodies are unique), in send order

    def expired(self, m: RefMessage, ts: int) -> bool:
        return m.sent_ts + RETENTION_S * 1000 <= ts

    def receive(self, ts: int, n: int, timeout: int) -> list[str]:
        out: list[str] = []
        for body, m in list(self.messages.items()):
            if len(out) == n:
                break
            if m.visible_at > ts:
                continue
            if self.expired(m, ts):
                del self.messages[body]
                continue
            m.receive_count += 1
            m.visible_at = ts + timeout * 1000
            m.received_at = ts
            out.append(body)
        return out

    def counts(self, ts: int) -> tuple[int, int, int]:
        visible = sum(1 for m in self.messages.values() if m.visible_at <= ts)
        in_flight = sum(1 for m in self.messages.values() if m.visible_at > ts and m.receive_count)
        delayed = sum(1 for m in self.messages.values() if m.visible_at > ts and not m.receive_count)
        return visible, in_flight, delayed


class SqsModelMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.h = ModelHarness(checkpoints=False)  # the tables change only at checkpoints, taken at random
        self.h.create("q", VisibilityTimeout=str(VISIBILITY_S), MessageRetentionPeriod=str(RETENTION_S))
        self.ref = Reference()
        self.handles: list[tuple[str, str]] = []  # (handle, body) of every receive
        self.sent = 0
        self.last_purge: int | None = None
        self.visibility = VISIBILITY_S

    @rule(delay=st.one_of(st.none(), st.integers(0, 20)), count=st.integers(1, 3))
    def send(self, delay: int | None, count: int) -> None:
        bodies = [f"m{self.sent + i}" for i in range(count)]
        self.sent += count
        reply = self.h.run(SendMessages(ACCOUNT, "q", "s", tuple(entry(str(i), b, delay=delay)
                                                                  for i, b in enumerate(bodies))))
        assert reply == [None] * count
        for body in bodies:
            self.ref.messages[body] = RefMessage(body, self.h.ts, self.h.ts + (delay or 0) * 1000)

    @rule(n=st.integers(1, 10), timeout=st.one_of(st.none(), st.integers(0, 30)))
    def receive(self, n: int, timeout: int | None) -> None:
        reply = self.h.run(ReceiveMessages(ACCOUNT, "q", n, timeout))
        expected = self.ref.receive(self.h.ts, n, self.visibility if timeout is None else timeout)
        assert isinstance(reply, list)
        assert [r.message.body for r in reply] == expected
        for r in reply:
            ref = self.ref.messages[r.message.body]
            assert r.receive_count == ref.receive_count
            ref.handle = r.receipt_handle
            self.handles.append((r.receipt_handle, r.message.body))

    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        handle, body = self._pick_handle(data)
        reply = self._single(self.h.run(DeleteMessages(ACCOUNT, "q", (("e", handle),))))
        if not body:
            assert isinstance(reply, errors.ReceiptHandleIsInvalid)
            return
        assert reply is None
        ref = self.ref.messages.get(body)
        if ref is not None and ref.handle == handle:
            del self.ref.messages[body]

    @rule(data=st.data(), timeout=st.sampled_from([0, 1, 10, 100, MAX_TOTAL_VISIBILITY_S]))
    def change_visibility(self, data: st.DataObject, timeout: int) -> None:
        handle, body = self._pick_handle(data)
        reply = self._single(self.h.run(ChangeVisibility(ACCOUNT, "q", (("e", handle, timeout),))))
        ts = self.h.ts
        ref = self.ref.messages.get(body)
        if not body:
            assert isinstance(reply, errors.ReceiptHandleIsInvalid)
        elif ref is None:
            assert isinstance(reply, errors.InvalidParameterValue)
        elif ref.handle != handle or ref.visible_at <= ts:
            assert isinstance(reply, errors.MessageNotInflight)
        elif (ts - ref.received_at) // 1000 + timeout > MAX_TOTAL_VISIBILITY_S:
            assert isinstance(reply, errors.InvalidParameterValue)
        else:
            assert reply is None
            ref.visible_at = ts + timeout * 1000

    @rule(ms=st.sampled_from([0, 1, 999, 1000, 4999, 5000, 20_000, 61_000]))
    def advance_time(self, ms: int) -> None:
        self.h.advance(ms)

    @rule()
    def sweep(self) -> None:
        removed = self.h.run(ExpireMessages())
        gone = [b for b, m in self.ref.messages.items() if self.ref.expired(m, self.h.ts)]
        for body in gone:
            del self.ref.messages[body]
        assert removed == len(gone)

    @rule()
    def purge(self) -> None:
        reply = self.h.run(PurgeQueue(ACCOUNT, "q"))
        if self.last_purge is not None and self.h.ts - self.last_purge < 60_000:
            assert isinstance(reply, errors.PurgeQueueInProgress)
            return
        assert reply is None
        self.last_purge = self.h.ts
        self.ref.messages.clear()

    @rule(seconds=st.sampled_from([0, 1, 5, 30]))
    def set_visibility_timeout(self, seconds: int) -> None:
        assert self.h.run(SetQueueAttributes(ACCOUNT, "q", (("VisibilityTimeout", str(seconds)),))) is None
        self.visibility = seconds

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

    @staticmethod
    def _single(reply: object) -> object:
        assert isinstance(reply, list) and len(reply) == 1
        return reply[0]

    def _pick_handle(self, data: st.DataObject) -> tuple[str, str]:
        if not self.handles or data.draw(st.integers(0, 9)) == 0:
            return "bm90LWEtaGFuZGxl", ""  # not one of ours: every action rejects it, checked below
        return data.draw(st.sampled_from(self.handles))

    @invariant()
    def counters_agree(self) -> None:
        got = self.h.model.get_queue_attributes(ACCOUNT, "q", ["All"], self.h.ts, "arn")
        visible, in_flight, delayed = self.ref.counts(self.h.ts)
        # messages past retention but not yet swept still count until a sweep or a receive removes them
        assert (int(got["ApproximateNumberOfMessages"]), int(got["ApproximateNumberOfMessagesNotVisible"]),
                int(got["ApproximateNumberOfMessagesDelayed"])) == (visible, in_flight, delayed)
        assert self.h.model.has_visible(ACCOUNT, "q", self.h.ts) == (visible > 0)


TestSqsModelAgainstReference = SqsModelMachine.TestCase
TestSqsModelAgainstReference.settings = settings(max_examples=150, stateful_step_count=40, deadline=None,
                                                 suppress_health_check=[HealthCheck.too_slow])
