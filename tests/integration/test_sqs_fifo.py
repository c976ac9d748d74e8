"""FIFO queues end to end, as the SQS developer guide describes them.

Per group: strict order, and nothing more of a group is delivered while one of its messages is in flight (other
groups keep flowing); several messages of one group come back together in one receive. Deduplication by
MessageDeduplicationId or by the body's SHA-256 (ContentBasedDeduplication) for 5 minutes: a duplicate send
succeeds with the original MessageId and enqueues nothing. ReceiveRequestAttemptId makes a retried receive return
the same messages and receipt handles. FIFO-only attributes and parameters are validated as AWS does. Long polls
wake when a group unblocks. The 5-minute expiry of the deduplication window is waited for only with RAFTMQ_SLOW=1
(the model's unit tests check it with a synthetic clock). ``test_sqs_fifo_stateful`` checks random interleavings
against a reference model; ``test_crash_recovery`` checks FIFO state across kill -9.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.integration.conftest import ClientFactory, both_protocols, fifo_name, unique_name
from tests.integration.helpers import error_code, md5_of_attributes, md5_of_body, receive_until

FifoFactory = Callable[..., str]


@pytest.fixture
def fifo_queue(sqs: Any, queue_name: str) -> FifoFactory:
    """Create ``<unique>-<n>.fifo`` with FifoQueue=true plus the given attributes; return its URL."""
    counter = iter(range(1_000))

    def create(**attributes: str) -> str:
        name = fifo_name(queue_name, f"-{next(counter)}")
        url: str = sqs.create_queue(QueueName=name, Attributes={"FifoQueue": "true", **attributes})["QueueUrl"]
        return url

    return create


def attributes(sqs: Any, url: str, *names: str) -> dict[str, str]:
    result: dict[str, str] = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=list(names) or ["All"])[
        "Attributes"]
    return result


def count_visible(sqs: Any, url: str) -> int:
    return int(attributes(sqs, url, "ApproximateNumberOfMessages")["ApproximateNumberOfMessages"])


def receive(sqs: Any, url: str, max_messages: int = 10, **kwargs: Any) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=max_messages, WaitTimeSeconds=kwargs.pop("WaitTimeSeconds", 0),
        **kwargs).get("Messages", [])
    return messages


def send(sqs: Any, url: str, body: str, group: str, dedup: str | None = None, **kwargs: Any) -> dict[str, Any]:
    params: dict[str, Any] = {"QueueUrl": url, "MessageBody": body, "MessageGroupId": group, **kwargs}
    params["MessageDeduplicationId"] = dedup if dedup is not None else body
    response: dict[str, Any] = sqs.send_message(**params)
    return response


def client_error(call: Callable[[], object]) -> ClientError:
    with pytest.raises(ClientError) as info:
        call()
    return info.value


# -- creation and attributes ----------------------------------------------------------------------------------------

@both_protocols
def test_new_fifo_queue_reports_its_fifo_attributes(sqs: Any, fifo_queue: FifoFactory) -> None:
    url = fifo_queue()
    attrs = attributes(sqs, url)
    assert attrs["FifoQueue"] == "true"
    assert attrs["ContentBasedDeduplication"] == "false"
    assert attrs["DeduplicationScope"] == "queue"
    assert attrs["FifoThroughputLimit"] == "perQueue"
    assert attrs["QueueArn"].endswith(url.rsplit("/", 1)[1])


@both_protocols
def test_high_throughput_attributes_are_accepted_and_returned(sqs: Any, fifo_queue: FifoFactory) -> None:
    url = fifo_queue(ContentBasedDeduplication="true", DeduplicationScope="messageGroup",
                     FifoThroughputLimit="perMessageGroupId")
    assert attributes(sqs, url, "ContentBasedDeduplication", "DeduplicationScope", "FifoThroughputLimit") == {
        "ContentBasedDeduplication": "true", "DeduplicationScope": "messageGroup",
        "FifoThroughputLimit": "perMessageGroupId"}
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"FifoThroughputLimit": "perQueue",
                                                       "ContentBasedDeduplication": "false"})
    assert attributes(sqs, url, "ContentBasedDeduplication", "FifoThroughputLimit") == {
        "ContentBasedDeduplication": "false", "FifoThroughputLimit": "perQueue"}


@both_protocols
def test_fifo_queue_name_must_end_in_fifo_and_only_fifo_queues_may(sqs: Any, queue_name: str) -> None:
    error = client_error(lambda: sqs.create_queue(QueueName=queue_name, Attributes={"FifoQueue": "true"}))
    assert error_code(error) == "InvalidParameterValue"
    error = client_error(lambda: sqs.create_queue(QueueName=f"{queue_name}.fifo"))
    assert error_code(error) == "InvalidParameterValue"
    for name in (queue_name, f"{queue_name}.fifo"):
        with pytest.raises(sqs.exceptions.QueueDoesNotExist):
            sqs.get_queue_url(QueueName=name)


@both_protocols
@pytest.mark.parametrize(("attrs", "code"), [
    ({"DeduplicationScope": "everywhere"}, "InvalidAttributeValue"),
    ({"FifoThroughputLimit": "unlimited"}, "InvalidAttributeValue"),
    ({"ContentBasedDeduplication": "maybe"}, "InvalidAttributeValue"),
    ({"DeduplicationScope": "queue", "FifoThroughputLimit": "perMessageGroupId"}, "InvalidAttributeValue"),
])
def test_invalid_fifo_attributes_are_rejected(sqs: Any, queue_name: str, attrs: dict[str, str], code: str) -> None:
    name = fifo_name(queue_name)
    error = client_error(lambda: sqs.create_queue(QueueName=name, Attributes={"FifoQueue": "true", **attrs}))
    assert error_code(error) == code
    with pytest.raises(sqs.exceptions.QueueDoesNotExist):
        sqs.get_queue_url(QueueName=name)


@both_protocols
def test_fifo_only_attributes_do_not_exist_on_standard_queues(sqs: Any, queue_url: str) -> None:
    error = client_error(lambda: sqs.set_queue_attributes(QueueUrl=queue_url,
                                                          Attributes={"ContentBasedDeduplication": "true"}))
    assert error_code(error) == "InvalidAttributeName"
    assert "ContentBasedDeduplication" not in attributes(sqs, queue_url)
    assert "FifoQueue" not in attributes(sqs, queue_url)


@both_protocols
def test_deduplication_ids_are_refused_by_standard_queues(sqs: Any, queue_url: str) -> None:
    error = client_error(lambda: sqs.send_message(QueueUrl=queue_url, MessageBody="x", MessageDeduplicationId="d"))
    assert error_code(error) == "InvalidParameterValue"
    assert count_visible(sqs, queue_url) == 0


@both_protocols
def test_fifo_queue_cannot_be_turned_into_a_standard_queue(sqs: Any, fifo_queue: FifoFactory) -> None:
    url = fifo_queue()
    error = client_error(lambda: sqs.set_queue_attributes(QueueUrl=url, Attributes={"FifoQueue": "false"}))
    assert error_code(error) == "InvalidAttributeName", "FifoQueue is not a SetQueueAttributes attribute"
    assert attributes(sqs, url, "FifoQueue") == {"FifoQueue": "true"}


# -- sending --------------------------------------------------------------------------------------------------------

@both_protocols
def test_message_group_id_is_required(sqs: Any, fifo_queue: FifoFactory) -> None:
    url = fifo_queue(ContentBasedDeduplication="true")
    error = client_error(lambda: sqs.send_message(QueueUrl=url, MessageBody="no group"))
    assert error_code(error) == "MissingParameter"
    assert "MessageGroupId" in error.response["Error"]["Message"]
    batch = sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": "a", "MessageBody": "no group"}])
    assert [(f["Id"], f["Code"], f["SenderFault"]) for f in batch["Failed"]] == [("a", "MissingParameter", True)]
    assert count_visible(sqs, url) == 0


@both_protocols
def test_deduplication_id_is_required_without_content_based_deduplication(sqs: Any, fifo_queue: FifoFactory) -> None:
    url = fifo_queue()
    error = client_error(lambda: sqs.send_message(QueueUrl=url, MessageBody="x", MessageGroupId="g"))
    assert error_code(error) == "InvalidParameterValue"
    assert count_visible(sqs, url) == 0


@both_protocols
@pytest.mark.parametrize(("group", "dedup"), [
    ("g" * 129, "ok"), ("ok", "d" * 129), ("has space", "ok"), ("ok", "has space"), ("", "ok"),
], ids=["group-129", "dedup-129", "group-space", "dedup-space", "group-empty"])
def test_group_and_deduplication_ids_are_up_to_128_alphanumerics_and_punctuation(
        sqs: Any, fifo_queue: FifoFactory, group: str, dedup: str) -> None:
    url = fifo_queue()
    error = client_error(lambda: send(sqs, url, "x", group, dedup))
    assert error_code(error) == "InvalidParameterValue"
    assert count_visible(sqs, url) == 0
    longest = "!#$%&()*+,-./:;<=>?@[]^_`{|}~" + "a" * 99
    assert len(longest) == 128
    assert send(sqs, url, "y", longest, longest)["MessageId"]


@both_protocols
def test_a_duplicate_inside_one_batch_is_answered_with_the_first_entry_s_message_id(
        sqs: Any, fifo_queue: FifoFactory) -> None:
    url = fifo_queue()
    response = sqs.send_message_batch(QueueUrl=url, Entries=[
        {"Id": "first", "MessageBody": "one", "MessageGroupId": "g", "MessageDeduplicationId": "same"},
        {"Id": "again", "MessageBody": "two", "MessageGroupId": "g", "MessageDeduplicationId": "same"},
    ])
    assert response.get("Failed", []) == []
    by_id = {e["Id"]: e["MessageId"] for e in response["Successful"]}
    assert by_id["again"] == by_id["first"]
    assert [m["Body"] for m in receive(sqs, url)] == ["one"]


@both_protocols
def test_per_message_delay_is_rejected_but_the_queue_delay_applies(sqs: Any, fifo_queue: FifoFactory) -> None:
    url = fifo_queue(DelaySeconds="1")
    error = client_error(lambda: send(sqs, url, "delayed", "g", "d-delayed", DelaySeconds=5))
    assert error_code(error) == "InvalidParameterValue"
    assert "DelaySeconds" in error.response["Error"]["Message"]
    batch = sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": "late", "MessageBody": "x", "MessageGroupId": "g",
                                                           "MessageDeduplicationId": "d-late", "DelaySeconds": 3}])
    assert [(f["Id"], f["Code"]) for f in batch["Failed"]] == [("late", "InvalidParameterValue")]
    t_send = time.monotonic()
    send(sqs, url, "queue delay", "g", "d-queue-delay")
    assert attributes(sqs, url, "ApproximateNumberOfMessagesDelayed") == {"ApproximateNumberOfMessagesDelayed": "1"}
    assert receive(sqs, url) == []
    got = receive(sqs, url, WaitTimeSeconds=5)
    assert [m["Body"] for m in got] == ["queue delay"]
    assert time.monotonic() - t_send >= 1.0 - 0.05


@both_protocols
def test_sequence_numbers_increase_and_system_attributes_come_back(sqs: Any, fifo_queue: FifoFactory) -> None:
    url = fifo_queue()
    attrs = {"k": {"DataType": "String", "StringValue": "v"}}
    first = send(sqs, url, "one", "g1", "d-one", MessageAttributes=attrs)
    assert first["MD5OfMessageBody"] == md5_of_body("one")
    assert first["MD5OfMessageAttributes"] == md5_of_attributes(attrs)
    batch = sqs.send_message_batch(QueueUrl=url, Entries=[
        {"Id": "two", "MessageBody": "two", "MessageGroupId": "g2", "MessageDeduplicationId": "d-two"},
        {"Id": "three", "MessageBody": "three", "MessageGroupId": "g1", "MessageDeduplicationId": "d-three"},
    ])
    assert batch.get("Failed", []) == []
    by_id = {e["Id"]: e for e in batch["Successful"]}
    numbers = [first["SequenceNumber"], by_id["two"]["SequenceNumber"], by_id["three"]["SequenceNumber"]]
    assert all(n.isdigit() for n in numbers), numbers
    assert [int(n) for n in numbers] == sorted(int(n) for n in numbers) and len(set(numbers)) == 3

    got = receive_until(sqs, url, 3, timeout=5, AttributeNames=["All"], MessageAttributeNames=["All"])
    by_body = {m["Body"]: m for m in got}
    assert set(by_body) == {"one", "two", "three"}
    one = by_body["one"]
    assert one["MessageId"] == first["MessageId"]
    assert one["MessageAttributes"] == attrs
    assert one["Attributes"]["MessageGroupId"] == "g1"
    assert one["Attributes"]["MessageDeduplicationId"] == "d-one"
    assert one["Attributes"]["SequenceNumber"] == first["SequenceNumber"]
    assert by_body["three"]["Attributes"]["SequenceNumber"] == by_id["three"]["SequenceNumber"]


# -- ordering and group blocking ------------------------------------------------------------------------------------

@both_protocols
def test_one_receive_returns_several_messages_of_a_group_in_order(sqs: Any, fifo_queue: FifoFactory) -> None:
    url = fifo_queue()
    bodies = [f"a{i}" for i in range(7)]
    sqs.send_message_batch(QueueUrl=url, Entries=[
        {"Id": b, "MessageBody": b, "MessageGroupId": "a", "MessageDeduplicationId": b} for b in bodies])
    got = receive(sqs, url, VisibilityTimeout=60)
    assert [m["Body"] for m in got] == bodies


@both_protocols
def test_order_holds_within_each_group(sqs: Any, fifo_queue: FifoFactory) -> None:
    url = fifo_queue(ContentBasedDeduplication="true")
    sent: dict[str, list[str]] = defaultdict(list)
    for i in range(12):
        group = "abc"[i % 3]
        send(sqs, url, f"{group}-{i}", group)
        sent[group].append(f"{group}-{i}")
    seen: dict[str, list[str]] = defaultdict(list)
    for _ in range(12):  # each round receives what the groups allow, then deletes it to unblock them
        got = receive(sqs, url, VisibilityTimeout=60)
        if not got:
            break
        for message in got:
            seen[message["Body"][0]].append(message["Body"])
        sqs.delete_message_batch(QueueUrl=url, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)])
    assert seen == sent


@both_protocols
def test_a_group_with_a_message_in_flight_delivers_nothing_else(sqs: Any, fifo_queue: FifoFactory) -> None:
    url = fifo_queue()
    for body, group in (("a1", "a"), ("a2", "a"), ("b1", "b")):
        send(sqs, url, body, group)
    first = receive(sqs, url, max_messages=1, VisibilityTimeout=60)
    assert [m["Body"] for m in first] == ["a1"]
    others = receive(sqs, url, VisibilityTimeout=60)
    assert [m["Body"] for m in others] == ["b1"], "group a is in flight: only group b may flow"
    assert receive(sqs, url) == []
    sqs.delete_message(QueueUrl=url, ReceiptHandle=first[0]["ReceiptHandle"])
    assert [m["Body"] for m in receive(sqs, url, VisibilityTimeout=60)] == ["a2"]


@both_protocols
def test_a_message_that_returns_is_delivered_before_the_rest_of_its_group(sqs: Any, fifo_queue: FifoFactory) -> None:
    url = fifo_queue()
    send(sqs, url, "first", "g")
    send(sqs, url, "second", "g")
    got = receive(sqs, url, max_messages=1, VisibilityTimeout=60)
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=got[0]["ReceiptHandle"], VisibilityTimeout=0)
    again = receive(sqs, url, AttributeNames=["ApproximateReceiveCount"], VisibilityTimeout=60)
    assert [m["Body"] for m in again] == ["first", "second"]
    assert again[0]["Attributes"]["ApproximateReceiveCount"] == "2"


def test_an_expired_visibility_timeout_unblocks_the_group_for_a_long_poll(sqs: Any, fifo_queue: FifoFactory) -> None:
    url = fifo_queue(VisibilityTimeout="1")
    send(sqs, url, "first", "g")
    send(sqs, url, "second", "g")
    t_received = time.monotonic()
    assert [m["Body"] for m in receive(sqs, url, max_messages=1)] == ["first"]
    again = receive(sqs, url, WaitTimeSeconds=10, AttributeNames=["ApproximateReceiveCount"])
    t_again = time.monotonic()
    assert [m["Body"] for m in again][:1] == ["first"], "the returning message comes before the rest of its group"
    assert again[0]["Attributes"]["ApproximateReceiveCount"] == "2"
    assert 1.0 - 0.05 <= t_again - t_received <= 1.0 + 1.0, "the long poll did not wake when the group unblocked"


def test_deleting_the_in_flight_message_wakes_a_long_poll_for_the_next(sqs: Any, sqs_factory: ClientFactory,
                                                                       fifo_queue: FifoFactory) -> None:
    url = fifo_queue()
    send(sqs, url, "first", "g")
    send(sqs, url, "second", "g")
    held = receive(sqs, url, max_messages=1, VisibilityTimeout=60)
    poller = sqs_factory()
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(receive, poller, url, 10, WaitTimeSeconds=10, VisibilityTimeout=60)
        done, _ = wait([future], timeout=0.3)
        assert not done, "the group is blocked: the receive must wait"
        sqs.delete_message(QueueUrl=url, ReceiptHandle=held[0]["ReceiptHandle"])
        t_deleted = time.monotonic()
        got = future.result(timeout=15)
        latency = time.monotonic() - t_deleted
    assert [m["Body"] for m in got] == ["second"]
    assert latency <= 1.0, f"the long poll returned {latency:.2f} s after the delete unblocked the group"


def test_a_send_wakes_a_long_poll_on_a_fifo_queue(sqs: Any, sqs_factory: ClientFactory,
                                                  fifo_queue: FifoFactory) -> None:
    url = fifo_queue()
    poller = sqs_factory()
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(receive, poller, url, 10, WaitTimeSeconds=10)
        done, _ = wait([future], timeout=0.3)
        assert not done
        send(sqs, url, "wake", "g")
        t_sent = time.monotonic()
        got = future.result(timeout=15)
        latency = time.monotonic() - t_sent
    assert [m["Body"] for m in got] == ["wake"]
    assert latency <= 0.5


@both_protocols
def test_concurrent_consumers_see_every_group_in_order(sqs: Any, sqs_factory: ClientFactory,
                                                       fifo_queue: FifoFactory) -> None:
    """Four consumers receive and delete; each logs what it got BEFORE deleting it, so with the group rule the
    log's order per group is the delivery order, which must be the send order, each message exactly once."""
    url = fifo_queue()
    groups, per_group = 6, 15
    expected: dict[str, list[str]] = {f"g{g}": [] for g in range(groups)}
    for i in range(per_group):
        entries = []
        for g in range(groups):
            body = f"g{g}-{i:03d}"
            expected[f"g{g}"].append(body)
            entries.append({"Id": f"e{g}", "MessageBody": body, "MessageGroupId": f"g{g}",
                            "MessageDeduplicationId": body})
        assert sqs.send_message_batch(QueueUrl=url, Entries=entries).get("Failed", []) == []
    total = groups * per_group
    lock = threading.Lock()
    log: list[str] = []

    def consume(client: Any) -> None:
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            with lock:
                if len(log) >= total:
                    return
            messages = client.receive_message(QueueUrl=url, MaxNumberOfMessages=4, WaitTimeSeconds=1,
                                              VisibilityTimeout=60).get("Messages", [])
            if not messages:
                continue
            with lock:
                log.extend(m["Body"] for m in messages)
            response = client.delete_message_batch(QueueUrl=url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)])
            assert response.get("Failed", []) == []

    with ThreadPoolExecutor(4) as pool:
        for future in [pool.submit(consume, sqs_factory()) for _ in range(4)]:
            future.result(timeout=60)
    assert len(log) == len(set(log)) == total, "a message was lost or delivered twice"
    seen: dict[str, list[str]] = {group: [] for group in expected}
    for body in log:
        seen[body.split("-")[0]].append(body)
    assert seen == expected


