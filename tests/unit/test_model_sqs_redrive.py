"""Dead-letter queues, redrive policies, message move tasks and permissions in the model."""

from __future__ import annotations

import json

from broker.model import errors
from broker.model.commands import (
    AddPermission,
    CancelMoveTask,
    ChangeVisibility,
    DeleteMessages,
    DeleteQueue,
    ExpireMessages,
    MoveMessages,
    RemovePermission,
    SetQueueAttributes,
    StartMoveTask,
)
from broker.model.sqs_movetask import CANCELLED, COMPLETED, FAILED, RUNNING
from broker.model.sqs_validation import check_redrive_policy
from tests.unit.test_model_sqs import ACCOUNT, T0, ModelHarness, receive

ARN = "arn:aws:sqs:us-east-1:000000000000:"


def redrive(dlq: str, count: int) -> str:
    return check_redrive_policy(json.dumps({"deadLetterTargetArn": ARN + dlq, "maxReceiveCount": str(count)}))


def pipe(h: ModelHarness, count: int = 2, src: str = "src", dlq: str = "dlq") -> None:
    h.create(dlq)
    assert isinstance(h.create(src, RedrivePolicy=redrive(dlq, count)), int)


def test_message_moves_to_the_dlq_at_the_receive_that_exceeds_max_receive_count() -> None:
    h = ModelHarness()
    pipe(h, count=2)
    h.send("src", "m")
    sent_ts = h.ts
    for expected in (1, 2):
        (got,) = receive(h, "src", timeout=0)
        assert got.receive_count == expected
    h.advance(10)
    assert receive(h, "src") == []  # the third receive moves it instead of delivering it
    (moved,) = receive(h, "dlq")
    assert moved.message.message_id == "id-0-m" and moved.message.body == "m" and moved.receive_count == 1
    assert moved.message.sent_ts == sent_ts and moved.message.dlq_source == f"{ACCOUNT}/src"
    assert h.model.queues[(ACCOUNT, "src")].messages == {}
    assert h.restored().snapshot() == h.model.snapshot()


def test_a_move_to_the_dlq_between_checkpoints_survives_a_crash_on_either_side() -> None:
    h = ModelHarness(checkpoints=False)
    pipe(h, count=1)
    h.send("src", "kept", "moved", "deleted")
    h.checkpoint()  # the three messages are on disk, never received
    first = receive(h, "src", n=3, timeout=0)
    assert [m.receive_count for m in first] == [1, 1, 1]
    assert h.crashed().snapshot() == h.model.snapshot()
    h.checkpoint()  # now with their delivery state
    h.advance(10)
    assert receive(h, "src", n=3) == []  # the second receive moves all three
    h.run(DeleteMessages(ACCOUNT, "src", (("0", first[2].receipt_handle),)))  # a stale handle: already moved
    (gone,) = receive(h, "dlq", n=1)
    h.run(DeleteMessages(ACCOUNT, "dlq", (("0", gone.receipt_handle),)))  # created and deleted since the checkpoint
    assert h.crashed().snapshot() == h.model.snapshot()  # the moves and the delete replayed after the checkpoint
    h.checkpoint()
    assert h.restored().snapshot() == h.model.snapshot()
    remaining = sorted(m.stored.body for m in h.model.queues[(ACCOUNT, "dlq")].messages.values())
    assert remaining == sorted({"kept", "moved", "deleted"} - {gone.message.body})
    assert not h.model.queues[(ACCOUNT, "src")].messages


def test_a_dead_letter_expires_by_its_original_enqueue_time_before_newer_messages() -> None:
    h = ModelHarness()
    h.create("dlq", MessageRetentionPeriod="60")
    h.create("src", RedrivePolicy=redrive("dlq", 1))
    h.send("src", "old")
    h.advance(50_000)
    h.send("dlq", "new")
    assert len(receive(h, "src", timeout=0)) == 1
    assert receive(h, "src") == []  # "old" moves to the DLQ, keeping its enqueue time
    assert h.model.next_expiry_ms() == T0 + 60_000
    h.advance(10_000)
    assert h.run(ExpireMessages()) == 1
    assert [m.stored.body for m in h.model.queues[(ACCOUNT, "dlq")].messages.values()] == ["new"]
    assert h.restored().snapshot() == h.model.snapshot()


def test_dlq_moves_are_bounded_per_receive_and_the_rest_follow() -> None:
    h = ModelHarness()
    pipe(h, count=1)
    h.send("src", *[str(i) for i in range(10)])
    h.send("src", *[str(i) for i in range(10, 20)])
    assert len(receive(h, "src", timeout=5)) + len(receive(h, "src", timeout=5)) == 20
    h.advance(5000)
    assert receive(h, "src") == []  # moves 16
    assert len(h.model.queues[(ACCOUNT, "dlq")].messages) == 16
    assert receive(h, "src") == []  # moves the other 4
    assert sorted(m.stored.body for m in h.model.queues[(ACCOUNT, "dlq")].messages.values()) == sorted(
        str(i) for i in range(20))


