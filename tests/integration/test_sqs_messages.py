"""Messages over boto3 against a real server: send (single and batch), receive, delete, visibility and delays,
with the AWS error codes for each kind of bad input and the MD5s AWS computes."""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.integration.conftest import both_protocols
from tests.integration.helpers import error_code, http_status, md5_of_attributes, md5_of_body, receive_until

ATTRIBUTES: dict[str, dict[str, Any]] = {
    "city": {"DataType": "String", "StringValue": "Zürich <&> \"quoted\" ☃"},
    "population": {"DataType": "Number", "StringValue": "415367"},
    "ratio": {"DataType": "Number.float", "StringValue": "-1.5e3"},
    "blob": {"DataType": "Binary", "BinaryValue": bytes(range(256))},
    "picture": {"DataType": "Binary.gif", "BinaryValue": b"GIF89a\x00\x01"},
    "colour": {"DataType": "String.custom-type", "StringValue": "blue"},
    "a.b_c-d": {"DataType": "String", "StringValue": "x"},
}


def receive_one(sqs: Any, url: str, **kwargs: Any) -> dict[str, Any]:
    messages = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=kwargs.pop("WaitTimeSeconds", 5),
                                   **kwargs).get("Messages", [])
    assert len(messages) == 1, messages
    message: dict[str, Any] = messages[0]
    return message


def assert_empty(sqs: Any, url: str) -> None:
    response = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0, MaxNumberOfMessages=10)
    assert response.get("Messages", []) == []


def visible_count(sqs: Any, url: str) -> int:
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"])


# -- SendMessage and MD5s -------------------------------------------------------------------------------------------

@both_protocols
def test_send_returns_message_id_and_body_md5(sqs: Any, queue_url: str) -> None:
    body = "hello world"
    response = sqs.send_message(QueueUrl=queue_url, MessageBody=body)
    uuid.UUID(response["MessageId"])  # AWS message ids are UUIDs
    assert response["MD5OfMessageBody"] == md5_of_body(body) == "5eb63bbbe01eeed093cb22bb8f5acdc3"
    assert "MD5OfMessageAttributes" not in response
    message = receive_one(sqs, queue_url)
    assert message["MessageId"] == response["MessageId"]
    assert message["Body"] == body
    assert message["MD5OfBody"] == response["MD5OfMessageBody"]
    assert message["ReceiptHandle"]


@both_protocols
def test_message_attributes_of_every_type_round_trip_with_aws_md5s(sqs: Any, queue_url: str) -> None:
    body = "attributes"
    sent = sqs.send_message(QueueUrl=queue_url, MessageBody=body, MessageAttributes=ATTRIBUTES)
    assert sent["MD5OfMessageAttributes"] == md5_of_attributes(ATTRIBUTES)
    assert sent["MD5OfMessageBody"] == md5_of_body(body)
    message = receive_one(sqs, queue_url, MessageAttributeNames=["All"])
    assert message["MessageAttributes"] == ATTRIBUTES
    assert message["MD5OfMessageAttributes"] == sent["MD5OfMessageAttributes"]
    assert message["MD5OfBody"] == sent["MD5OfMessageBody"]


def test_known_attribute_md5_matches_the_aws_documented_value(sqs: Any, queue_url: str) -> None:
    """Fixed vector: the digest of this one attribute as AWS computes it (independent of our helper's code)."""
    attrs = {"a": {"DataType": "String", "StringValue": "b"}}
    sent = sqs.send_message(QueueUrl=queue_url, MessageBody="x", MessageAttributes=attrs)
    expected = md5_of_attributes(attrs)
    manual = hashlib.md5(b"\x00\x00\x00\x01a" + b"\x00\x00\x00\x06String" + b"\x01" + b"\x00\x00\x00\x01b")
    assert expected == manual.hexdigest()
    assert sent["MD5OfMessageAttributes"] == expected


@both_protocols
@pytest.mark.parametrize("body", [
    "tab\tnewline\ncr\r",
    "emoji 😀 astral \U0010ffff and bmp \ud7ff \ue000 \ufffd",
    " ",
    "<xml attr='1'>&amp;</xml> {\"json\": [1, 2]}",
])
def test_bodies_with_allowed_characters_round_trip(sqs: Any, queue_url: str, body: str) -> None:
    sent = sqs.send_message(QueueUrl=queue_url, MessageBody=body)
    assert sent["MD5OfMessageBody"] == md5_of_body(body)
    message = receive_one(sqs, queue_url)
    assert message["Body"] == body
    assert message["MD5OfBody"] == md5_of_body(body)
    sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