# -- deduplication --------------------------------------------------------------------------------------------------

@both_protocols
def test_duplicate_send_answers_the_original_message_id_and_enqueues_nothing(sqs: Any,
                                                                             fifo_queue: FifoFactory) -> None:
    url = fifo_queue()
    original = send(sqs, url, "original", "g", "dedup-1")
    duplicate = send(sqs, url, "different body, same id", "g", "dedup-1")
    assert duplicate["MessageId"] == original["MessageId"]
    assert duplicate["SequenceNumber"] == original["SequenceNumber"]
    assert count_visible(sqs, url) == 1
    got = receive(sqs, url)
    assert [m["Body"] for m in got] == ["original"]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=got[0]["ReceiptHandle"])
    again = send(sqs, url, "after delete", "g", "dedup-1")
    assert again["MessageId"] == original["MessageId"], "the window lasts 5 minutes, deleted or not"
    assert count_visible(sqs, url) == 0
    batch = sqs.send_message_batch(QueueUrl=url, Entries=[
        {"Id": "dup", "MessageBody": "x", "MessageGroupId": "g", "MessageDeduplicationId": "dedup-1"},
        {"Id": "new", "MessageBody": "y", "MessageGroupId": "g", "MessageDeduplicationId": "dedup-2"}])
    by_id = {e["Id"]: e["MessageId"] for e in batch["Successful"]}
    assert by_id["dup"] == original["MessageId"] and by_id["new"] != original["MessageId"]
    assert count_visible(sqs, url) == 1


