"""Message move tasks (DLQ redrive) end to end: Start/List/CancelMessageMoveTask against a real server.

What is proved: a task moves every message of the dead-letter queue, to a given destination or back to each
message's own source queue; MaxNumberOfMessagesPerSecond really limits the rate (at every observation the moved
count stays within one second's burst of rate x elapsed, and the whole move takes about N/rate seconds); the task
reports status, counts and timestamps as ListMessageMoveTasks documents them, one active task per source, and a
cancel stops it without losing messages. Under ``kill -9`` in the middle of a task, after restart the task runs to
completion and every message is in the destination exactly once (RaftMQ moves each batch in one replicated
command, so it promises more than SQS's at-least-once: the test asserts no loss AND no duplicate).
Waiting for a task's progress polls ListMessageMoveTasks (the API offers no event to wait on).
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.integration.conftest import ClientFactory, both_protocols, make_sqs_client
from tests.integration.helpers import error_code
from tests.integration.server import RaftMQServer

MakeQueue = Callable[..., str]
POLL = 0.2  # seconds between ListMessageMoveTasks polls


def arn_of(sqs: Any, url: str) -> str:
    arn: str = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return arn


def redrive(target_arn: str, max_receive_count: int) -> str:
    return json.dumps({"deadLetterTargetArn": target_arn, "maxReceiveCount": max_receive_count})


def fill(sqs: Any, url: str, bodies: list[str]) -> None:
    for start in range(0, len(bodies), 10):
        chunk = bodies[start:start + 10]
        response = sqs.send_message_batch(QueueUrl=url, Entries=[
            {"Id": str(i), "MessageBody": body} for i, body in enumerate(chunk)])
        assert response.get("Failed", []) == []


def drain(sqs: Any, url: str) -> list[str]:
    """Every visible message's body (hidden for 10 minutes so none comes twice) until a receive finds none."""
    bodies: list[str] = []
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                       VisibilityTimeout=600).get("Messages", [])
        if not messages:
            return bodies
        bodies.extend(m["Body"] for m in messages)


def tasks(sqs: Any, source_arn: str) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = sqs.list_message_move_tasks(SourceArn=source_arn, MaxResults=10).get(
        "Results", [])
    return results


def wait_for(sqs: Any, source_arn: str, done: Callable[[dict[str, Any]], bool], timeout: float,
             seen: list[tuple[float, dict[str, Any]]] | None = None) -> dict[str, Any]:
    """Poll the newest task of ``source_arn`` until ``done(task)``; record (monotonic time, task) in ``seen``."""
    deadline = time.monotonic() + timeout
    while True:
        latest = tasks(sqs, source_arn)[0]
        if seen is not None:
            seen.append((time.monotonic(), latest))
        if done(latest):
            return latest
        assert time.monotonic() < deadline, f"task did not get there in {timeout} s: {latest}"
        time.sleep(POLL)


def finished(task: dict[str, Any]) -> bool:
    return task["Status"] in {"COMPLETED", "CANCELLED", "FAILED"}


def dlq_with_source(sqs: Any, make_queue: MakeQueue) -> tuple[str, str]:
    """(dlq URL, source URL): the source's RedrivePolicy makes the dlq a dead-letter queue."""
    dlq = make_queue(suffix="dlq")
    source = make_queue({"RedrivePolicy": redrive(arn_of(sqs, dlq), 1)}, suffix="src")
    return dlq, source


# -- rate and completion --------------------------------------------------------------------------------------------

def test_move_task_redrives_n_messages_at_the_requested_rate(sqs: Any, make_queue: MakeQueue) -> None:
    dlq, source = dlq_with_source(sqs, make_queue)
    bodies = [f"m-{i:03d}" for i in range(30)]
    fill(sqs, dlq, bodies)
    rate = 10
    seen: list[tuple[float, dict[str, Any]]] = []
    t_start = time.monotonic()
    handle = sqs.start_message_move_task(SourceArn=arn_of(sqs, dlq), DestinationArn=arn_of(sqs, source),
                                         MaxNumberOfMessagesPerSecond=rate)["TaskHandle"]
    assert handle
    final = wait_for(sqs, arn_of(sqs, dlq), finished, timeout=30, seen=seen)
    elapsed = seen[-1][0] - t_start
    assert final["Status"] == "COMPLETED", final
    assert final["ApproximateNumberOfMessagesMoved"] == 30
    assert final["ApproximateNumberOfMessagesToMove"] == 30
    for at, task in seen:
        allowed = rate * (at - t_start) + rate  # one second's burst on top of the steady rate
        assert task["ApproximateNumberOfMessagesMoved"] <= allowed, (at - t_start, task)
    assert 30 / rate - 1.0 <= elapsed <= 30 / rate + 6.0, f"30 messages at {rate}/s took {elapsed:.1f} s"
    assert sorted(drain(sqs, source)) == bodies
    assert drain(sqs, dlq) == []


