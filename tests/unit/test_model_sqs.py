"""The SQS model's rules, driven the way the log drives it (encoded commands, increasing indexes, leader time).

The harness at the top is shared with the other SQS test modules."""

from __future__ import annotations

import pytest

from broker.model import errors, sqs_model
from broker.model.commands import (
    REGISTRY,
    AddPermission,
    CancelMoveTask,
    ChangeVisibility,
    Command,
    CreateQueue,
    DeleteMessages,
    DeleteQueue,
    ExpireMessages,
    MoveMessages,
    PurgeQueue,
    ReceiveMessages,
    RemovePermission,
    SendEntry,
    SendMessages,
    SetQueueAttributes,
    StartMoveTask,
    TagQueue,
    UnknownCommand,
    UntagQueue,
    decode,
    encode,
)
from broker.model.sqs_keys import MESSAGES, MSGSTATE
from broker.model.sqs_md5 import md5_of_attributes, md5_of_body
from broker.model.sqs_model import SqsModel
from broker.model.sqs_types import SEQ_SLOTS, MessageAttribute, ReceivedMessage
from cluster.api import EntryMeta
from storage import codec
from storage.changes import ChangeSet, MemoryTables

T0 = 1_700_000_000_000
ACCOUNT = "000000000000"


class ModelHarness:
    """A model fed through encode/decode and a MemoryTables that receives every change, like the runtime.

    By default every entry is followed by a checkpoint, so the tables always hold the whole state. With
    ``checkpoints=False`` the tables change only at ``checkpoint()``, and ``crashed()`` rebuilds the model as a node
    restarting after kill -9 would: restored from the last checkpoint, the entries after it replayed."""

    def __init__(self, *, checkpoints: bool = True) -> None:
        self.model = SqsModel()
        self.tables = MemoryTables()
        self.index = 0
        self.ts = T0
        self.every_entry = checkpoints
        self.log: list[tuple[bytes, EntryMeta]] = []  # entries since the last checkpoint
        self.unwritten: list[ChangeSet] = []  # their recorded changes

    def run(self, command: Command) -> object:
        self.index += 1
        changes = ChangeSet()
        data, meta = encode(command), EntryMeta(self.index, 1, self.ts)
        reply = self.model.apply(decode(data, remembered=False), meta, changes)
        if self.every_entry:
            self.model.flush_rows(changes)
            self.tables.apply(changes)
        else:
            self.log.append((data, meta))
            self.unwritten.append(changes)
        return reply

    def checkpoint(self) -> None:
        held = ChangeSet()
        self.model.flush_rows(held)
        for changes in [*self.unwritten, held]:
            self.tables.apply(changes)
        self.log.clear()
        self.unwritten.clear()

    def crashed(self) -> SqsModel:
        model = SqsModel()
        model.restore(self.tables)
        for data, meta in self.log:
            model.apply(decode(data, remembered=False), EntryMeta(meta.index, meta.term, meta.ts, reply=False),
                        ChangeSet())
        return model

    def advance(self, ms: int) -> None:
        self.ts += ms

    def restored(self) -> SqsModel:
        model = SqsModel()
        model.restore(self.tables)
        return model

    def create(self, name: str = "q", **attributes: str) -> object:
        return self.run(CreateQueue(ACCOUNT, name, tuple(sorted(attributes.items()))))

    def send(self, name: str, *bodies: str, delay: int | None = None,
             attributes: tuple[MessageAttribute, ...] = ()) -> object:
        entries = tuple(entry(str(i), body, delay=delay, attributes=attributes) for i, body in enumerate(bodies))
        return self.run(SendMessages(ACCOUNT, name, "AKIDEXAMPLE", entries))


def entry(entry_id: str, body: str, *, delay: int | None = None,
          attributes: tuple[MessageAttribute, ...] = ()) -> SendEntry:
    size = len(body.encode()) + sum(len(n) + len(t) + len(s.encode() if s else b or b"") for n, t, s, b in attributes)
    return SendEntry(entry_id, f"id-{entry_id}-{body}", body, md5_of_body(body), size, delay, attributes,
                     md5_of_attributes(attributes))


def received(reply: object) -> list[ReceivedMessage]:
    assert isinstance(reply, list), reply
    return reply


def receive(h: ModelHarness, name: str = "q", n: int = 10, timeout: int | None = None) -> list[ReceivedMessage]:
    return received(h.run(ReceiveMessages(ACCOUNT, name, n, timeout)))