@both_protocols
def test_content_based_deduplication_uses_the_body(sqs: Any, fifo_queue: FifoFactory) -> None:
    url = fifo_queue(ContentBasedDeduplication="true")
    first = sqs.send_message(QueueUrl=url, MessageBody="same body", MessageGroupId="g")
    second = sqs.send_message(QueueUrl=url, MessageBody="same body", MessageGroupId="g")
    other = sqs.send_message(QueueUrl=url, MessageBody="other body", MessageGroupId="g")
    assert second["MessageId"] == first["MessageId"]
    assert other["MessageId"] != first["MessageId"]
    with_attributes = sqs.send_message(QueueUrl=url, MessageBody="same body", MessageGroupId="g", MessageAttributes={
        "extra": {"DataType": "String", "StringValue": "attributes are not hashed"}})
    assert with_attributes["MessageId"] == first["MessageId"], "only the body is hashed"
    explicit = sqs.send_message(QueueUrl=url, MessageBody="same body", MessageGroupId="g",
                                MessageDeduplicationId="explicit")
    assert explicit["MessageId"] != first["MessageId"], "an explicit id overrides the body hash"
    assert count_visible(sqs, url) == 3
    got = receive_until(sqs, url, 3, timeout=5, AttributeNames=["MessageDeduplicationId"], VisibilityTimeout=60)
    assert [m["Body"] for m in got] == ["same body", "other body", "same body"]
    assert got[0]["Attributes"]["MessageDeduplicationId"] == hashlib.sha256(b"same body").hexdigest()