def test_moved_messages_wake_a_long_poll_on_the_destination(sqs: Any, sqs_factory: ClientFactory,
                                                            make_queue: MakeQueue) -> None:
    dlq, source = dlq_with_source(sqs, make_queue)
    fill(sqs, dlq, ["wake the consumer"])
    poller = sqs_factory()
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(lambda: poller.receive_message(QueueUrl=source, WaitTimeSeconds=15).get("Messages", []))
        done, _ = wait([future], timeout=0.3)
        assert not done
        sqs.start_message_move_task(SourceArn=arn_of(sqs, dlq), DestinationArn=arn_of(sqs, source))
        final = wait_for(sqs, arn_of(sqs, dlq), finished, timeout=10)
        t_moved = time.monotonic()
        got = future.result(timeout=20)
        latency = time.monotonic() - t_moved
    assert final["Status"] == "COMPLETED"
    assert [m["Body"] for m in got] == ["wake the consumer"]
    assert latency <= 1.0, f"the consumer saw the moved message {latency:.2f} s after the task completed"


def test_a_task_on_an_empty_dlq_completes_with_nothing_moved(sqs: Any, make_queue: MakeQueue) -> None:
    dlq, source = dlq_with_source(sqs, make_queue)
    sqs.start_message_move_task(SourceArn=arn_of(sqs, dlq), DestinationArn=arn_of(sqs, source))
    final = wait_for(sqs, arn_of(sqs, dlq), finished, timeout=10)
    assert (final["Status"], final["ApproximateNumberOfMessagesMoved"], final["ApproximateNumberOfMessagesToMove"]) \
        == ("COMPLETED", 0, 0)
    assert "FailureReason" not in final


@both_protocols
def test_without_a_destination_messages_go_back_to_their_own_source(sqs: Any, make_queue: MakeQueue) -> None:
    dlq = make_queue(suffix="dlq")
    policy = redrive(arn_of(sqs, dlq), 1)
    first, second = make_queue({"RedrivePolicy": policy}, suffix="a"), make_queue({"RedrivePolicy": policy}, suffix="b")
    for url, prefix in ((first, "a"), (second, "b")):
        fill(sqs, url, [f"{prefix}-{i}" for i in range(3)])
        assert len(sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0)["Messages"]) == 3
        assert sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []) == []
    dlq_attrs = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages"])
    assert dlq_attrs["Attributes"]["ApproximateNumberOfMessages"] == "6"
    sqs.start_message_move_task(SourceArn=arn_of(sqs, dlq), MaxNumberOfMessagesPerSecond=100)
    final = wait_for(sqs, arn_of(sqs, dlq), finished, timeout=20)
    assert final["Status"] == "COMPLETED", final
    assert "DestinationArn" not in final
    assert sorted(drain(sqs, first)) == ["a-0", "a-1", "a-2"]
    assert sorted(drain(sqs, second)) == ["b-0", "b-1", "b-2"]
    assert drain(sqs, dlq) == []


@both_protocols
def test_a_redriven_message_starts_a_new_life_in_its_source(sqs: Any, make_queue: MakeQueue) -> None:
    """Redriven messages are delivered again from their source with a fresh receive count, not bounced straight
    back to the DLQ by the count they had when they were moved (that would make a redrive useless)."""
    dlq = make_queue(suffix="dlq")
    source = make_queue({"RedrivePolicy": redrive(arn_of(sqs, dlq), 1)}, suffix="src")
    fill(sqs, source, ["second chance"])
    assert len(sqs.receive_message(QueueUrl=source, VisibilityTimeout=0)["Messages"]) == 1
    assert sqs.receive_message(QueueUrl=source).get("Messages", []) == []  # moved to the DLQ here
    sqs.start_message_move_task(SourceArn=arn_of(sqs, dlq), MaxNumberOfMessagesPerSecond=100)
    assert wait_for(sqs, arn_of(sqs, dlq), finished, timeout=10)["Status"] == "COMPLETED"
    again = sqs.receive_message(QueueUrl=source, WaitTimeSeconds=1, VisibilityTimeout=0,
                                AttributeNames=["ApproximateReceiveCount"]).get("Messages", [])
    assert [(m["Body"], m["Attributes"]["ApproximateReceiveCount"]) for m in again] == [("second chance", "1")]


# -- list and cancel ------------------------------------------------------------------------------------------------