def test_redrive_policy_validation() -> None:
    h = ModelHarness()
    h.create("f.fifo", FifoQueue="true")
    err = h.create("src", RedrivePolicy=redrive("missing", 3))
    assert isinstance(err, errors.InvalidParameterValue) and "does not exist" in err.message
    err = h.create("src", RedrivePolicy=redrive("f.fifo", 3))
    assert isinstance(err, errors.InvalidParameterValue) and "same type" in err.message
    h.create("deny", RedriveAllowPolicy='{"redrivePermission":"denyAll"}')
    err = h.create("src", RedrivePolicy=redrive("deny", 3))
    assert isinstance(err, errors.InvalidParameterValue) and "does not allow" in err.message
    h.create("only", RedriveAllowPolicy=json.dumps({"redrivePermission": "byQueue",
                                                    "sourceQueueArns": [ARN + "ok"]}))
    assert isinstance(h.create("src", RedrivePolicy=redrive("only", 3)), errors.InvalidParameterValue)
    assert isinstance(h.create("ok", RedrivePolicy=redrive("only", 3)), int)
    h.create("plain")
    assert h.run(SetQueueAttributes(ACCOUNT, "plain", (("RedrivePolicy", redrive("only", 3)),))) is not None
    assert "RedrivePolicy" not in h.model.queues[(ACCOUNT, "plain")].attributes
    assert h.model.dead_letter_sources(ACCOUNT, "only") == [(ACCOUNT, "ok")]
    assert h.run(SetQueueAttributes(ACCOUNT, "ok", (("RedrivePolicy", ""),))) is None
    assert h.model.dead_letter_sources(ACCOUNT, "only") == []


def test_a_deleted_dlq_stops_the_moves() -> None:
    h = ModelHarness()
    pipe(h, count=1)
    h.send("src", "m")
    receive(h, "src", timeout=0)
    h.run(DeleteQueue(ACCOUNT, "dlq"))
    (again,) = receive(h, "src")
    assert again.receive_count == 2


def start(h: ModelHarness, dest: str | None = None, rate: int | None = None, source: str = "dlq") -> object:
    return h.run(StartMoveTask(ACCOUNT, source, ARN + source, ACCOUNT if dest else None, dest,
                               ARN + dest if dest else None, rate))


def fill_dlq(h: ModelHarness, n: int) -> None:
    pipe(h, count=1)
    h.send("src", *[f"m{i}" for i in range(n)])
    assert len(receive(h, "src", timeout=0)) == n
    assert receive(h, "src") == []  # all moved
    assert len(h.model.queues[(ACCOUNT, "dlq")].messages) == n


def test_move_task_redrives_back_to_the_source_at_the_rate() -> None:
    h = ModelHarness()
    fill_dlq(h, 10)
    task_id = start(h, rate=2)
    assert isinstance(task_id, int)
    assert isinstance(start(h), errors.InvalidParameterValue)  # one active task per source
    assert h.run(MoveMessages(task_id)) == 0  # no time has passed: no budget
    h.advance(1000)
    assert h.run(MoveMessages(task_id)) == 2
    h.advance(500)
    assert h.run(MoveMessages(task_id)) == 1
    h.advance(60_000)  # idle time buys at most one second of budget
    assert h.run(MoveMessages(task_id)) == 2
    (task,) = h.model.move_tasks(ACCOUNT, "dlq")
    assert (task.status, task.moved, task.to_move) == (RUNNING, 5, 10)
    assert h.restored().snapshot() == h.model.snapshot()
    moved_back = receive(h, "src")
    assert len(moved_back) == 5 and all(r.message.dlq_source is None for r in moved_back)
    for _ in range(4):
        h.advance(1000)
        h.run(MoveMessages(task_id))
    assert (task.status, task.moved) == (COMPLETED, 10)
    assert len(h.model.queues[(ACCOUNT, "src")].messages) == 10 and not h.model.queues[(ACCOUNT, "dlq")].messages