def test_message_group_scope_deduplicates_per_group(sqs: Any, fifo_queue: FifoFactory) -> None:
    url = fifo_queue(DeduplicationScope="messageGroup", FifoThroughputLimit="perMessageGroupId")
    a = send(sqs, url, "a", "group-a", "shared-id")
    b = send(sqs, url, "b", "group-b", "shared-id")
    again = send(sqs, url, "a again", "group-a", "shared-id")
    assert a["MessageId"] != b["MessageId"]
    assert again["MessageId"] == a["MessageId"]
    assert count_visible(sqs, url) == 2


def test_queue_scope_deduplicates_across_groups(sqs: Any, fifo_queue: FifoFactory) -> None:
    url = fifo_queue()
    a = send(sqs, url, "a", "group-a", "shared-id")
    b = send(sqs, url, "b", "group-b", "shared-id")
    assert b["MessageId"] == a["MessageId"]
    assert count_visible(sqs, url) == 1


@pytest.mark.slow
def test_deduplication_window_ends_after_five_minutes(sqs: Any, fifo_queue: FifoFactory) -> None:
    """The window is 5 minutes of replicated time, so the full check waits 5 minutes (RAFTMQ_SLOW=1); the bounded
    run checks the duplicate is still refused well inside the window. Expiry itself is unit-tested on the model
    with a synthetic clock."""
    url = fifo_queue()
    first = send(sqs, url, "first", "g", "window-id")
    t_first = time.monotonic()
    inside = send(sqs, url, "inside the window", "g", "window-id")
    assert inside["MessageId"] == first["MessageId"]
    if os.environ.get("RAFTMQ_SLOW") != "1":
        return
    time.sleep(max(0.0, 301 - (time.monotonic() - t_first)))  # the passage of time is what is under test
    after = send(sqs, url, "after the window", "g", "window-id")
    assert after["MessageId"] != first["MessageId"]
    assert count_visible(sqs, url) == 2


