"""Crash recovery: ``kill -9`` the server and restart it on the same data directory.

The durability promise is that a client is answered only after its change is fsynced, so after a hard kill every
acknowledged send is there exactly once, every acknowledged delete stays deleted, and messages that were in flight
keep their receive count and come back only when their visibility timeout ends.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import BotoCoreError, ClientError

from tests.integration.conftest import make_client, make_sqs_client
from tests.integration.server import RaftMQServer

IN_FLIGHT_TIMEOUT = 6  # seconds; long enough that a restart (≈1 s) finishes well before in-flight messages return


@dataclass(frozen=True, slots=True)
class Received:
    message_id: str
    body: str
    receive_count: int
    at: float  # monotonic time the response arrived


@pytest.fixture
def crash_server(tmp_path: Path) -> Iterator[RaftMQServer]:
    srv = RaftMQServer(tmp_path / "data")
    srv.start()
    try:
        yield srv
    finally:
        srv.close()


def receive_batch(sqs: Any, url: str, *, max_messages: int = 10, wait: int = 1,
                  visibility: int = 600) -> list[Received]:
    response = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=max_messages, WaitTimeSeconds=wait,
                                   VisibilityTimeout=visibility,
                                   MessageSystemAttributeNames=["ApproximateReceiveCount"])
    now = time.monotonic()
    return [Received(m["MessageId"], m["Body"], int(m["Attributes"]["ApproximateReceiveCount"]), now)
            for m in response.get("Messages", [])]


def drain(sqs: Any, url: str, expected: int, timeout: float) -> list[Received]:
    """Receive (hiding each message for 10 minutes, so none comes twice) until ``expected`` arrived and one more
    poll finds the queue empty, or the timeout passes."""
    got: list[Received] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        batch = receive_batch(sqs, url)
        got.extend(batch)
        if not batch and len(got) >= expected:
            break
    return got


def test_kill_9_keeps_acknowledged_messages_deletes_and_in_flight_state(crash_server: RaftMQServer) -> None:
    sqs = make_client("sqs", crash_server.endpoint)
    name = f"crash-{uuid.uuid4().hex[:8]}"
    url = sqs.create_queue(QueueName=name)["QueueUrl"]

    acked: dict[str, str] = {}
    for batch in range(50):
        entries = [{"Id": f"e{i}", "MessageBody": f"msg-{batch * 10 + i}-{uuid.uuid4().hex}"} for i in range(10)]
        response = sqs.send_message_batch(QueueUrl=url, Entries=entries)
        assert response.get("Failed", []) == []
        bodies = {e["Id"]: e["MessageBody"] for e in entries}
        acked.update({ok["MessageId"]: bodies[ok["Id"]] for ok in response["Successful"]})
    assert len(acked) == 500

    deleted: set[str] = set()
    while len(deleted) < 20:
        raw = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=min(10, 20 - len(deleted)), WaitTimeSeconds=1)
        for message in raw.get("Messages", []):
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            deleted.add(message["MessageId"])

    in_flight_since: dict[str, float] = {}  # message id -> time before the receive that hid it
    while len(in_flight_since) < 30:
        t_call = time.monotonic()
        for got in receive_batch(sqs, url, max_messages=min(10, 30 - len(in_flight_since)),
                                 visibility=IN_FLIGHT_TIMEOUT):
            assert got.receive_count == 1
            in_flight_since[got.message_id] = t_call
    assert not deleted & set(in_flight_since)

    crash_server.kill9()
    crash_server.start()
    sqs = make_client("sqs", crash_server.endpoint)
    url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert time.monotonic() < min(in_flight_since.values()) + IN_FLIGHT_TIMEOUT, "restart took too long to check"
    assert (attrs["ApproximateNumberOfMessages"], attrs["ApproximateNumberOfMessagesNotVisible"]) == ("450", "30")

    received = drain(sqs, url, expected=480, timeout=IN_FLIGHT_TIMEOUT + 30)
    ids = [r.message_id for r in received]
    assert len(ids) == len(set(ids)), "a message was delivered twice"
    assert set(ids) == set(acked) - deleted, "acknowledged messages lost, or deleted ones resurrected"
    for r in received:
        assert r.body == acked[r.message_id]
        if r.message_id in in_flight_since:
            assert r.receive_count == 2, "receive count of an in-flight message was not kept"
            assert r.at >= in_flight_since[r.message_id] + IN_FLIGHT_TIMEOUT - 0.05, \
                "an in-flight message came back before its visibility timeout"
        else:
            assert r.receive_count == 1
    crash_server.stop()


def test_kill_9_under_concurrent_senders_loses_no_acknowledged_send(crash_server: RaftMQServer) -> None:
    sqs = make_client("sqs", crash_server.endpoint)
    name = f"crash-load-{uuid.uuid4().hex[:8]}"
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    acked: list[tuple[str, str]] = []
    attempted: set[str] = set()
    enough = threading.Event()
    lock = threading.Lock()

    def record(message_id: str, body: str) -> None:
        with lock:
            acked.append((message_id, body))
            if len(acked) >= 300:
                enough.set()

    def batch_sender(client: Any) -> int:
        calls = 0
        while True:
            entries = [{"Id": str(i), "MessageBody": f"b-{uuid.uuid4().hex}"} for i in range(10)]
            with lock:
                attempted.update(e["MessageBody"] for e in entries)
            try:
                response = client.send_message_batch(QueueUrl=url, Entries=entries)
            except (BotoCoreError, ClientError):
                return calls  # the server died under this call: it is unacknowledged
            calls += 1
            assert response.get("Failed", []) == []
            for ok in response["Successful"]:
                record(ok["MessageId"], entries[int(ok["Id"])]["MessageBody"])

    def single_sender(client: Any) -> int:
        calls = 0
        while True:
            body = f"s-{uuid.uuid4().hex}"
            with lock:
                attempted.add(body)
            try:
                response = client.send_message(QueueUrl=url, MessageBody=body)
            except (BotoCoreError, ClientError):
                return calls
            calls += 1
            record(response["MessageId"], body)

    clients = [make_client("sqs", crash_server.endpoint) for _ in range(3)]
    with ThreadPoolExecutor(3) as pool:
        futures = [pool.submit(batch_sender, clients[0]), pool.submit(batch_sender, clients[1]),
                   pool.submit(single_sender, clients[2])]
        got_enough = enough.wait(60)
        crash_server.kill9()  # before any assertion: the senders only stop once the server is gone
        assert got_enough, "senders did not get 300 acknowledgements"
        calls = [f.result(timeout=30) for f in futures]  # re-raises any assertion from a sender
    assert all(c > 0 for c in calls)

    crash_server.start()
    sqs = make_client("sqs", crash_server.endpoint)
    url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    received = drain(sqs, url, expected=len(acked), timeout=60)
    ids = [r.message_id for r in received]
    assert len(ids) == len(set(ids)), "a message was delivered twice"
    by_id = {r.message_id: r.body for r in received}
    lost = [(mid, body) for mid, body in acked if by_id.get(mid) != body]
    assert not lost, f"{len(lost)} of {len(acked)} acknowledged sends lost, e.g. {lost[:3]}"
    assert set(by_id.values()) <= attempted, "a message nobody sent appeared"
    assert all(r.receive_count == 1 for r in received)
    crash_server.stop()


def test_kill_9_keeps_fifo_deduplication_group_blocking_and_sequence(crash_server: RaftMQServer) -> None:
    """FIFO state is replicated state too: after a hard kill a duplicate send inside the 5-minute window is still
    answered with the original MessageId and not enqueued, a group whose message was in flight stays blocked, and
    sequence numbers keep increasing."""
    sqs = make_sqs_client(crash_server.endpoint)
    name = f"crash-fifo-{uuid.uuid4().hex[:8]}.fifo"
    url = sqs.create_queue(QueueName=name, Attributes={"FifoQueue": "true"})["QueueUrl"]
    sent = {body: sqs.send_message(QueueUrl=url, MessageBody=body, MessageGroupId=body[0],
                                   MessageDeduplicationId=f"d-{body}")
            for body in ("a1", "a2", "b1")}
    in_flight = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, VisibilityTimeout=120)["Messages"]
    assert [m["Body"] for m in in_flight] == ["a1"]

    crash_server.kill9()
    crash_server.start()
    sqs = make_sqs_client(crash_server.endpoint)
    url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    duplicate = sqs.send_message(QueueUrl=url, MessageBody="a1 again", MessageGroupId="a",
                                 MessageDeduplicationId="d-a1")
    assert duplicate["MessageId"] == sent["a1"]["MessageId"]
    assert duplicate["SequenceNumber"] == sent["a1"]["SequenceNumber"]
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert (attrs["ApproximateNumberOfMessages"], attrs["ApproximateNumberOfMessagesNotVisible"]) == ("2", "1")
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=120)["Messages"]
    assert [m["Body"] for m in got] == ["b1"], "group a must stay blocked while a1 is in flight"
    later = sqs.send_message(QueueUrl=url, MessageBody="b2", MessageGroupId="b", MessageDeduplicationId="d-b2")
    assert int(later["SequenceNumber"]) > max(int(r["SequenceNumber"]) for r in sent.values())
    crash_server.stop()
