"""FIFO queues in the model: group order and blocking, deduplication windows, sequence numbers, receive attempts."""

from __future__ import annotations

import hashlib

from broker.model import errors
from broker.model.commands import (
    ChangeVisibility,
    DeleteMessages,
    PurgeQueue,
    ReceiveMessages,
    SendEntry,
    SendMessages,
    SetQueueAttributes,
)
from broker.model.sqs_types import DEDUP_WINDOW_MS, SEQ_SLOTS, SEQUENCE_BASE, ReceivedMessage
from tests.unit.test_model_sqs import ACCOUNT, ModelHarness, entry, received

Q = "f.fifo"


def fifo(h: ModelHarness, name: str = Q, **attributes: str) -> object:
    return h.create(name, FifoQueue="true", **attributes)


def send(h: ModelHarness, *items: tuple[str, str | None, str | None], name: str = Q) -> list[object]:
    """Send (body, group, dedup id) entries in one batch."""
    entries: list[SendEntry] = [entry(str(i), body)._replace(group_id=group, dedup_id=dedup)
                                for i, (body, group, dedup) in enumerate(items)]
    reply = h.run(SendMessages(ACCOUNT, name, "AKID", tuple(entries)))
    assert isinstance(reply, list), reply
    return reply


def recv(h: ModelHarness, n: int = 10, timeout: int | None = None, attempt: str | None = None,
         name: str = Q) -> list[ReceivedMessage]:
    return received(h.run(ReceiveMessages(ACCOUNT, name, n, timeout, attempt)))


def bodies(got: list[ReceivedMessage]) -> list[str]:
    return [r.message.body for r in got]


def delete(h: ModelHarness, got: list[ReceivedMessage], name: str = Q) -> None:
    assert h.run(DeleteMessages(ACCOUNT, name, tuple((str(i), r.receipt_handle) for i, r in enumerate(got)))) == [
        None] * len(got)


def test_fifo_queue_attributes_and_type() -> None:
    h = ModelHarness()
    fifo(h)
    got = h.model.get_queue_attributes(ACCOUNT, Q, ["All"], h.ts, "arn")
    assert got["FifoQueue"] == "true" and got["ContentBasedDeduplication"] == "false"
    assert got["DeduplicationScope"] == "queue" and got["FifoThroughputLimit"] == "perQueue"
    assert fifo(h) == h.model.queues[(ACCOUNT, Q)].queue_id  # same attributes: idempotent
    err = h.create(Q, FifoQueue="true", ContentBasedDeduplication="true")
    assert isinstance(err, errors.QueueNameExists)


def test_per_message_group_throughput_needs_message_group_scope() -> None:
    h = ModelHarness()
    err = fifo(h, FifoThroughputLimit="perMessageGroupId")
    assert isinstance(err, errors.InvalidAttributeValue) and (ACCOUNT, Q) not in h.model.queues
    fifo(h, DeduplicationScope="messageGroup", FifoThroughputLimit="perMessageGroupId")
    err = h.run(SetQueueAttributes(ACCOUNT, Q, (("DeduplicationScope", "queue"),)))
    assert isinstance(err, errors.InvalidAttributeValue)
    assert h.model.queues[(ACCOUNT, Q)].attributes["DeduplicationScope"] == "messageGroup"  # unchanged
    assert h.run(SetQueueAttributes(ACCOUNT, Q, (("FifoThroughputLimit", "perQueue"),
                                                 ("DeduplicationScope", "queue")))) is None


def test_group_order_blocking_and_other_groups_flowing() -> None:
    h = ModelHarness()
    fifo(h)
    send(h, ("a1", "A", "1"), ("b1", "B", "2"), ("a2", "A", "3"), ("a3", "A", "4"), ("b2", "B", "5"))
    first = recv(h, n=2)
    assert bodies(first) == ["a1", "a2"]  # one group's messages together, in order
    second = recv(h, n=10)
    assert bodies(second) == ["b1", "b2"]  # A is blocked while a1/a2 are in flight; B flows
    assert recv(h) == []  # both groups blocked
    delete(h, first[:1])
    assert recv(h) == []  # a2 still in flight: A stays blocked
    delete(h, first[1:])
    assert bodies(recv(h)) == ["a3"]