@both_protocols
def test_a_recreated_queue_does_not_inherit_the_old_deduplication_window(sqs: Any, fifo_queue: FifoFactory) -> None:
    url = fifo_queue()
    old = send(sqs, url, "before", "g", "reused-id")
    sqs.delete_queue(QueueUrl=url)
    name = url.rsplit("/", 1)[1]
    url = sqs.create_queue(QueueName=name, Attributes={"FifoQueue": "true"})["QueueUrl"]
    new = send(sqs, url, "after", "g", "reused-id")
    assert new["MessageId"] != old["MessageId"]
    assert [m["Body"] for m in receive(sqs, url)] == ["after"]


@both_protocols
def test_purge_releases_a_group_that_was_in_flight(sqs: Any, fifo_queue: FifoFactory) -> None:
    url = fifo_queue()
    send(sqs, url, "purged", "g", "d-purged")
    assert [m["Body"] for m in receive(sqs, url, VisibilityTimeout=300)] == ["purged"]
    sqs.purge_queue(QueueUrl=url)
    send(sqs, url, "after purge", "g", "d-after")
    assert [m["Body"] for m in receive(sqs, url)] == ["after purge"], "the purged in-flight message blocks nothing"


# -- ReceiveRequestAttemptId ----------------------------------------------------------------------------------------

