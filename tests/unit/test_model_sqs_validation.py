"""Stateless SQS input rules: names, attribute values, bodies, message attributes, batches, request integers."""

from __future__ import annotations

import json

import pytest

from broker.model import errors
from broker.model.sqs_md5 import md5_of_attributes, md5_of_body
from broker.model.sqs_validation import (
    arn_queue,
    attributes_size,
    check_attribute_names,
    check_batch_ids,
    check_body,
    check_delay,
    check_fifo_id,
    check_max_messages,
    check_message_attributes,
    check_queue_attributes,
    check_queue_name,
    check_redrive_allow_policy,
    check_redrive_policy,
    check_visibility_timeout,
    check_wait_time,
)


@pytest.mark.parametrize("name", ["a", "A-b_9", "x" * 80])
def test_valid_queue_names(name: str) -> None:
    assert check_queue_name(name) == name


@pytest.mark.parametrize("name", ["x" * 81, "with space", "dot.name", "ü", "q.fifo"])
def test_invalid_queue_names(name: str) -> None:
    with pytest.raises(errors.InvalidParameterValue):
        check_queue_name(name)


def test_missing_queue_name_and_fifo_names() -> None:
    with pytest.raises(errors.MissingParameter):
        check_queue_name("")
    assert check_queue_name("q.fifo", {"FifoQueue": "true"}) == "q.fifo"
    assert check_queue_name("x" * 75 + ".fifo", {"FifoQueue": "True"}) == "x" * 75 + ".fifo"
    for bad in ("q", "x" * 76 + ".fifo", "a.b.fifo", ".fifo"):
        with pytest.raises(errors.InvalidParameterValue, match=r"must end with \.fifo suffix"):
            check_queue_name(bad, {"FifoQueue": "true"})


@pytest.mark.parametrize(("name", "low", "high"), [
    ("DelaySeconds", 0, 900), ("MaximumMessageSize", 1024, 1_048_576), ("MessageRetentionPeriod", 60, 1_209_600),
    ("ReceiveMessageWaitTimeSeconds", 0, 20), ("VisibilityTimeout", 0, 43_200),
])
def test_integer_attribute_ranges(name: str, low: int, high: int) -> None:
    assert check_queue_attributes({name: str(low), "Policy": "{}"}, creating=True)[name] == str(low)
    assert check_queue_attributes({name: str(high)}, creating=False) == {name: str(high)}
    for bad in (str(low - 1), str(high + 1), "ten", "1.5", ""):
        with pytest.raises(errors.InvalidAttributeValue) as exc:
            check_queue_attributes({name: bad}, creating=True)
        assert exc.value.message == f"Invalid value for the parameter {name}."


def test_attribute_names_and_other_values() -> None:
    with pytest.raises(errors.InvalidAttributeName, match=r"Unknown Attribute Foo\."):
        check_queue_attributes({"Foo": "1"}, creating=True)
    with pytest.raises(errors.InvalidAttributeName):  # read-only
        check_queue_attributes({"QueueArn": "x"}, creating=False)
    with pytest.raises(errors.InvalidAttributeValue):
        check_queue_attributes({"Policy": "not json"}, creating=True)
    with pytest.raises(errors.InvalidAttributeValue):
        check_queue_attributes({"SqsManagedSseEnabled": "maybe"}, creating=True)
    assert check_queue_attributes({"FifoQueue": "false", "SqsManagedSseEnabled": "False"}, creating=True) == {
        "SqsManagedSseEnabled": "false"}
    check_attribute_names(["All", "QueueArn", "ApproximateNumberOfMessagesDelayed", "FifoQueue"])
    with pytest.raises(errors.InvalidAttributeName):
        check_attribute_names(["QueueArn", "Bogus"])


def test_body_characters() -> None:
    assert check_body("tab\tnl\ncr\r 😀 \ue000") == "tab\tnl\ncr\r 😀 \ue000"
    for bad in ("\x00", "a\x1fb", "\ufffe", "\ud800"):
        with pytest.raises(errors.InvalidMessageContents):
            check_body(bad)
    with pytest.raises(errors.MissingParameter):
        check_body("")


def test_request_integers() -> None:
    assert check_delay(None) is None and check_delay(900) == 900
    assert check_max_messages(None) == 1 and check_max_messages(10) == 10
    assert check_wait_time(20) == 20 and check_visibility_timeout(0) == 0
    with pytest.raises(errors.InvalidParameterValue, match="Value 11 for parameter MaxNumberOfMessages is invalid"):
        check_max_messages(11)
    for check, bad in ((check_delay, 901), (check_max_messages, 0), (check_wait_time, 21),
                       (check_visibility_timeout, 43_201), (check_delay, -1), (check_delay, True)):
        with pytest.raises(errors.InvalidParameterValue):
            check(bad)