@both_protocols
def test_list_reports_a_running_task_and_cancel_stops_it_without_loss(sqs: Any, make_queue: MakeQueue) -> None:
    dlq, source = dlq_with_source(sqs, make_queue)
    bodies = [f"slow-{i:02d}" for i in range(40)]
    fill(sqs, dlq, bodies)
    dlq_arn, source_arn = arn_of(sqs, dlq), arn_of(sqs, source)
    before_ms = int(time.time() * 1000)
    handle = sqs.start_message_move_task(SourceArn=dlq_arn, DestinationArn=source_arn,
                                         MaxNumberOfMessagesPerSecond=1)["TaskHandle"]
    running = tasks(sqs, dlq_arn)
    assert len(running) == 1
    task = running[0]
    assert task["Status"] == "RUNNING"
    assert task["TaskHandle"] == handle
    assert (task["SourceArn"], task["DestinationArn"]) == (dlq_arn, source_arn)
    assert task["MaxNumberOfMessagesPerSecond"] == 1
    assert task["ApproximateNumberOfMessagesToMove"] == 40
    assert 0 <= task["ApproximateNumberOfMessagesMoved"] < 40
    assert before_ms - 2000 <= task["StartedTimestamp"] <= int(time.time() * 1000) + 2000

    with pytest.raises(ClientError) as info:
        sqs.start_message_move_task(SourceArn=dlq_arn, DestinationArn=source_arn)
    assert error_code(info.value) == "InvalidParameterValue", "only one active task per source"

    moved_at_cancel = sqs.cancel_message_move_task(TaskHandle=handle)["ApproximateNumberOfMessagesMoved"]
    assert 0 <= moved_at_cancel < 40
    assert tasks(sqs, dlq_arn)[0]["Status"] in {"CANCELLING", "CANCELLED"}
    cancelled = wait_for(sqs, dlq_arn, lambda t: t["Status"] == "CANCELLED", timeout=10)
    assert "TaskHandle" not in cancelled, "ListMessageMoveTasks gives the handle of RUNNING tasks only"
    moved, left = drain(sqs, source), drain(sqs, dlq)
    assert len(moved) == cancelled["ApproximateNumberOfMessagesMoved"] < 40
    assert sorted(moved + left) == bodies, "a cancelled move loses and duplicates nothing"

    second = sqs.start_message_move_task(SourceArn=dlq_arn, DestinationArn=source_arn,
                                         MaxNumberOfMessagesPerSecond=1)["TaskHandle"]
    listed = tasks(sqs, dlq_arn)
    assert [t["Status"] for t in listed][:2] == ["RUNNING", "CANCELLED"], "newest first"
    by_default = sqs.list_message_move_tasks(SourceArn=dlq_arn)["Results"]
    assert [t.get("TaskHandle") for t in by_default] == [second], "MaxResults defaults to 1: the newest task"
    sqs.cancel_message_move_task(TaskHandle=second)


# -- failures ---------------------------------------------------------------------------------------------------------

@both_protocols
def test_redrive_to_source_of_messages_sent_straight_to_the_dlq_fails(sqs: Any, make_queue: MakeQueue) -> None:
    """The developer guide's troubleshooting page: a message sent to the DLQ directly has no source to go back to,
    the task FAILS with CouldNotDetermineMessageSource, and the message stays in the DLQ."""
    dlq, source = dlq_with_source(sqs, make_queue)
    fill(sqs, dlq, ["sent straight to the dlq"])
    sqs.start_message_move_task(SourceArn=arn_of(sqs, dlq))
    final = wait_for(sqs, arn_of(sqs, dlq), finished, timeout=20)
    assert final["Status"] == "FAILED", final
    assert "CouldNotDetermineMessageSource" in final["FailureReason"]
    assert drain(sqs, dlq) == ["sent straight to the dlq"]
    assert drain(sqs, source) == []


@both_protocols
def test_a_destination_deleted_mid_task_fails_it_with_nonexistent_queue(sqs: Any, make_queue: MakeQueue) -> None:
    dlq, _ = dlq_with_source(sqs, make_queue)
    destination = make_queue(suffix="dst")
    bodies = [f"stranded-{i:02d}" for i in range(20)]
    fill(sqs, dlq, bodies)
    dlq_arn = arn_of(sqs, dlq)
    sqs.start_message_move_task(SourceArn=dlq_arn, DestinationArn=arn_of(sqs, destination),
                                MaxNumberOfMessagesPerSecond=2)
    sqs.delete_queue(QueueUrl=destination)
    final = wait_for(sqs, dlq_arn, finished, timeout=20)
    assert final["Status"] == "FAILED", final
    assert "NonExistentQueue" in final["FailureReason"]
    left = drain(sqs, dlq)
    assert len(left) == 20 - final["ApproximateNumberOfMessagesMoved"] > 0, "unmoved messages stay in the DLQ"
    assert set(left) <= set(bodies)