def test_move_task_to_a_destination_cancel_and_failures() -> None:
    h = ModelHarness()
    fill_dlq(h, 4)
    h.create("other")
    assert isinstance(start(h, dest="nope"), errors.ResourceNotFoundException)
    assert isinstance(start(h, source="src"), errors.InvalidParameterValue)  # not a DLQ
    assert isinstance(start(h, source="gone"), errors.ResourceNotFoundException)
    task_id = start(h, dest="other", rate=1)
    assert isinstance(task_id, int)
    h.advance(1000)
    assert h.run(MoveMessages(task_id)) == 1
    assert [r.message.body for r in receive(h, "other")] == ["m0"]
    assert h.run(CancelMoveTask(ACCOUNT, "dlq", task_id)) == 1
    assert isinstance(h.run(CancelMoveTask(ACCOUNT, "dlq", task_id)), errors.ResourceNotFoundException)
    h.advance(1000)
    assert h.run(MoveMessages(task_id)) == 0
    second = start(h, dest="other")
    assert isinstance(second, int)
    h.run(DeleteQueue(ACCOUNT, "other"))
    assert h.run(MoveMessages(second)) == 0
    newest, oldest = h.model.move_tasks(ACCOUNT, "dlq")
    assert (newest.status, newest.failure) == (FAILED, "AWS.SimpleQueueService.NonExistentQueue")
    assert oldest.status == CANCELLED
    assert len(h.model.queues[(ACCOUNT, "dlq")].messages) == 3  # nothing lost when the destination vanished


def test_move_task_leaves_messages_sent_after_it_started() -> None:
    h = ModelHarness()
    fill_dlq(h, 2)
    task_id = start(h)
    assert isinstance(task_id, int)
    h.send("dlq", "late")
    assert h.run(MoveMessages(task_id)) == 2
    assert h.run(MoveMessages(task_id)) == 0
    (task,) = h.model.move_tasks(ACCOUNT, "dlq")
    assert task.status == COMPLETED
    assert [m.stored.body for m in h.model.queues[(ACCOUNT, "dlq")].messages.values()] == ["late"]


def test_a_message_sent_straight_to_the_dlq_fails_a_move_back_to_its_source() -> None:
    h = ModelHarness()
    fill_dlq(h, 1)
    h.send("dlq", "direct")
    task_id = start(h)
    assert isinstance(task_id, int)
    assert h.run(MoveMessages(task_id)) == 1
    (task,) = h.model.move_tasks(ACCOUNT, "dlq")
    assert (task.status, task.failure, task.moved) == (FAILED, "CouldNotDetermineMessageSource", 1)
    assert [m.stored.body for m in h.model.queues[(ACCOUNT, "dlq")].messages.values()] == ["direct"]


def test_in_flight_dlq_messages_are_not_moved() -> None:
    h = ModelHarness()
    fill_dlq(h, 2)
    (held,) = receive(h, "dlq", n=1)
    task_id = start(h)
    assert isinstance(task_id, int)
    assert h.run(MoveMessages(task_id)) == 1
    assert h.model.move_tasks(ACCOUNT, "dlq")[0].status == COMPLETED
    assert h.run(ChangeVisibility(ACCOUNT, "dlq", (("0", held.receipt_handle, 30),))) == [None]  # still there


def test_add_and_remove_permission_edit_the_policy() -> None:
    h = ModelHarness()
    h.create("q")
    arn = ARN + "q"
    assert h.run(AddPermission(ACCOUNT, "q", "one", ("111111111111",), ("SendMessage",), arn)) is None
    assert h.run(AddPermission(ACCOUNT, "q", "two", ("111111111111", "222222222222"),
                               ("ReceiveMessage", "DeleteMessage"), arn)) is None
    err = h.run(AddPermission(ACCOUNT, "q", "one", ("111111111111",), ("SendMessage",), arn))
    assert isinstance(err, errors.InvalidParameterValue) and "Already exists" in err.message
    policy = json.loads(h.model.queues[(ACCOUNT, "q")].attributes["Policy"])
    assert policy["Version"] == "2012-10-17" and policy["Id"] == arn + "/SQSDefaultPolicy"
    assert policy["Statement"] == [
        {"Sid": "one", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111111111111:root"},
         "Action": "SQS:SendMessage", "Resource": arn},
        {"Sid": "two", "Effect": "Allow",
         "Principal": {"AWS": ["arn:aws:iam::111111111111:root", "arn:aws:iam::222222222222:root"]},
         "Action": ["SQS:ReceiveMessage", "SQS:DeleteMessage"], "Resource": arn}]
    assert h.run(RemovePermission(ACCOUNT, "q", "one")) is None
    err = h.run(RemovePermission(ACCOUNT, "q", "one"))
    assert isinstance(err, errors.InvalidParameterValue) and "can't find label" in err.message
    assert [s["Sid"] for s in json.loads(h.model.queues[(ACCOUNT, "q")].attributes["Policy"])["Statement"]] == [
        "two"]
    assert h.run(RemovePermission(ACCOUNT, "q", "two")) is None
    assert "Policy" not in h.model.queues[(ACCOUNT, "q")].attributes
    assert h.restored().snapshot() == h.model.snapshot()