def test_message_attributes_valid_forms() -> None:
    got = check_message_attributes({
        "z": {"DataType": "String", "StringValue": "v"},
        "a.b-c_d": {"DataType": "Number.int", "StringValue": "-1.5e3"},
        "bin": {"DataType": "Binary.png", "BinaryValue": b"\x00"},
    })
    assert got == (("a.b-c_d", "Number.int", "-1.5e3", None), ("bin", "Binary.png", None, b"\x00"),
                   ("z", "String", "v", None))
    assert attributes_size(got) == (7 + 10 + 6) + (3 + 10 + 1) + (1 + 6 + 1)
    assert check_message_attributes(None) == ()
    assert check_message_attributes({"AWSTraceHeader": {"DataType": "String", "StringValue": "Root=1"}},
                                    system=True) == (("AWSTraceHeader", "String", "Root=1", None),)


@pytest.mark.parametrize("raw", [
    {"AWS.x": {"DataType": "String", "StringValue": "v"}},
    {"amazon.x": {"DataType": "String", "StringValue": "v"}},
    {".x": {"DataType": "String", "StringValue": "v"}},
    {"x.": {"DataType": "String", "StringValue": "v"}},
    {"a..b": {"DataType": "String", "StringValue": "v"}},
    {"sp ace": {"DataType": "String", "StringValue": "v"}},
    {"x": {"DataType": "Str", "StringValue": "v"}},
    {"x": {"DataType": "String"}},
    {"x": {"DataType": "String", "StringValue": ""}},
    {"x": {"DataType": "String", "StringValue": "\x00"}},
    {"x": {"DataType": "Number", "StringValue": "abc"}},
    {"x": {"DataType": "Number", "StringValue": "1" * 39}},
    {"x": {"DataType": "Binary", "StringValue": "v"}},
    {"x": {"StringValue": "v"}},
    {f"k{i}": {"DataType": "String", "StringValue": "v"} for i in range(11)},
])
def test_invalid_message_attributes(raw: dict[str, dict[str, object]]) -> None:
    with pytest.raises(errors.InvalidParameterValue):
        check_message_attributes(raw)


def test_only_aws_trace_header_as_system_attribute() -> None:
    with pytest.raises(errors.InvalidParameterValue):
        check_message_attributes({"Other": {"DataType": "String", "StringValue": "v"}}, system=True)


def test_batch_rules() -> None:
    check_batch_ids([{"Id": "a"}, {"Id": "B-_9"}], "X")
    with pytest.raises(errors.EmptyBatchRequest):
        check_batch_ids([], "SendMessageBatchRequestEntry")
    with pytest.raises(errors.TooManyEntriesInBatchRequest, match="You have sent 11"):
        check_batch_ids([{"Id": str(i)} for i in range(11)], "X")
    with pytest.raises(errors.BatchEntryIdsNotDistinct):
        check_batch_ids([{"Id": "a"}, {"Id": "a"}], "X")
    for bad in ("", "x" * 81, "a.b"):
        with pytest.raises(errors.InvalidBatchEntryId):
            check_batch_ids([{"Id": bad}], "X")


def test_md5s_as_aws_computes_them() -> None:
    assert md5_of_body("hello") == md5_of_body(b"hello") == "5d41402abc4b2a76b9719d911017c592"
    assert md5_of_attributes(()) is None
    one = ("timestamp", "Number", "1493147359900", None)
    assert md5_of_attributes((one,)) == "235c5c510d26fb653d073faed50ae77c"
    two = (("b", "Binary", None, b"\x01"), ("a", "String", "x", None))
    assert md5_of_attributes(two) == md5_of_attributes(tuple(reversed(two)))  # order-independent
    assert md5_of_attributes((("a", "String", "x", None),)) != md5_of_attributes((("a", "Binary", None, b"x"),))


DLQ_ARN = "arn:aws:sqs:us-east-1:000000000000:dlq"


@pytest.mark.parametrize("count", [1, "7", " 1000", 1000])
def test_redrive_policy_accepts_string_or_number_counts(count: object) -> None:
    canonical = check_redrive_policy(json.dumps({"maxReceiveCount": count, "deadLetterTargetArn": DLQ_ARN}))
    assert json.loads(canonical) == {"deadLetterTargetArn": DLQ_ARN, "maxReceiveCount": int(str(count))}
    assert canonical.startswith('{"deadLetterTargetArn"')  # one canonical form: CreateQueue compares it