@both_protocols
@pytest.mark.parametrize("body", ["nul\x00", "bell\x07", "escape\x1b", "noncharacter\ufffe", "noncharacter\uffff"])
def test_body_with_invalid_characters_is_invalid_message_contents(sqs: Any, queue_url: str, body: str) -> None:
    with pytest.raises(ClientError) as info:
        sqs.send_message(QueueUrl=queue_url, MessageBody=body)
    assert error_code(info.value) == "InvalidMessageContents"
    assert http_status(info.value) == 400
    assert visible_count(sqs, queue_url) == 0


@both_protocols
def test_message_size_limit_follows_maximum_message_size(sqs: Any, make_queue: Callable[..., str]) -> None:
    url = make_queue({"MaximumMessageSize": "1024"})
    sqs.send_message(QueueUrl=url, MessageBody="x" * 1024)
    with pytest.raises(ClientError) as info:
        sqs.send_message(QueueUrl=url, MessageBody="x" * 1025)
    assert error_code(info.value) == "InvalidParameterValue"
    # Attribute names, types and values count towards the limit too.
    with pytest.raises(ClientError) as info:
        sqs.send_message(QueueUrl=url, MessageBody="x" * 1000,
                         MessageAttributes={"name": {"DataType": "String", "StringValue": "v" * 30}})
    assert error_code(info.value) == "InvalidParameterValue"
    assert visible_count(sqs, url) == 1


@both_protocols
def test_default_limit_is_one_mebibyte(sqs: Any, queue_url: str) -> None:
    sqs.send_message(QueueUrl=queue_url, MessageBody="y" * 1_048_576)
    with pytest.raises(ClientError) as info:
        sqs.send_message(QueueUrl=queue_url, MessageBody="y" * 1_048_577)
    assert error_code(info.value) == "InvalidParameterValue"
    message = receive_one(sqs, queue_url)
    assert len(message["Body"]) == 1_048_576


@pytest.mark.parametrize("attributes", [
    {"n": {"DataType": "Text", "StringValue": "x"}},
    {"n": {"DataType": "Number", "StringValue": "not-a-number"}},
    {"n": {"DataType": "String", "StringValue": ""}},
    {"AWS.reserved": {"DataType": "String", "StringValue": "x"}},
    {".leading-dot": {"DataType": "String", "StringValue": "x"}},
    {"double..dot": {"DataType": "String", "StringValue": "x"}},
    {f"a{i}": {"DataType": "String", "StringValue": "x"} for i in range(11)},
])
def test_invalid_message_attributes_are_rejected(sqs: Any, queue_url: str,
                                                 attributes: dict[str, dict[str, Any]]) -> None:
    with pytest.raises(ClientError) as info:
        sqs.send_message(QueueUrl=queue_url, MessageBody="x", MessageAttributes=attributes)
    assert error_code(info.value) == "InvalidParameterValue"
    assert visible_count(sqs, queue_url) == 0


@both_protocols
@pytest.mark.parametrize("delay", [-1, 901])
def test_message_delay_out_of_range_is_invalid_parameter_value(sqs: Any, queue_url: str, delay: int) -> None:
    with pytest.raises(ClientError) as info:
        sqs.send_message(QueueUrl=queue_url, MessageBody="x", DelaySeconds=delay)
    assert error_code(info.value) == "InvalidParameterValue"


# -- SendMessageBatch -----------------------------------------------------------------------------------------------