@both_protocols
def test_retried_receive_with_the_same_attempt_id_returns_the_same_messages(sqs: Any,
                                                                            fifo_queue: FifoFactory) -> None:
    url = fifo_queue(ContentBasedDeduplication="true")
    for body in ("m1", "m2", "m3"):
        sqs.send_message(QueueUrl=url, MessageBody=body, MessageGroupId="g")
    attempt = unique_name("attempt")
    first = receive(sqs, url, max_messages=2, VisibilityTimeout=60, ReceiveRequestAttemptId=attempt)
    assert [m["Body"] for m in first] == ["m1", "m2"]
    retry = receive(sqs, url, max_messages=2, VisibilityTimeout=60, ReceiveRequestAttemptId=attempt)
    assert [(m["MessageId"], m["ReceiptHandle"]) for m in retry] == [
        (m["MessageId"], m["ReceiptHandle"]) for m in first]
    assert receive(sqs, url, VisibilityTimeout=60) == [], "the group is in flight"
    assert receive(sqs, url, VisibilityTimeout=60, ReceiveRequestAttemptId=unique_name("other")) == []
    sqs.delete_message_batch(QueueUrl=url, Entries=[
        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(retry)])
    assert [m["Body"] for m in receive(sqs, url, VisibilityTimeout=60)] == ["m3"]