@pytest.mark.parametrize(("policy", "reason"), [
    (json.dumps({"maxReceiveCount": 1}), "mandatory attribute: deadLetterTargetArn."),
    (json.dumps({"deadLetterTargetArn": DLQ_ARN}), "mandatory attribute: maxReceiveCount."),
    (json.dumps({"deadLetterTargetArn": DLQ_ARN, "maxReceiveCount": 0}),
     "Invalid value for maxReceiveCount: 0, valid values are from 1 to 1000 both inclusive."),
    (json.dumps({"deadLetterTargetArn": DLQ_ARN, "maxReceiveCount": True}), "valid values are from 1 to 1000"),
    (json.dumps({"deadLetterTargetArn": "dlq", "maxReceiveCount": 1}), "should be fully qualified ARN."),
    (json.dumps({"deadLetterTargetArn": DLQ_ARN, "maxReceiveCount": 1, "x": 1}), "Only following attributes"),
])
def test_redrive_policy_errors(policy: str, reason: str) -> None:
    with pytest.raises(errors.InvalidParameterValue) as info:
        check_redrive_policy(policy)
    assert info.value.message.startswith(f"Value {policy} for parameter RedrivePolicy is invalid. Reason: ")
    assert reason in info.value.message
    for not_a_map in ("[1]", "{", "7"):
        with pytest.raises(errors.InvalidParameterValue, match="Redrive policy is not a valid JSON map"):
            check_redrive_policy(not_a_map)


def test_redrive_allow_policy() -> None:
    assert check_redrive_allow_policy('{"redrivePermission": "denyAll"}') == '{"redrivePermission":"denyAll"}'
    by_queue = {"redrivePermission": "byQueue", "sourceQueueArns": [DLQ_ARN] * 10}
    assert json.loads(check_redrive_allow_policy(json.dumps(by_queue))) == by_queue
    for bad, reason in (
            ({"redrivePermission": "some"}, "unsupported format"),
            ({"redrivePermission": "allowAll", "other": 1}, "unsupported format"),
            ({"redrivePermission": "byQueue", "sourceQueueArns": "x"}, "unsupported format"),
            ({"redrivePermission": "byQueue"}, "you must also specify one or more sourceQueueArns"),
            ({"redrivePermission": "byQueue", "sourceQueueArns": [DLQ_ARN] * 11}, "maximum number of source"),
            ({"redrivePermission": "allowAll", "sourceQueueArns": [DLQ_ARN]}, "you must set redrivePermission")):
        with pytest.raises(errors.InvalidParameterValue, match="RedriveAllowPolicy") as info:
            check_redrive_allow_policy(json.dumps(bad))
        assert reason in info.value.message


def test_fifo_attributes_only_on_fifo_queues() -> None:
    got = check_queue_attributes({"FifoQueue": "TRUE", "ContentBasedDeduplication": "True",
                                  "DeduplicationScope": "messageGroup",
                                  "FifoThroughputLimit": "perMessageGroupId"}, creating=True, fifo=True)
    assert got == {"FifoQueue": "true", "ContentBasedDeduplication": "true", "DeduplicationScope": "messageGroup",
                   "FifoThroughputLimit": "perMessageGroupId"}
    with pytest.raises(errors.InvalidAttributeName):
        check_queue_attributes({"DeduplicationScope": "queue"}, creating=True)
    with pytest.raises(errors.InvalidAttributeName):
        check_queue_attributes({"FifoQueue": "true"}, creating=False, fifo=True)
    with pytest.raises(errors.InvalidAttributeValue):
        check_queue_attributes({"FifoQueue": "yes"}, creating=True)
    with pytest.raises(errors.InvalidAttributeValue):
        check_queue_attributes({"DeduplicationScope": "Queue"}, creating=True, fifo=True)


def test_fifo_ids_and_arns() -> None:
    assert check_fifo_id("MessageGroupId", "a-Z_0.9!~{}") == "a-Z_0.9!~{}"
    assert check_fifo_id("MessageGroupId", None) is None
    for bad in ("", "x" * 129, "a b", "é", 5):
        with pytest.raises(errors.InvalidParameterValue, match="MessageGroupId"):
            check_fifo_id("MessageGroupId", bad)
    assert arn_queue(DLQ_ARN) == ("000000000000", "dlq")
    assert arn_queue("arn:aws:sns:us-east-1:000000000000:t") is None