@both_protocols
def test_send_batch_of_ten_reports_each_entry(sqs: Any, queue_url: str) -> None:
    entries: list[dict[str, Any]] = [{"Id": f"e-{i}", "MessageBody": f"body {i}",
                "MessageAttributes": {"i": {"DataType": "Number", "StringValue": str(i)}}} for i in range(10)]
    response = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
    assert response.get("Failed", []) == []
    by_id = {entry["Id"]: entry for entry in response["Successful"]}
    assert set(by_id) == {e["Id"] for e in entries}
    for entry in entries:
        result = by_id[entry["Id"]]
        assert result["MD5OfMessageBody"] == md5_of_body(entry["MessageBody"])
        assert result["MD5OfMessageAttributes"] == md5_of_attributes(entry["MessageAttributes"])
    assert len({r["MessageId"] for r in response["Successful"]}) == 10
    received = receive_until(sqs, queue_url, 10, timeout=5, MessageAttributeNames=["All"])
    assert sorted(m["Body"] for m in received) == sorted(e["MessageBody"] for e in entries)
    assert {m["MessageId"] for m in received} == {r["MessageId"] for r in response["Successful"]}


@both_protocols
def test_send_batch_partial_failure_keeps_the_good_entries(sqs: Any, make_queue: Callable[..., str]) -> None:
    url = make_queue({"MaximumMessageSize": "1024"})
    entries = [
        {"Id": "good-1", "MessageBody": "fine"},
        {"Id": "bad-chars", "MessageBody": "nul\x00"},
        {"Id": "good-2", "MessageBody": "also fine", "DelaySeconds": 0},
        {"Id": "too-big", "MessageBody": "z" * 1025},
    ]
    response = sqs.send_message_batch(QueueUrl=url, Entries=entries)
    assert {e["Id"] for e in response["Successful"]} == {"good-1", "good-2"}
    failed = {e["Id"]: e for e in response["Failed"]}
    assert set(failed) == {"bad-chars", "too-big"}
    assert failed["bad-chars"]["Code"] == "InvalidMessageContents"
    assert failed["too-big"]["Code"] == "InvalidParameterValue"
    assert all(f["SenderFault"] is True for f in failed.values())
    received = receive_until(sqs, url, 2, timeout=5)
    assert sorted(m["Body"] for m in received) == ["also fine", "fine"]


@both_protocols
def test_send_batch_with_duplicate_ids_is_rejected_whole(sqs: Any, queue_url: str) -> None:
    with pytest.raises(sqs.exceptions.BatchEntryIdsNotDistinct) as info:
        sqs.send_message_batch(QueueUrl=queue_url, Entries=[{"Id": "same", "MessageBody": "1"},
                                                            {"Id": "same", "MessageBody": "2"}])
    assert error_code(info.value) == "AWS.SimpleQueueService.BatchEntryIdsNotDistinct"
    assert visible_count(sqs, queue_url) == 0


@both_protocols
def test_send_batch_of_eleven_is_too_many_entries(sqs: Any, queue_url: str) -> None:
    with pytest.raises(sqs.exceptions.TooManyEntriesInBatchRequest) as info:
        sqs.send_message_batch(QueueUrl=queue_url,
                               Entries=[{"Id": str(i), "MessageBody": "x"} for i in range(11)])
    assert error_code(info.value) == "AWS.SimpleQueueService.TooManyEntriesInBatchRequest"
    assert visible_count(sqs, queue_url) == 0


@pytest.mark.parametrize("operation", ["send_message_batch", "delete_message_batch",
                                       "change_message_visibility_batch"])
def test_empty_batches_are_empty_batch_request(sqs: Any, queue_url: str, operation: str) -> None:
    with pytest.raises(sqs.exceptions.EmptyBatchRequest) as info:
        getattr(sqs, operation)(QueueUrl=queue_url, Entries=[])
    assert error_code(info.value) == "AWS.SimpleQueueService.EmptyBatchRequest"


@both_protocols
@pytest.mark.parametrize("entry_id", ["has space", "dot.id", "x" * 81, "ünï"])
def test_batch_entry_ids_must_be_alphanumeric_hyphen_underscore(sqs: Any, queue_url: str, entry_id: str) -> None:
    with pytest.raises(sqs.exceptions.InvalidBatchEntryId) as info:
        sqs.send_message_batch(QueueUrl=queue_url, Entries=[{"Id": entry_id, "MessageBody": "x"}])
    assert error_code(info.value) == "AWS.SimpleQueueService.InvalidBatchEntryId"