def test_visibility_expiry_redelivers_the_group_from_its_head() -> None:
    h = ModelHarness()
    fifo(h)
    send(h, ("a1", "A", "1"), ("a2", "A", "2"))
    got = recv(h, n=1, timeout=5)
    assert bodies(got) == ["a1"]
    assert recv(h) == []  # a2 waits behind the in-flight a1
    h.advance(5000)
    again = recv(h, n=10)
    assert bodies(again) == ["a1", "a2"] and again[0].receive_count == 2
    assert h.run(ChangeVisibility(ACCOUNT, Q, (("0", again[1].receipt_handle, 0),))) == [None]
    assert recv(h) == []  # a2 visible again but a1 is still in flight
    assert h.run(ChangeVisibility(ACCOUNT, Q, (("0", again[0].receipt_handle, 0),))) == [None]
    assert bodies(recv(h)) == ["a1", "a2"]


def test_groups_are_served_oldest_head_first() -> None:
    h = ModelHarness()
    fifo(h)
    send(h, ("c1", "C", "1"))
    send(h, ("a1", "A", "2"), ("b1", "B", "3"))
    assert [bodies(recv(h, n=1)) for _ in range(3)] == [["c1"], ["a1"], ["b1"]]


def test_deduplication_within_and_after_the_window() -> None:
    h = ModelHarness()
    fifo(h)
    (original,) = send(h, ("x", "A", "d1"))
    assert isinstance(original, tuple) and original[1] == str(SEQUENCE_BASE + h.index * SEQ_SLOTS)
    h.advance(DEDUP_WINDOW_MS - 1)
    dup = send(h, ("different body", "B", "d1"), ("y", "A", "d2"), ("y again", "A", "d2"))
    assert dup[0] == original  # duplicate: the original's id and sequence number, nothing enqueued
    assert dup[2] == dup[1] != original
    assert bodies(recv(h)) == ["x", "y"]
    h.advance(1)
    (fresh,) = send(h, ("x", "A", "d1"))
    assert isinstance(fresh, tuple) and fresh != original and int(fresh[1]) > int(dup[1][1])  # type: ignore[index]
    restored = h.restored()
    assert restored.snapshot() == h.model.snapshot()


def test_content_based_deduplication_and_missing_ids() -> None:
    h = ModelHarness()
    fifo(h)
    (err,) = send(h, ("x", "A", None))
    assert isinstance(err, errors.InvalidParameterValue) and "ContentBasedDeduplication" in err.message
    (err,) = send(h, ("x", None, "1"))
    assert isinstance(err, errors.MissingParameter) and "MessageGroupId" in err.message
    h.run(SetQueueAttributes(ACCOUNT, Q, (("ContentBasedDeduplication", "true"),)))
    first, dup, other = send(h, ("x", "A", None), ("x", "B", None), ("z", "A", None))
    assert first == dup != other
    (got,) = recv(h, n=1)
    assert got.message.dedup_id == hashlib.sha256(b"x").hexdigest()
    assert got.message.group_id == "A" and got.message.sequence_number == first[1]  # type: ignore[index]


def test_deduplication_scoped_per_message_group() -> None:
    h = ModelHarness()
    fifo(h, DeduplicationScope="messageGroup")
    a, b, a_dup = send(h, ("x", "A", "d"), ("x", "B", "d"), ("x", "A", "d"))
    assert a != b and a_dup == a
    assert len(h.model.queues[(ACCOUNT, Q)].messages) == 2


def test_purge_keeps_the_deduplication_window() -> None:
    h = ModelHarness()
    fifo(h)
    (first,) = send(h, ("x", "A", "d"))
    assert h.run(PurgeQueue(ACCOUNT, Q)) is None
    assert send(h, ("x", "A", "d")) == [first]
    assert recv(h) == []


