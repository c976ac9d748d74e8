"""Dead-letter queues end to end: RedrivePolicy, the move at maxReceiveCount, RedriveAllowPolicy and
ListDeadLetterSourceQueues, as the SQS developer guide and API reference describe them.

A message is received at most maxReceiveCount times; the receive that would exceed it moves it to the dead-letter
queue instead (same MessageId, body, attributes; SentTimestamp is the original enqueue time on standard queues).
Policies are validated when set: the target must exist and be of the same type, maxReceiveCount is 1-1000, and
the target's RedriveAllowPolicy must allow the source. Errors in either policy are InvalidParameterValue
("Value ... for parameter RedrivePolicy is invalid. Reason: ...").
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.integration.conftest import ClientFactory, both_protocols, fifo_name
from tests.integration.helpers import error_code, md5_of_attributes, md5_of_body

MakeQueue = Callable[..., str]


def arn_of(sqs: Any, url: str) -> str:
    arn: str = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return arn


def attribute(sqs: Any, url: str, name: str) -> str | None:
    value: str | None = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[name]).get(
        "Attributes", {}).get(name)
    return value


def redrive(target_arn: str, max_receive_count: int | str) -> str:
    return json.dumps({"deadLetterTargetArn": target_arn, "maxReceiveCount": max_receive_count})


def counts(sqs: Any, url: str) -> tuple[int, int]:
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]), int(attrs["ApproximateNumberOfMessagesNotVisible"])


def receive(sqs: Any, url: str, **kwargs: Any) -> list[dict[str, Any]]:
    params: dict[str, Any] = {"QueueUrl": url, "MaxNumberOfMessages": 10, "WaitTimeSeconds": 0, **kwargs}
    messages: list[dict[str, Any]] = sqs.receive_message(**params).get("Messages", [])
    return messages


def set_policy_error(sqs: Any, url: str, name: str, value: str) -> ClientError:
    before = attribute(sqs, url, name)
    with pytest.raises(ClientError) as info:
        sqs.set_queue_attributes(QueueUrl=url, Attributes={name: value})
    assert attribute(sqs, url, name) == before, "a rejected policy must leave the old one in place"
    return info.value


# -- RedrivePolicy --------------------------------------------------------------------------------------------------

@both_protocols
@pytest.mark.parametrize("max_receive_count", [3, "3"])
def test_redrive_policy_round_trips(sqs: Any, make_queue: MakeQueue, max_receive_count: int | str) -> None:
    dlq = make_queue(suffix="dlq")
    source = make_queue({"RedrivePolicy": redrive(arn_of(sqs, dlq), max_receive_count)}, suffix="src")
    policy = json.loads(attribute(sqs, source, "RedrivePolicy") or "{}")
    assert policy["deadLetterTargetArn"] == arn_of(sqs, dlq)
    assert policy["maxReceiveCount"] == 3, "AWS returns maxReceiveCount as a JSON number, however it was sent"
    assert set(policy) == {"deadLetterTargetArn", "maxReceiveCount"}


@both_protocols
def test_message_received_more_than_max_receive_count_moves_to_the_dlq(sqs: Any, make_queue: MakeQueue) -> None:
    dlq = make_queue(suffix="dlq")
    source = make_queue({"RedrivePolicy": redrive(arn_of(sqs, dlq), 2)}, suffix="src")
    attrs: dict[str, dict[str, Any]] = {"kind": {"DataType": "String", "StringValue": "poison"},
             "blob": {"DataType": "Binary", "BinaryValue": b"\x00\xff"}}
    sent = sqs.send_message(QueueUrl=source, MessageBody="poison pill", MessageAttributes=attrs)
    sent_at: str | None = None
    for expected_count in ("1", "2"):
        got = receive(sqs, source, VisibilityTimeout=0, AttributeNames=["All"])
        assert [m["MessageId"] for m in got] == [sent["MessageId"]]
        assert got[0]["Attributes"]["ApproximateReceiveCount"] == expected_count
        sent_at = got[0]["Attributes"]["SentTimestamp"]
    assert receive(sqs, source, VisibilityTimeout=0) == [], "the third receive must move it, not deliver it"
    assert counts(sqs, source) == (0, 0)
    assert counts(sqs, dlq) == (1, 0)
    moved = receive(sqs, dlq, AttributeNames=["All"], MessageAttributeNames=["All"])
    assert len(moved) == 1
    message = moved[0]
    assert message["MessageId"] == sent["MessageId"]
    assert message["Body"] == "poison pill"
    assert message["MD5OfBody"] == md5_of_body("poison pill")
    assert message["MessageAttributes"] == attrs
    assert message["MD5OfMessageAttributes"] == md5_of_attributes(attrs)
    assert message["Attributes"]["SentTimestamp"] == sent_at, "standard queues keep the original enqueue time"


def test_a_message_moved_at_receive_wakes_a_long_poll_on_the_dlq(sqs: Any, sqs_factory: ClientFactory,
                                                                 make_queue: MakeQueue) -> None:
    dlq = make_queue(suffix="dlq")
    source = make_queue({"RedrivePolicy": redrive(arn_of(sqs, dlq), 1)}, suffix="src")
    sqs.send_message(QueueUrl=source, MessageBody="to the dlq")
    assert [m["Body"] for m in receive(sqs, source, VisibilityTimeout=0)] == ["to the dlq"]
    poller = sqs_factory()
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(lambda: poller.receive_message(QueueUrl=dlq, WaitTimeSeconds=10).get("Messages", []))
        done, _ = wait([future], timeout=0.3)
        assert not done
        assert receive(sqs, source) == []  # this receive moves the message
        t_moved = time.monotonic()
        got = future.result(timeout=15)
        latency = time.monotonic() - t_moved
    assert [m["Body"] for m in got] == ["to the dlq"]
    assert latency <= 0.5, f"the DLQ consumer saw the message {latency:.2f} s after it moved"


@both_protocols
def test_messages_below_max_receive_count_stay(sqs: Any, make_queue: MakeQueue) -> None:
    dlq = make_queue(suffix="dlq")
    source = make_queue({"RedrivePolicy": redrive(arn_of(sqs, dlq), 3)}, suffix="src")
    sqs.send_message(QueueUrl=source, MessageBody="keep")
    for _ in range(3):
        assert [m["Body"] for m in receive(sqs, source, VisibilityTimeout=0)] == ["keep"]
    assert counts(sqs, dlq) == (0, 0)


def test_fifo_message_moves_to_a_fifo_dlq(sqs: Any, queue_name: str) -> None:
    dlq = sqs.create_queue(QueueName=fifo_name(queue_name, "-dlq"), Attributes={"FifoQueue": "true"})["QueueUrl"]
    source = sqs.create_queue(QueueName=fifo_name(queue_name, "-src"), Attributes={
        "FifoQueue": "true", "ContentBasedDeduplication": "true",
        "RedrivePolicy": redrive(arn_of(sqs, dlq), 1)})["QueueUrl"]
    sent = sqs.send_message(QueueUrl=source, MessageBody="fifo poison", MessageGroupId="g")
    sqs.send_message(QueueUrl=source, MessageBody="next in group", MessageGroupId="g")
    assert [m["Body"] for m in receive(sqs, source, VisibilityTimeout=0, MaxNumberOfMessages=1)] == ["fifo poison"]
    after = receive(sqs, source, VisibilityTimeout=60)
    assert [m["Body"] for m in after] == ["next in group"], "the poison message moved; its group flows again"
    moved = receive(sqs, dlq, AttributeNames=["MessageGroupId"])
    assert [(m["MessageId"], m["Body"], m["Attributes"]["MessageGroupId"]) for m in moved] == [
        (sent["MessageId"], "fifo poison", "g")]


@both_protocols
@pytest.mark.parametrize("policy", [
    "not json",
    json.dumps({"maxReceiveCount": 3}),
    json.dumps({"deadLetterTargetArn": "arn:aws:sqs:us-east-1:000000000000:no-such-dlq", "maxReceiveCount": 3}),
    "MAX0",
    "MAX1001",
], ids=["not-json", "no-target", "missing-target", "count-0", "count-1001"])
def test_invalid_redrive_policies_are_rejected(sqs: Any, make_queue: MakeQueue, policy: str) -> None:
    dlq = make_queue(suffix="dlq")
    source = make_queue(suffix="src")
    if policy.startswith("MAX"):
        policy = redrive(arn_of(sqs, dlq), int(policy[3:]))
    error = set_policy_error(sqs, source, "RedrivePolicy", policy)
    assert error_code(error) == "InvalidParameterValue"
    assert "RedrivePolicy" in error.response["Error"]["Message"]


@both_protocols
def test_dlq_must_be_of_the_same_type(sqs: Any, make_queue: MakeQueue, queue_name: str) -> None:
    standard = make_queue(suffix="std")
    fifo = sqs.create_queue(QueueName=fifo_name(queue_name), Attributes={"FifoQueue": "true"})["QueueUrl"]
    error = set_policy_error(sqs, fifo, "RedrivePolicy", redrive(arn_of(sqs, standard), 2))
    assert error_code(error) == "InvalidParameterValue"
    error = set_policy_error(sqs, standard, "RedrivePolicy", redrive(arn_of(sqs, fifo), 2))
    assert error_code(error) == "InvalidParameterValue"


# -- RedriveAllowPolicy ---------------------------------------------------------------------------------------------

@both_protocols
def test_deny_all_refuses_every_source(sqs: Any, make_queue: MakeQueue) -> None:
    dlq = make_queue({"RedriveAllowPolicy": json.dumps({"redrivePermission": "denyAll"})}, suffix="dlq")
    source = make_queue(suffix="src")
    error = set_policy_error(sqs, source, "RedrivePolicy", redrive(arn_of(sqs, dlq), 2))
    assert error_code(error) == "InvalidParameterValue"


@both_protocols
def test_by_queue_allows_only_the_listed_sources(sqs: Any, make_queue: MakeQueue) -> None:
    allowed = make_queue(suffix="ok")
    refused = make_queue(suffix="no")
    allow = json.dumps({"redrivePermission": "byQueue", "sourceQueueArns": [arn_of(sqs, allowed)]})
    dlq = make_queue({"RedriveAllowPolicy": allow}, suffix="dlq")
    assert json.loads(attribute(sqs, dlq, "RedriveAllowPolicy") or "{}") == json.loads(allow)
    sqs.set_queue_attributes(QueueUrl=allowed, Attributes={"RedrivePolicy": redrive(arn_of(sqs, dlq), 2)})
    error = set_policy_error(sqs, refused, "RedrivePolicy", redrive(arn_of(sqs, dlq), 2))
    assert error_code(error) == "InvalidParameterValue"
    sqs.set_queue_attributes(QueueUrl=dlq, Attributes={
        "RedriveAllowPolicy": json.dumps({"redrivePermission": "allowAll"})})
    sqs.set_queue_attributes(QueueUrl=refused, Attributes={"RedrivePolicy": redrive(arn_of(sqs, dlq), 2)})
    assert json.loads(attribute(sqs, refused, "RedrivePolicy") or "{}")["deadLetterTargetArn"] == arn_of(sqs, dlq)


@both_protocols
@pytest.mark.parametrize("policy", [
    {"redrivePermission": "everyone"},
    {"redrivePermission": "byQueue"},
    {"redrivePermission": "byQueue", "sourceQueueArns": [f"arn:aws:sqs:us-east-1:000000000000:q{i}"
                                                         for i in range(11)]},
    {"redrivePermission": "allowAll", "sourceQueueArns": ["arn:aws:sqs:us-east-1:000000000000:q"]},
], ids=["unknown-permission", "by-queue-without-arns", "eleven-arns", "arns-with-allow-all"])
def test_invalid_redrive_allow_policies_are_rejected(sqs: Any, queue_url: str, policy: dict[str, Any]) -> None:
    error = set_policy_error(sqs, queue_url, "RedriveAllowPolicy", json.dumps(policy))
    assert error_code(error) == "InvalidParameterValue"


# -- ListDeadLetterSourceQueues -------------------------------------------------------------------------------------

@both_protocols
def test_list_dead_letter_source_queues_with_pagination(sqs: Any, make_queue: MakeQueue) -> None:
    dlq = make_queue(suffix="dlq")
    policy = redrive(arn_of(sqs, dlq), 5)
    sources = {make_queue({"RedrivePolicy": policy}, suffix=f"s{i}") for i in range(3)}
    unrelated = make_queue(suffix="un")
    assert set(sqs.list_dead_letter_source_queues(QueueUrl=dlq).get("queueUrls", [])) == sources

    pages: list[list[str]] = []
    kwargs: dict[str, Any] = {"QueueUrl": dlq, "MaxResults": 2}
    while True:
        page = sqs.list_dead_letter_source_queues(**kwargs)
        pages.append(page.get("queueUrls", []))
        if not page.get("NextToken"):
            break
        kwargs["NextToken"] = page["NextToken"]
        assert len(pages) < 5
    assert [len(p) for p in pages] == [2, 1]
    assert {url for p in pages for url in p} == sources

    assert sqs.list_dead_letter_source_queues(QueueUrl=unrelated).get("queueUrls", []) == []
    for out_of_range in (0, 1001):
        with pytest.raises(ClientError) as info:
            sqs.list_dead_letter_source_queues(QueueUrl=dlq, MaxResults=out_of_range)
        assert error_code(info.value) == "InvalidParameterValue"
    removed = sorted(sources)[0]
    sqs.set_queue_attributes(QueueUrl=removed, Attributes={"RedrivePolicy": ""})
    assert set(sqs.list_dead_letter_source_queues(QueueUrl=dlq).get("queueUrls", [])) == sources - {removed}


@both_protocols
def test_list_dead_letter_source_queues_of_a_missing_queue(sqs: Any, queue_url: str) -> None:
    sqs.delete_queue(QueueUrl=queue_url)
    with pytest.raises(sqs.exceptions.QueueDoesNotExist) as info:
        sqs.list_dead_letter_source_queues(QueueUrl=queue_url)
    assert error_code(info.value) == "AWS.SimpleQueueService.NonExistentQueue"