@both_protocols
def test_send_batch_larger_than_one_mebibyte_in_total_is_batch_request_too_long(sqs: Any, queue_url: str) -> None:
    entries = [{"Id": str(i), "MessageBody": "b" * 110_000} for i in range(10)]  # each fits, 1.1 MB together
    with pytest.raises(sqs.exceptions.BatchRequestTooLong) as info:
        sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
    assert error_code(info.value) == "AWS.SimpleQueueService.BatchRequestTooLong"
    assert visible_count(sqs, queue_url) == 0


# -- ReceiveMessage -------------------------------------------------------------------------------------------------

@both_protocols
def test_receive_honours_max_number_of_messages(sqs: Any, queue_url: str) -> None:
    for start in (0, 10):
        sqs.send_message_batch(QueueUrl=queue_url,
                               Entries=[{"Id": str(i), "MessageBody": f"m{start + i}"} for i in range(10)])
    assert len(sqs.receive_message(QueueUrl=queue_url)["Messages"]) == 1  # default is one message
    assert len(sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=4)["Messages"]) == 4
    assert len(sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]) == 10
    assert len(sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]) == 5
    assert_empty(sqs, queue_url)


@both_protocols
@pytest.mark.parametrize("count", [0, 11])
def test_receive_max_number_out_of_range_is_invalid_parameter_value(sqs: Any, queue_url: str, count: int) -> None:
    with pytest.raises(ClientError) as info:
        sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=count)
    assert error_code(info.value) == "InvalidParameterValue"


@pytest.mark.parametrize("timeout", [-1, 43201])
def test_receive_visibility_timeout_out_of_range_is_rejected(sqs: Any, queue_url: str, timeout: int) -> None:
    with pytest.raises(ClientError) as info:
        sqs.receive_message(QueueUrl=queue_url, VisibilityTimeout=timeout)
    assert error_code(info.value) == "InvalidParameterValue"


def test_receive_returns_system_attributes_asked_for(sqs: Any, queue_url: str) -> None:
    before_ms = int(time.time() * 1000)
    sqs.send_message(QueueUrl=queue_url, MessageBody="attrs")
    after_ms = int(time.time() * 1000)
    message = receive_one(sqs, queue_url, AttributeNames=["All"], VisibilityTimeout=0)
    attrs = message["Attributes"]
    assert {"SenderId", "SentTimestamp", "ApproximateReceiveCount",
            "ApproximateFirstReceiveTimestamp"} <= set(attrs)
    assert attrs["SenderId"]
    sent = int(attrs["SentTimestamp"])
    assert before_ms - 1000 <= sent <= after_ms + 1000
    first_receive = int(attrs["ApproximateFirstReceiveTimestamp"])
    assert sent <= first_receive <= int(time.time() * 1000) + 1000
    assert attrs["ApproximateReceiveCount"] == "1"

    again = receive_one(sqs, queue_url, MessageSystemAttributeNames=["ApproximateReceiveCount", "SentTimestamp"],
                        VisibilityTimeout=0)
    assert again["Attributes"] == {"ApproximateReceiveCount": "2", "SentTimestamp": str(sent)}

    plain = receive_one(sqs, queue_url, VisibilityTimeout=0)
    assert "Attributes" not in plain

    last = receive_one(sqs, queue_url, MessageSystemAttributeNames=["All"])
    assert last["Attributes"]["ApproximateReceiveCount"] == "4"
    assert last["Attributes"]["ApproximateFirstReceiveTimestamp"] == str(first_receive)


@both_protocols
def test_receive_filters_message_attributes_by_name_and_prefix(sqs: Any, queue_url: str) -> None:
    attrs: dict[str, dict[str, Any]] = {
        "foo.one": {"DataType": "String", "StringValue": "1"},
        "foo.two": {"DataType": "Number", "StringValue": "2"},
        "bar": {"DataType": "Binary", "BinaryValue": b"\x00\x01"},
        "foobar": {"DataType": "String", "StringValue": "not under foo."},
    }
    sqs.send_message(QueueUrl=queue_url, MessageBody="filtered", MessageAttributes=attrs)

    def received_with(names: list[str] | None) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"VisibilityTimeout": 0}
        if names is not None:
            kwargs["MessageAttributeNames"] = names
        return receive_one(sqs, queue_url, **kwargs)

    everything = received_with(["All"])
    assert everything["MessageAttributes"] == attrs
    assert everything["MD5OfMessageAttributes"] == md5_of_attributes(attrs)

    star = received_with([".*"])
    assert star["MessageAttributes"] == attrs

    prefixed = received_with(["foo.*"])
    assert prefixed["MessageAttributes"] == {k: attrs[k] for k in ("foo.one", "foo.two")}
    assert prefixed["MD5OfMessageAttributes"] == md5_of_attributes(prefixed["MessageAttributes"])

    named = received_with(["bar", "absent"])
    assert named["MessageAttributes"] == {"bar": attrs["bar"]}
    assert named["MD5OfMessageAttributes"] == md5_of_attributes(named["MessageAttributes"])

    neither = received_with(None)
    assert "MessageAttributes" not in neither
    assert "MD5OfMessageAttributes" not in neither