def attrs(h: ModelHarness, name: str = "q", *names: str) -> dict[str, str]:
    return h.model.get_queue_attributes(ACCOUNT, name, list(names) or ["All"], h.ts, "arn")


# -- queues -----------------------------------------------------------------------------------------------------


def test_create_queue_is_idempotent_and_rejects_different_attributes() -> None:
    h = ModelHarness()
    queue_id = h.create("q", VisibilityTimeout="30")
    assert h.create("q") == queue_id
    assert h.create("q", VisibilityTimeout="30", DelaySeconds="0") == queue_id  # equal to the defaults
    err = h.create("q", VisibilityTimeout="31")
    assert isinstance(err, errors.QueueNameExists) and "VisibilityTimeout" in err.message
    assert err.legacy_code == "QueueAlreadyExists"


def test_attributes_report_counters_timestamps_and_defaults() -> None:
    h = ModelHarness()
    h.create("q", DelaySeconds="5")
    h.advance(2000)
    h.run(SetQueueAttributes(ACCOUNT, "q", (("VisibilityTimeout", "60"),)))
    h.send("q", "a", "b", "c")
    h.send("q", "now", delay=0)
    assert len(receive(h, n=1)) == 1
    got = attrs(h)
    assert got["ApproximateNumberOfMessages"] == "0"
    assert got["ApproximateNumberOfMessagesNotVisible"] == "1"
    assert got["ApproximateNumberOfMessagesDelayed"] == "3"
    assert got["CreatedTimestamp"] == str(T0 // 1000)
    assert got["LastModifiedTimestamp"] == str((T0 + 2000) // 1000)
    assert got["VisibilityTimeout"] == "60" and got["MaximumMessageSize"] == "1048576"
    assert got["MessageRetentionPeriod"] == "345600" and got["QueueArn"] == "arn"
    h.advance(5000)
    assert attrs(h, "q", "ApproximateNumberOfMessages", "DelaySeconds") == {
        "ApproximateNumberOfMessages": "3", "DelaySeconds": "5"}


def test_deleted_queue_is_gone_and_its_name_reusable_at_once() -> None:
    h = ModelHarness()
    first = h.create("q")
    h.send("q", "old")
    assert h.run(DeleteQueue(ACCOUNT, "q")) is None
    assert isinstance(h.run(DeleteQueue(ACCOUNT, "q")), errors.QueueDoesNotExist)
    assert isinstance(h.send("q", "x"), errors.QueueDoesNotExist)
    with pytest.raises(errors.QueueDoesNotExist):
        h.model.queue(ACCOUNT, "q")
    assert h.create("q") != first
    assert receive(h) == []
    assert not h.tables.tables.get(MESSAGES)


def test_list_queues_by_prefix_with_pages() -> None:
    h = ModelHarness()
    for name in ("b1", "a1", "a2", "a3"):
        h.create(name)
    h.run(CreateQueue("111111111111", "a0"))
    assert h.model.list_queues(ACCOUNT) == (["a1", "a2", "a3", "b1"], None)
    assert h.model.list_queues(ACCOUNT, "a") == (["a1", "a2", "a3"], None)
    page, token = h.model.list_queues(ACCOUNT, "a", 2)
    assert page == ["a1", "a2"] and token
    assert h.model.list_queues(ACCOUNT, "a", 2, token) == (["a3"], None)
    with pytest.raises(errors.InvalidParameterValue):
        h.model.list_queues(ACCOUNT, "a", 2, "garbage")
    with pytest.raises(errors.InvalidParameterValue):  # a token of another account
        h.model.list_queues("111111111111", "a", 2, token)


def test_tags_merge_and_remove() -> None:
    h = ModelHarness()
    h.run(CreateQueue(ACCOUNT, "q", (), (("team", "a"),)))
    h.run(TagQueue(ACCOUNT, "q", (("env", "dev"), ("team", "b"))))
    h.run(UntagQueue(ACCOUNT, "q", ("env", "absent")))
    assert h.model.list_queue_tags(ACCOUNT, "q") == {"team": "b"}
    too_many = tuple((f"k{i}", "v") for i in range(50))
    assert isinstance(h.run(TagQueue(ACCOUNT, "q", too_many)), errors.InvalidParameterValue)
    assert h.restored().list_queue_tags(ACCOUNT, "q") == {"team": "b"}


def test_purge_removes_everything_once_per_minute() -> None:
    h = ModelHarness()
    h.create("q")
    h.send("q", "a", "b")
    receive(h, n=1)
    assert h.run(PurgeQueue(ACCOUNT, "q")) is None
    assert attrs(h, "q", "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible") == {
        "ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}
    h.advance(59_999)
    err = h.run(PurgeQueue(ACCOUNT, "q"))
    assert isinstance(err, errors.PurgeQueueInProgress) and "60 seconds" in err.message
    h.advance(1)
    assert h.run(PurgeQueue(ACCOUNT, "q")) is None
    assert not h.tables.tables.get(MESSAGES) and not h.tables.tables.get(MSGSTATE)


# -- messages ---------------------------------------------------------------------------------------------------


def test_received_message_is_invisible_for_exactly_its_timeout_then_redelivered() -> None:
    h = ModelHarness()
    h.create("q", VisibilityTimeout="10")
    h.send("q", "hello")
    first = receive(h)
    assert [r.message.body for r in first] == ["hello"]
    assert first[0].receive_count == 1 and first[0].first_receive_ts == T0
    h.advance(9_999)
    assert receive(h) == []
    assert h.model.next_visible_at(ACCOUNT, "q") == T0 + 10_000
    h.advance(1)
    again = receive(h, timeout=5)
    assert [(r.message.message_id, r.receive_count, r.first_receive_ts) for r in again] == [
        (first[0].message.message_id, 2, T0)]
    assert again[0].receipt_handle != first[0].receipt_handle


def test_receive_takes_oldest_first_up_to_max() -> None:
    h = ModelHarness()
    h.create("q")
    h.send("q", *(f"m{i}" for i in range(5)))
    assert [r.message.body for r in receive(h, n=3)] == ["m0", "m1", "m2"]
    assert [r.message.body for r in receive(h, n=3)] == ["m3", "m4"]


def test_message_carries_system_attributes_and_md5s() -> None:
    h = ModelHarness()
    h.create("q")
    attributes = (("timestamp", "Number", "1493147359900", None),)
    assert h.send("q", "hello", attributes=attributes) == [None]
    (got,) = receive(h)
    assert got.message.md5_body == "5d41402abc4b2a76b9719d911017c592"
    assert got.message.md5_attributes == "235c5c510d26fb653d073faed50ae77c"  # value AWS returns
    assert got.message.sent_ts == T0 and got.message.sender_id == "AKIDEXAMPLE"


def test_delays_at_queue_and_message_level() -> None:
    h = ModelHarness()
    h.create("q", DelaySeconds="3")
    h.send("q", "queue-delay")
    h.send("q", "own-delay", delay=1)
    h.send("q", "no-delay", delay=0)
    assert [r.message.body for r in receive(h)] == ["no-delay"]
    h.advance(1000)
    assert [r.message.body for r in receive(h)] == ["own-delay"]
    h.advance(1999)
    assert receive(h) == []
    h.advance(1)
    assert [r.message.body for r in receive(h)] == ["queue-delay"]


def test_oversize_message_fails_its_entry_only() -> None:
    h = ModelHarness()
    h.create("q", MaximumMessageSize="1024")
    reply = h.run(SendMessages(ACCOUNT, "q", "s", (entry("a", "x" * 1024), entry("b", "x" * 1025))))
    assert isinstance(reply, list) and reply[0] is None
    assert isinstance(reply[1], errors.InvalidParameterValue) and "shorter than 1024 bytes" in reply[1].message
    assert len(receive(h)) == 1


def test_delete_needs_the_latest_receipt_handle_and_is_idempotent() -> None:
    h = ModelHarness()
    h.create("q", VisibilityTimeout="1")
    h.send("q", "m")
    old = receive(h)[0].receipt_handle
    h.advance(1000)
    new = receive(h)[0].receipt_handle
    assert h.run(DeleteMessages(ACCOUNT, "q", (("a", old),))) == [None]  # succeeds, deletes nothing
    assert attrs(h, "q", "ApproximateNumberOfMessagesNotVisible")["ApproximateNumberOfMessagesNotVisible"] == "1"
    assert h.run(DeleteMessages(ACCOUNT, "q", (("a", new),))) == [None]
    assert attrs(h, "q", "ApproximateNumberOfMessagesNotVisible")["ApproximateNumberOfMessagesNotVisible"] == "0"
    assert h.run(DeleteMessages(ACCOUNT, "q", (("a", new),))) == [None]
    assert not h.tables.tables.get(MESSAGES) and not h.tables.tables.get(MSGSTATE)


def test_invalid_receipt_handles() -> None:
    h = ModelHarness()
    h.create("q")
    h.create("other")
    h.send("other", "m")
    foreign = receive(h, "other")[0].receipt_handle
    reply = h.run(DeleteMessages(ACCOUNT, "q", (("a", "garbage"), ("b", foreign))))
    assert isinstance(reply, list)
    assert all(isinstance(r, errors.ReceiptHandleIsInvalid) for r in reply)
    assert '"garbage"' in reply[0].message
    reply = h.run(ChangeVisibility(ACCOUNT, "q", (("a", "AAAA", 5),)))
    assert isinstance(reply, list) and isinstance(reply[0], errors.ReceiptHandleIsInvalid)


def test_change_visibility_rules() -> None:
    h = ModelHarness()
    h.create("q", VisibilityTimeout="30")
    h.send("q", "a", "b")
    handle_a, handle_b = (r.receipt_handle for r in receive(h))
    h.model.take_wakeups()
    assert h.run(ChangeVisibility(ACCOUNT, "q", (("1", handle_a, 0), ("2", handle_b, 100)))) == [None, None]
    assert h.model.take_wakeups() == {(ACCOUNT, "q")}
    again = receive(h, timeout=10)
    assert [r.message.body for r in again] == ["a"]
    # the old handle of a received-again message is no longer in flight
    stale = h.run(ChangeVisibility(ACCOUNT, "q", (("1", handle_a, 5),)))
    assert isinstance(stale, list) and isinstance(stale[0], errors.MessageNotInflight)
    h.advance(10_000)  # "a" visible again: not in flight
    late = h.run(ChangeVisibility(ACCOUNT, "q", (("1", again[0].receipt_handle, 5),)))
    assert isinstance(late, list) and isinstance(late[0], errors.MessageNotInflight)
    # 12 hours from the receive at most
    h.advance(50_000)
    over = h.run(ChangeVisibility(ACCOUNT, "q", (("2", handle_b, 43_200 - 59),)))
    assert isinstance(over, list) and isinstance(over[0], errors.InvalidParameterValue)
    assert h.run(ChangeVisibility(ACCOUNT, "q", (("2", handle_b, 43_200 - 60),))) == [None]
    h.run(DeleteMessages(ACCOUNT, "q", (("2", handle_b),)))
    gone = h.run(ChangeVisibility(ACCOUNT, "q", (("2", handle_b, 5),)))
    assert isinstance(gone, list) and isinstance(gone[0], errors.InvalidParameterValue)
    assert "does not exist" in gone[0].message


def test_retention_expiry_by_sweep_and_on_receive() -> None:
    h = ModelHarness()
    h.create("short", MessageRetentionPeriod="60")
    h.create("long")
    h.send("short", "a")
    h.advance(10_000)
    h.send("short", "b")
    h.send("long", "c")
    assert h.model.next_expiry_ms() == T0 + 60_000
    h.advance(50_000)
    assert h.run(ExpireMessages()) == 1
    assert h.model.next_expiry_ms() == T0 + 70_000
    h.advance(10_000)
    assert receive(h, "short") == []  # "b" expired exactly now: skipped and removed
    assert h.model.next_expiry_ms() == T0 + 10_000 + 345_600_000
    assert [r.message.body for r in receive(h, "long")] == ["c"]
    assert len(h.tables.tables[MESSAGES]) == 1


def test_in_flight_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqs_model, "MAX_IN_FLIGHT", 3)
    h = ModelHarness()
    h.create("q")
    h.send("q", *"abcde")
    assert len(receive(h, n=2)) == 2
    assert len(receive(h, n=10)) == 1
    assert isinstance(h.run(ReceiveMessages(ACCOUNT, "q", 1)), errors.OverLimit)


def test_wakeups_only_for_receivable_messages() -> None:
    h = ModelHarness()
    h.create("q")
    h.model.take_wakeups()
    h.send("q", "later", delay=5)
    assert h.model.take_wakeups() == set()
    h.send("q", "now")
    assert h.model.take_wakeups() == {(ACCOUNT, "q")}


def test_gauges_and_has_visible() -> None:
    h = ModelHarness()
    h.create("q")
    assert not h.model.has_visible(ACCOUNT, "q", h.ts)
    h.send("q", "a", "b")
    h.send("q", "c", delay=10)
    receive(h, n=1)
    assert h.model.has_visible(ACCOUNT, "q", h.ts)
    assert list(h.model.gauges(h.ts)) == [(ACCOUNT, "q", 1, 1, 1)]
    assert list(h.model.gauges(h.ts + 30_000)) == [(ACCOUNT, "q", 3, 0, 0)]


# -- persistence ------------------------------------------------------------------------------------------------


def test_restore_rebuilds_the_same_model_and_behaviour() -> None:
    h = ModelHarness()
    h.create("q", VisibilityTimeout="5")
    h.run(CreateQueue(ACCOUNT, "tagged", (("DelaySeconds", "2"),), (("k", "v"),)))
    h.send("q", *(f"m{i}" for i in range(6)), attributes=(("b", "Binary", None, b"\x00\x01"),))
    h.send("tagged", "t")
    got = receive(h, n=3)
    h.run(DeleteMessages(ACCOUNT, "q", (("1", got[0].receipt_handle),)))
    h.run(ChangeVisibility(ACCOUNT, "q", (("1", got[1].receipt_handle, 20),)))
    h.advance(1000)
    restored = h.restored()
    assert restored.snapshot() == h.model.snapshot()
    assert list(restored.gauges(h.ts)) == list(h.model.gauges(h.ts))
    h.advance(5000)
    assert restored.get_queue_attributes(ACCOUNT, "q", ["All"], h.ts, "arn") == attrs(h, "q")
    twin = ModelHarness()
    twin.model, twin.tables, twin.index, twin.ts = restored, h.tables, h.index, h.ts
    assert [r.message.body for r in receive(twin)] == [r.message.body for r in receive(h)]


def test_every_command_round_trips_through_its_encoding() -> None:
    samples: list[Command] = [
        CreateQueue(ACCOUNT, "q", (("DelaySeconds", "1"),), (("k", "v"),)), DeleteQueue(ACCOUNT, "q"),
        PurgeQueue(ACCOUNT, "q"), SetQueueAttributes(ACCOUNT, "q", (("VisibilityTimeout", "3"),)),
        TagQueue(ACCOUNT, "q", (("k", "v"),)), UntagQueue(ACCOUNT, "q", ("k",)),
        SendMessages(ACCOUNT, "q", "s", (entry("1", "b", delay=3, attributes=(("n", "Binary", None, b"x"),)),)),
        ReceiveMessages(ACCOUNT, "q", 10, 0), DeleteMessages(ACCOUNT, "q", (("1", "h"),)),
        ChangeVisibility(ACCOUNT, "q", (("1", "h", 7),)), ExpireMessages(5),
        SendMessages(ACCOUNT, "q.fifo", "s", (entry("1", "b")._replace(group_id="g", dedup_id="d"),)),
        ReceiveMessages(ACCOUNT, "q", 10, None, "attempt"),
        AddPermission(ACCOUNT, "q", "l", ("111111111111",), ("SendMessage",), "arn:aws:sqs:r:0:q"),
        RemovePermission(ACCOUNT, "q", "l"),
        StartMoveTask(ACCOUNT, "d", "arn:aws:sqs:r:0:d", ACCOUNT, "q", "arn:aws:sqs:r:0:q", 5),
        MoveMessages(7, 3), CancelMoveTask(ACCOUNT, "d", 7),
    ]
    assert sorted({c.TYPE_ID for c in samples}) == sorted(t for t in REGISTRY if t < 100)
    for command in samples:
        # repr: tuples stay tuples, NamedTuples stay named
        assert repr(decode(encode(command), remembered=False)) == repr(command)
    with pytest.raises(UnknownCommand):
        decode(codec.pack([999, 5]))


def test_indexes_stay_bounded_by_live_messages() -> None:
    h = ModelHarness()
    h.create("q")
    h.send("q", "pinned", delay=900)  # the oldest message stays while thousands come and go
    for _ in range(300):
        h.send("q", *"abcdefghij")
        got = receive(h)
        for r in got:  # push each handle's visibility around before deleting: stale pending entries pile up
            h.run(ChangeVisibility(ACCOUNT, "q", (("c", r.receipt_handle, 60),)))
        h.run(DeleteMessages(ACCOUNT, "q", tuple((str(i), r.receipt_handle) for i, r in enumerate(got))))
    q = h.model.queues[(ACCOUNT, "q")]
    assert len(q.messages) == 1
    assert len(q.order) <= 2 * 1 + 1024 + 10 and len(q.pending) <= 2 * 1 + 1024 + 30
    assert h.model.next_expiry_ms() == T0 + 345_600_000


def test_reads_with_a_clock_ahead_of_the_log_do_not_change_apply_results() -> None:
    """A read may advance the indexes to a later time than the next entry's (e.g. after a leader change)."""
    plain, early = ModelHarness(), ModelHarness()
    handles = []
    for h in (plain, early):
        h.create("q", VisibilityTimeout="10")
        h.send("q", "a", "b")
        handles.append(receive(h, n=1)[0].receipt_handle)
        h.send("q", "c", delay=5)
    early.model.get_queue_attributes(ACCOUNT, "q", ["All"], early.ts + 60_000, "arn")  # promotes a and c early
    assert early.model.has_visible(ACCOUNT, "q", early.ts + 60_000)
    assert handles[0] == handles[1]
    for h in (plain, early):
        h.advance(1000)
        assert h.run(ChangeVisibility(ACCOUNT, "q", (("x", handles[0], 20),))) == [None]
    assert [r.message.body for r in receive(early)] == [r.message.body for r in receive(plain)] == ["b"]
    assert early.model.snapshot() == plain.model.snapshot()
    assert early.tables.tables == plain.tables.tables



def test_a_send_command_with_more_entries_than_its_sequence_stride_is_refused_whole() -> None:
    """Messages of one log entry are numbered index * SEQ_SLOTS + position; one more would collide with the next
    entry's."""
    h = ModelHarness()
    h.create("q")
    reply = h.send("q", *(f"m{i}" for i in range(SEQ_SLOTS + 1)))
    assert isinstance(reply, list) and len(reply) == SEQ_SLOTS + 1
    assert all(isinstance(r, errors.TooManyEntriesInBatchRequest) for r in reply)
    assert list(h.tables.scan(MESSAGES)) == []
    h.send("q", *(f"m{i}" for i in range(SEQ_SLOTS)))
    h.send("q", "next")
    bodies = [r.message.body for r in receive(h, n=1000)] + [r.message.body for r in receive(h, n=1000)]
    assert sorted(bodies) == sorted([f"m{i}" for i in range(SEQ_SLOTS)] + ["next"])


# -- replies nobody awaits ---------------------------------------------------------------------------------------


class FollowerHarness(ModelHarness):
    """Applies every entry as a follower does for the leader's proposals: ``reply=False``."""

    def run(self, command: Command) -> object:
        self.index += 1
        changes = ChangeSet()
        reply = self.model.apply(decode(encode(command), remembered=False),
                                 EntryMeta(self.index, 1, self.ts, reply=False), changes)
        self.model.flush_rows(changes)
        self.tables.apply(changes)
        return reply


def test_a_receive_nobody_awaits_builds_no_messages_and_reaches_the_same_state() -> None:
    leader, follower = ModelHarness(), FollowerHarness()
    for h in (leader, follower):
        h.create("q")
        h.create("f.fifo", FifoQueue="true", ContentBasedDeduplication="true")
        h.send("q", *(f"m{i}" for i in range(6)))
        h.run(SendMessages(ACCOUNT, "f.fifo", "AKIDEXAMPLE", tuple(
            entry(str(i), f"f{i}")._replace(group_id="g") for i in range(3))))
    commands: list[Command] = [ReceiveMessages(ACCOUNT, "q", 4, 30), ReceiveMessages(ACCOUNT, "q", 10, 0),
                               ReceiveMessages(ACCOUNT, "f.fifo", 2, 30, "attempt-1")]
    replies = [(leader.run(c), follower.run(c)) for c in commands]
    assert [len(received(r)) for r, _ in replies] == [4, 2, 2]
    assert [f for _, f in replies] == [[], [], []]
    handles = tuple((str(i), m.receipt_handle) for i, m in enumerate(received(replies[0][0])))
    for h in (leader, follower):
        h.run(DeleteMessages(ACCOUNT, "q", handles))  # the leader's handles are valid on the follower too
        h.advance(1000)
    assert follower.tables.tables == leader.tables.tables
    # The FIFO attempt was recorded alike: a retry within 5 minutes returns the same messages on both.
    again = ReceiveMessages(ACCOUNT, "f.fifo", 2, 30, "attempt-1")
    assert [m.message.message_id for m in received(follower.restored().apply(again, EntryMeta(99, 1, follower.ts),
                                                                           ChangeSet()))] == \
        [m.message.message_id for m in received(replies[2][0])]
    assert attrs(leader, "q") == attrs(follower, "q")