# -- errors ---------------------------------------------------------------------------------------------------------

@both_protocols
def test_move_task_errors(sqs: Any, make_queue: MakeQueue, server: RaftMQServer) -> None:
    dlq, source = dlq_with_source(sqs, make_queue)
    dlq_arn, source_arn = arn_of(sqs, dlq), arn_of(sqs, source)
    missing_arn = dlq_arn.rsplit(":", 1)[0] + ":no-such-queue-" + uuid.uuid4().hex[:8]

    def code_of(call: Callable[[], object]) -> str:
        with pytest.raises(ClientError) as info:
            call()
        assert 400 <= info.value.response["ResponseMetadata"]["HTTPStatusCode"] < 500
        return error_code(info.value)

    assert code_of(lambda: sqs.start_message_move_task(SourceArn=missing_arn)) == "ResourceNotFoundException"
    assert code_of(lambda: sqs.start_message_move_task(SourceArn="not-an-arn")) == "InvalidParameterValue"
    assert code_of(lambda: sqs.start_message_move_task(SourceArn=source_arn)) == "InvalidParameterValue", \
        "the source of a move must be some queue's dead-letter queue"
    assert code_of(lambda: sqs.start_message_move_task(SourceArn=dlq_arn, DestinationArn=missing_arn)) == \
        "ResourceNotFoundException"
    assert code_of(lambda: sqs.start_message_move_task(SourceArn=dlq_arn, MaxNumberOfMessagesPerSecond=0)) == \
        "InvalidParameterValue"
    assert code_of(lambda: sqs.start_message_move_task(SourceArn=dlq_arn, MaxNumberOfMessagesPerSecond=501)) == \
        "InvalidParameterValue"
    assert code_of(lambda: sqs.list_message_move_tasks(SourceArn=dlq_arn, MaxResults=11)) == \
        "InvalidParameterValue"
    code_of(lambda: sqs.cancel_message_move_task(TaskHandle="not-a-task-handle"))
    assert tasks(sqs, dlq_arn) == [], "no failed call may have started a task"


# -- kill -9 in the middle of a task --------------------------------------------------------------------------------

@pytest.fixture
def crash_server(tmp_path: Path) -> Iterator[RaftMQServer]:
    srv = RaftMQServer(tmp_path / "data")
    srv.start()
    try:
        yield srv
    finally:
        srv.close()


def test_a_move_task_survives_kill_9_with_nothing_lost_or_duplicated(crash_server: RaftMQServer) -> None:
    sqs = make_sqs_client(crash_server.endpoint)
    name = f"move-crash-{uuid.uuid4().hex[:8]}"
    dlq = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    source = sqs.create_queue(QueueName=f"{name}-src", Attributes={
        "RedrivePolicy": redrive(arn_of(sqs, dlq), 1)})["QueueUrl"]
    bodies = [f"crash-{i:03d}-{uuid.uuid4().hex[:6]}" for i in range(60)]
    fill(sqs, dlq, bodies)
    dlq_arn = arn_of(sqs, dlq)
    sqs.start_message_move_task(SourceArn=dlq_arn, DestinationArn=arn_of(sqs, source),
                                MaxNumberOfMessagesPerSecond=10)
    mid = wait_for(sqs, dlq_arn, lambda t: t["ApproximateNumberOfMessagesMoved"] >= 10 or finished(t), timeout=20)
    assert mid["Status"] == "RUNNING" and mid["ApproximateNumberOfMessagesMoved"] < 60, \
        f"the task must still be running when the server is killed: {mid}"

    crash_server.kill9()
    crash_server.start()
    sqs = make_sqs_client(crash_server.endpoint)
    source = sqs.get_queue_url(QueueName=f"{name}-src")["QueueUrl"]
    dlq = sqs.get_queue_url(QueueName=f"{name}-dlq")["QueueUrl"]
    final = wait_for(sqs, dlq_arn, finished, timeout=30)
    assert final["Status"] == "COMPLETED", f"the task did not resume after the restart: {final}"
    assert final["ApproximateNumberOfMessagesMoved"] == 60

    moved, left = drain(sqs, source), drain(sqs, dlq)
    assert left == []
    duplicates = [body for body, n in Counter(moved).items() if n > 1]
    assert not duplicates, f"moved twice: {duplicates[:5]}"
    assert sorted(moved) == sorted(bodies), f"lost: {sorted(set(bodies) - set(moved))[:5]}"
    crash_server.stop()