# -- Visibility -----------------------------------------------------------------------------------------------------

def test_received_message_is_invisible_for_exactly_its_timeout(sqs: Any, make_queue: Callable[..., str]) -> None:
    url = make_queue({"VisibilityTimeout": "2"})
    sent = sqs.send_message(QueueUrl=url, MessageBody="hide and seek")
    t_request = time.monotonic()
    first = receive_one(sqs, url, WaitTimeSeconds=0, AttributeNames=["ApproximateReceiveCount"])
    t_received = time.monotonic()
    assert first["Attributes"]["ApproximateReceiveCount"] == "1"
    assert_empty(sqs, url)

    again = receive_one(sqs, url, WaitTimeSeconds=10, AttributeNames=["ApproximateReceiveCount"])
    t_again = time.monotonic()
    assert again["MessageId"] == sent["MessageId"]
    assert again["Attributes"]["ApproximateReceiveCount"] == "2"
    assert again["ReceiptHandle"] != first["ReceiptHandle"]
    assert t_again - t_request >= 2.0 - 0.05, "redelivered before the visibility timeout elapsed"
    assert t_again - t_received <= 2.0 + 0.75, "long poll did not wake when the message became visible again"


def test_receive_visibility_timeout_overrides_the_queue_default(sqs: Any, make_queue: Callable[..., str]) -> None:
    url = make_queue({"VisibilityTimeout": "600"})
    sqs.send_message(QueueUrl=url, MessageBody="short")
    t_request = time.monotonic()
    receive_one(sqs, url, VisibilityTimeout=1, WaitTimeSeconds=0)
    again = receive_one(sqs, url, WaitTimeSeconds=5, AttributeNames=["ApproximateReceiveCount"])
    assert time.monotonic() - t_request >= 1.0 - 0.05
    assert again["Attributes"]["ApproximateReceiveCount"] == "2"
    # Received now with the queue's 600 s default: it must stay hidden.
    assert_empty(sqs, url)


@both_protocols
def test_change_visibility_to_zero_makes_message_available_at_once(sqs: Any, queue_url: str) -> None:
    sqs.send_message(QueueUrl=queue_url, MessageBody="release me")
    first = receive_one(sqs, queue_url, VisibilityTimeout=300)
    assert_empty(sqs, queue_url)
    sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=first["ReceiptHandle"], VisibilityTimeout=0)
    again = receive_one(sqs, queue_url, WaitTimeSeconds=0, AttributeNames=["ApproximateReceiveCount"],
                        VisibilityTimeout=300)
    assert again["MessageId"] == first["MessageId"]
    assert again["Attributes"]["ApproximateReceiveCount"] == "2"


def test_change_visibility_extends_the_timeout(sqs: Any, queue_url: str) -> None:
    sqs.send_message(QueueUrl=queue_url, MessageBody="keep hidden")
    t_request = time.monotonic()
    first = receive_one(sqs, queue_url, VisibilityTimeout=1)
    sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=first["ReceiptHandle"], VisibilityTimeout=3)
    t_changed = time.monotonic()
    assert sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1).get("Messages", []) == []
    again = receive_one(sqs, queue_url, WaitTimeSeconds=10)
    assert time.monotonic() - t_changed >= 3.0 - 0.05
    assert time.monotonic() - t_request >= 3.0
    assert again["MessageId"] == first["MessageId"]


