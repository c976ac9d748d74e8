"""Long polling against a real server: a waiting receive wakes as soon as another client sends, returns empty
after its wait, and the queue's ReceiveMessageWaitTimeSeconds applies when the call names no wait."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.integration.conftest import ClientFactory, both_protocols
from tests.integration.helpers import error_code

BLOCKED_PROBE = 0.3  # how long a poll must still be pending to count as parked on the server


def timed_receive(sqs: Any, url: str, **kwargs: Any) -> tuple[list[dict[str, Any]], float]:
    """Receive and report (messages, monotonic time the response arrived)."""
    response = sqs.receive_message(QueueUrl=url, **kwargs)
    return response.get("Messages", []), time.monotonic()


@both_protocols
def test_long_poll_returns_promptly_after_a_send_from_another_client(
        sqs: Any, sqs_factory: ClientFactory, queue_url: str) -> None:
    receiver = sqs_factory()
    with ThreadPoolExecutor(1) as pool:
        t_poll = time.monotonic()
        future = pool.submit(timed_receive, receiver, queue_url, WaitTimeSeconds=10)
        done, _ = wait([future], timeout=BLOCKED_PROBE)
        assert not done, "the receive did not wait for a message on an empty queue"
        sent = sqs.send_message(QueueUrl=queue_url, MessageBody="wake up")
        t_acked = time.monotonic()
        messages, t_returned = future.result(timeout=15)
    assert [m["MessageId"] for m in messages] == [sent["MessageId"]]
    latency = t_returned - t_acked
    assert latency <= 0.5, f"long poll returned {latency * 1000:.0f} ms after the send was acknowledged"
    assert t_returned - t_poll < 5, "the poll ran to (near) its wait time instead of waking on the send"


def test_every_parked_poller_is_served_by_a_batch(sqs: Any, sqs_factory: ClientFactory, queue_url: str) -> None:
    receivers = [sqs_factory() for _ in range(3)]
    with ThreadPoolExecutor(len(receivers)) as pool:
        futures: list[Future[tuple[list[dict[str, Any]], float]]] = [
            pool.submit(timed_receive, r, queue_url, WaitTimeSeconds=10, MaxNumberOfMessages=1) for r in receivers]
        done, _ = wait(futures, timeout=BLOCKED_PROBE)
        assert not done
        response = sqs.send_message_batch(QueueUrl=queue_url,
                                          Entries=[{"Id": str(i), "MessageBody": f"m{i}"} for i in range(3)])
        t_acked = time.monotonic()
        results = [f.result(timeout=15) for f in futures]
    received = [m["MessageId"] for messages, _ in results for m in messages]
    assert sorted(received) == sorted(r["MessageId"] for r in response["Successful"])
    assert max(t for _, t in results) - t_acked <= 1.0


@both_protocols
def test_long_poll_on_an_empty_queue_returns_empty_after_the_wait(sqs: Any, queue_url: str) -> None:
    t_start = time.monotonic()
    messages, t_end = timed_receive(sqs, queue_url, WaitTimeSeconds=1)
    assert messages == []
    assert 1.0 - 0.05 <= t_end - t_start <= 3.0


def test_queue_receive_wait_time_applies_when_the_call_names_none(sqs: Any, make_queue: Callable[..., str]) -> None:
    url = make_queue({"ReceiveMessageWaitTimeSeconds": "1"})
    t_start = time.monotonic()
    messages, t_end = timed_receive(sqs, url)
    assert messages == []
    assert 1.0 - 0.05 <= t_end - t_start <= 3.0


def test_explicit_zero_wait_overrides_the_queue_default(sqs: Any, make_queue: Callable[..., str]) -> None:
    url = make_queue({"ReceiveMessageWaitTimeSeconds": "20"})
    t_start = time.monotonic()
    messages, t_end = timed_receive(sqs, url, WaitTimeSeconds=0)
    assert messages == []
    assert t_end - t_start < 1.0


def test_queue_default_long_poll_wakes_on_send(sqs: Any, sqs_factory: ClientFactory,
                                               make_queue: Callable[..., str]) -> None:
    url = make_queue({"ReceiveMessageWaitTimeSeconds": "10"})
    receiver = sqs_factory()
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(timed_receive, receiver, url)
        done, _ = wait([future], timeout=BLOCKED_PROBE)
        assert not done, "the queue's ReceiveMessageWaitTimeSeconds did not make the receive wait"
        sqs.send_message(QueueUrl=url, MessageBody="by default")
        t_acked = time.monotonic()
        messages, t_returned = future.result(timeout=15)
    assert [m["Body"] for m in messages] == ["by default"]
    assert t_returned - t_acked <= 0.5


@pytest.mark.parametrize("wait_seconds", [-1, 21])
def test_wait_time_out_of_range_is_invalid_parameter_value(sqs: Any, queue_url: str, wait_seconds: int) -> None:
    with pytest.raises(ClientError) as info:
        sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=wait_seconds)
    assert error_code(info.value) == "InvalidParameterValue"


def test_long_poll_wakes_when_a_delayed_message_becomes_visible(sqs: Any, queue_url: str) -> None:
    t_send = time.monotonic()
    sqs.send_message(QueueUrl=queue_url, MessageBody="after one second", DelaySeconds=1)
    t_acked = time.monotonic()
    messages, t_end = timed_receive(sqs, queue_url, WaitTimeSeconds=10)
    assert [m["Body"] for m in messages] == ["after one second"]
    assert t_end - t_send >= 1.0 - 0.05, "delivered before its delay"
    assert t_end - t_acked <= 1.0 + 0.75, "the long poll did not wake when the delay ended"


def test_concurrent_producers_and_consumers_see_each_message_once(sqs: Any, sqs_factory: ClientFactory,
                                                                   queue_url: str) -> None:
    producers, consumers = [sqs_factory() for _ in range(3)], [sqs_factory() for _ in range(3)]
    total = len(producers) * 10 * 10
    lock = threading.Lock()
    received: list[str] = []
    sent: list[str] = []

    def produce(client: Any, p: int) -> None:
        for b in range(10):
            entries = [{"Id": str(i), "MessageBody": f"p{p}-b{b}-m{i}"} for i in range(10)]
            response = client.send_message_batch(QueueUrl=queue_url, Entries=entries)
            assert response.get("Failed", []) == []
            with lock:
                sent.extend(e["MessageBody"] for e in entries)

    def consume(client: Any) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with lock:
                if len(received) >= total:
                    return
            messages = client.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                              VisibilityTimeout=600).get("Messages", [])
            if not messages:
                continue
            with lock:
                received.extend(m["Body"] for m in messages)
            response = client.delete_message_batch(QueueUrl=queue_url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)])
            assert response.get("Failed", []) == []

    with ThreadPoolExecutor(len(producers) + len(consumers)) as pool:
        futures = [pool.submit(consume, c) for c in consumers]
        futures += [pool.submit(produce, c, p) for p, c in enumerate(producers)]
        for future in futures:
            future.result(timeout=60)
    assert len(received) == len(set(received)) == total, "a message was lost or delivered twice"
    assert set(received) == set(sent)
    attrs = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
    assert (attrs["ApproximateNumberOfMessages"], attrs["ApproximateNumberOfMessagesNotVisible"]) == ("0", "0")