def test_receive_request_attempt_id_returns_the_same_messages() -> None:
    h = ModelHarness()
    fifo(h)
    send(h, ("a1", "A", "1"), ("a2", "A", "2"), ("b1", "B", "3"))
    got = recv(h, n=2, attempt="try-1")
    h.advance(1000)
    retry = recv(h, n=2, attempt="try-1")
    assert retry == got  # same messages, same receipt handles, same counts
    assert h.restored().snapshot() == h.model.snapshot()
    assert bodies(recv(h, n=2, attempt="try-2")) == ["b1"]
    # after a visibility change the attempt is a new receive
    assert h.run(ChangeVisibility(ACCOUNT, Q, (("0", got[0].receipt_handle, 0), ("1", got[1].receipt_handle, 0)))
                 ) == [None, None]
    fresh = recv(h, n=2, attempt="try-1")
    assert bodies(fresh) == ["a1", "a2"] and fresh[0].receipt_handle != got[0].receipt_handle
    h.advance(DEDUP_WINDOW_MS)
    assert recv(h, n=2, attempt="try-1") != fresh  # window passed (and visibility expired): a fresh receive


def test_queue_delay_applies_and_keeps_order() -> None:
    h = ModelHarness()
    fifo(h, DelaySeconds="2")
    send(h, ("a1", "A", "1"))
    assert recv(h) == []
    h.advance(2000)
    assert bodies(recv(h)) == ["a1"]


def test_reads_running_ahead_of_the_log_do_not_change_decisions() -> None:
    """A read at a later clock promotes in-flight messages early; a receive at the entry's time must still see
    the group as blocked, and later see it free again."""
    h = ModelHarness()
    fifo(h)
    send(h, ("a1", "A", "1"), ("a2", "A", "2"))
    recv(h, n=1, timeout=10)
    assert h.model.has_visible(ACCOUNT, Q, h.ts + 20_000)  # a read from the future
    assert recv(h) == []
    h.advance(10_000)
    assert bodies(recv(h)) == ["a1", "a2"]


def test_many_groups_and_messages_keep_index_memory_bounded() -> None:
    h = ModelHarness()
    fifo(h)
    for round_ in range(60):
        send(h, *[(f"m{round_}-{i}", f"g{i % 3}", f"{round_}-{i}") for i in range(10)])
        while got := recv(h, n=10):
            delete(h, got)
    q = h.model.queues[(ACCOUNT, Q)]
    assert not q.messages and q.groups is not None and not q.groups.groups
    assert len(q.groups.ready) <= 1024 and len(q.visible) == 0


def test_a_visible_head_waits_while_a_later_message_of_its_group_is_in_flight() -> None:
    h = ModelHarness()
    fifo(h)
    send(h, ("a1", "A", "1"), ("a2", "A", "2"), ("b1", "B", "3"))
    both = recv(h, n=2, timeout=10)
    assert bodies(both) == ["a1", "a2"]
    assert h.run(ChangeVisibility(ACCOUNT, Q, (("0", both[0].receipt_handle, 0),))) == [None]
    assert bodies(recv(h)) == ["b1"]  # a1 is visible again, but a2 of its group is still in flight
    assert recv(h) == []
    h.advance(10_000)
    assert bodies(recv(h)) == ["a1", "a2"]


def test_a_read_ahead_does_not_free_a_group_whose_later_message_is_in_flight() -> None:
    h = ModelHarness()
    fifo(h)
    send(h, ("a1", "A", "1"), ("a2", "A", "2"))
    both = recv(h, n=2, timeout=10)
    assert h.run(ChangeVisibility(ACCOUNT, Q, (("0", both[0].receipt_handle, 0),))) == [None]
    assert h.model.has_visible(ACCOUNT, Q, h.ts + 20_000)  # a read at a later clock sees the group free
    assert recv(h) == []  # at the entry's own time a2 is still in flight: nothing
    h.advance(5_000)
    assert recv(h) == []
    h.advance(5_000)
    assert bodies(recv(h)) == ["a1", "a2"]