@both_protocols
def test_change_visibility_of_a_message_not_in_flight_is_message_not_inflight(sqs: Any, queue_url: str) -> None:
    sqs.send_message(QueueUrl=queue_url, MessageBody="visible")
    first = receive_one(sqs, queue_url, VisibilityTimeout=300)
    sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=first["ReceiptHandle"], VisibilityTimeout=0)
    with pytest.raises(sqs.exceptions.MessageNotInflight) as info:
        sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=first["ReceiptHandle"],
                                      VisibilityTimeout=30)
    assert error_code(info.value) == "AWS.SimpleQueueService.MessageNotInflight"


@both_protocols
def test_change_visibility_rejects_bad_handles_and_values(sqs: Any, queue_url: str) -> None:
    sqs.send_message(QueueUrl=queue_url, MessageBody="x")
    message = receive_one(sqs, queue_url, VisibilityTimeout=300)
    with pytest.raises(sqs.exceptions.ReceiptHandleIsInvalid) as info:
        sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle="not-a-receipt-handle", VisibilityTimeout=1)
    assert error_code(info.value) == "ReceiptHandleIsInvalid"
    with pytest.raises(ClientError) as info:
        sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"],
                                      VisibilityTimeout=43201)
    assert error_code(info.value) == "InvalidParameterValue"
    assert_empty(sqs, queue_url)


@both_protocols
def test_change_visibility_batch_reports_each_entry(sqs: Any, queue_url: str) -> None:
    sqs.send_message_batch(QueueUrl=queue_url, Entries=[{"Id": "a", "MessageBody": "a"},
                                                        {"Id": "b", "MessageBody": "b"}])
    received = receive_until(sqs, queue_url, 2, timeout=5, VisibilityTimeout=300)
    by_body = {m["Body"]: m for m in received}
    response = sqs.change_message_visibility_batch(QueueUrl=queue_url, Entries=[
        {"Id": "release", "ReceiptHandle": by_body["a"]["ReceiptHandle"], "VisibilityTimeout": 0},
        {"Id": "keep", "ReceiptHandle": by_body["b"]["ReceiptHandle"], "VisibilityTimeout": 300},
        {"Id": "garbage", "ReceiptHandle": "not-a-receipt-handle", "VisibilityTimeout": 0},
    ])
    assert {e["Id"] for e in response["Successful"]} == {"release", "keep"}
    assert [(f["Id"], f["Code"], f["SenderFault"]) for f in response["Failed"]] == [
        ("garbage", "ReceiptHandleIsInvalid", True)]
    again = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)["Messages"]
    assert [m["Body"] for m in again] == ["a"]


@both_protocols
def test_change_visibility_batch_with_duplicate_ids_is_rejected(sqs: Any, queue_url: str) -> None:
    with pytest.raises(sqs.exceptions.BatchEntryIdsNotDistinct):
        sqs.change_message_visibility_batch(QueueUrl=queue_url, Entries=[
            {"Id": "x", "ReceiptHandle": "h1", "VisibilityTimeout": 0},
            {"Id": "x", "ReceiptHandle": "h2", "VisibilityTimeout": 0}])


# -- DeleteMessage(Batch) -------------------------------------------------------------------------------------------

def test_deleted_message_is_never_redelivered(sqs: Any, make_queue: Callable[..., str]) -> None:
    url = make_queue({"VisibilityTimeout": "1"})
    sqs.send_message(QueueUrl=url, MessageBody="gone")
    message = receive_one(sqs, url)
    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])  # deleting twice succeeds
    assert sqs.receive_message(QueueUrl=url, WaitTimeSeconds=2).get("Messages", []) == []
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert (attrs["ApproximateNumberOfMessages"], attrs["ApproximateNumberOfMessagesNotVisible"]) == ("0", "0")


@both_protocols
def test_delete_with_invalid_receipt_handle_is_receipt_handle_is_invalid(sqs: Any, queue_url: str) -> None:
    with pytest.raises(sqs.exceptions.ReceiptHandleIsInvalid) as info:
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle="not-a-receipt-handle")
    assert error_code(info.value) == "ReceiptHandleIsInvalid"
    assert http_status(info.value) == 400


@both_protocols
def test_delete_batch_partial_failure(sqs: Any, queue_url: str) -> None:
    sqs.send_message_batch(QueueUrl=queue_url, Entries=[{"Id": str(i), "MessageBody": f"m{i}"} for i in range(3)])
    received = receive_until(sqs, queue_url, 3, timeout=5, VisibilityTimeout=0)
    assert len(received) == 3
    keep = received[2]
    response = sqs.delete_message_batch(QueueUrl=queue_url, Entries=[
        {"Id": "d0", "ReceiptHandle": received[0]["ReceiptHandle"]},
        {"Id": "d1", "ReceiptHandle": received[1]["ReceiptHandle"]},
        {"Id": "bad", "ReceiptHandle": "not-a-receipt-handle"},
    ])
    assert {e["Id"] for e in response["Successful"]} == {"d0", "d1"}
    assert [(f["Id"], f["Code"], f["SenderFault"]) for f in response["Failed"]] == [
        ("bad", "ReceiptHandleIsInvalid", True)]
    left = receive_until(sqs, queue_url, 1, timeout=3)
    assert [m["MessageId"] for m in left] == [keep["MessageId"]]


@both_protocols
def test_delete_batch_too_many_and_duplicate_ids(sqs: Any, queue_url: str) -> None:
    with pytest.raises(sqs.exceptions.TooManyEntriesInBatchRequest):
        sqs.delete_message_batch(QueueUrl=queue_url,
                                 Entries=[{"Id": str(i), "ReceiptHandle": "h"} for i in range(11)])
    with pytest.raises(sqs.exceptions.BatchEntryIdsNotDistinct):
        sqs.delete_message_batch(QueueUrl=queue_url, Entries=[{"Id": "x", "ReceiptHandle": "h1"},
                                                              {"Id": "x", "ReceiptHandle": "h2"}])


# -- Delays ---------------------------------------------------------------------------------------------------------

def test_queue_delay_hides_new_messages(sqs: Any, make_queue: Callable[..., str]) -> None:
    url = make_queue({"DelaySeconds": "1"})
    t_send = time.monotonic()
    sqs.send_message(QueueUrl=url, MessageBody="delayed by queue")
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert (attrs["ApproximateNumberOfMessages"], attrs["ApproximateNumberOfMessagesDelayed"]) == ("0", "1")
    assert_empty(sqs, url)
    message = receive_one(sqs, url, WaitTimeSeconds=5)
    assert message["Body"] == "delayed by queue"
    assert time.monotonic() - t_send >= 1.0 - 0.05


def test_message_delay_overrides_the_queue_delay(sqs: Any, make_queue: Callable[..., str]) -> None:
    url = make_queue({"DelaySeconds": "600"})
    t_send = time.monotonic()
    sqs.send_message_batch(QueueUrl=url, Entries=[
        {"Id": "now", "MessageBody": "no delay", "DelaySeconds": 0},
        {"Id": "soon", "MessageBody": "one second", "DelaySeconds": 1},
        {"Id": "queue", "MessageBody": "queue default"},
    ])
    first = receive_one(sqs, url, WaitTimeSeconds=0)
    assert first["Body"] == "no delay"
    second = receive_one(sqs, url, WaitTimeSeconds=5)
    assert second["Body"] == "one second"
    assert time.monotonic() - t_send >= 1.0 - 0.05
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesDelayed"])
    assert attrs["Attributes"]["ApproximateNumberOfMessagesDelayed"] == "1"


# -- Retention ------------------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_messages_older_than_the_retention_period_expire(sqs: Any, make_queue: Callable[..., str]) -> None:
    """AWS's minimum retention is 60 s, so the full check waits a minute of real time (RAFTMQ_SLOW=1); the bounded
    run checks the 60 s minimum is accepted and keeps the message until then. The sweep itself is unit-tested on
    the model with a synthetic clock."""
    url = make_queue({"MessageRetentionPeriod": "60"})
    sqs.send_message(QueueUrl=url, MessageBody="visible until it expires")
    sqs.send_message(QueueUrl=url, MessageBody="expires while delayed", DelaySeconds=900)
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert (attrs["ApproximateNumberOfMessages"], attrs["ApproximateNumberOfMessagesDelayed"]) == ("1", "1")
    if os.environ.get("RAFTMQ_SLOW") != "1":
        return
    time.sleep(61)  # the passage of time is the behaviour under test; there is no event to wait for
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert (attrs["ApproximateNumberOfMessages"], attrs["ApproximateNumberOfMessagesDelayed"]) == ("0", "0")
    assert_empty(sqs, url)
