"""AWS JSON codec against botocore: requests botocore serializes decode to the params it was given, responses we
encode parse back (with botocore's own parser) to the output the service returned, errors map to the codes SDKs
report."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import botocore.session
import orjson
import pytest
from botocore import parsers, serialize
from botocore.model import ServiceModel as BotoServiceModel

from broker.aws.json_protocol import JsonCodec
from broker.aws.service_model import ServiceModel, load_service_model
from broker.model.errors import BrokerError, InternalFailure, QueueDoesNotExist

_SESSION = botocore.session.get_session()


def _boto(service: str) -> BotoServiceModel:
    return _SESSION.get_service_model(service)


def _codec(service: str) -> JsonCodec:
    return JsonCodec(load_service_model(service, "json"))


def _botocore_body(service: str, operation: str, params: dict[str, Any]) -> bytes:
    op = _boto(service).operation_model(operation)
    request = serialize.create_serializer("json").serialize_to_request(params, op)
    body = request["body"]
    return body if isinstance(body, bytes) else body.encode()


def _decode(service: str, operation: str, body: bytes) -> dict[str, Any]:
    codec = _codec(service)
    op = codec.model.operation(operation)
    assert op is not None
    return codec.decode_body(op, body)


def _botocore_parse(service: str, operation: str, status: int, headers: list[tuple[str, str]],
                    body: bytes) -> dict[str, Any]:
    parser = parsers.create_parser("json")
    op = _boto(service).operation_model(operation)
    parsed: dict[str, Any] = parser.parse({"status_code": status, "headers": {k.lower(): v for k, v in headers},
                                           "body": body}, op.output_shape)
    return parsed


BATCH = {
    "QueueUrl": "http://localhost:4566/000000000000/q",
    "Entries": [{"Id": f"m{i}", "MessageBody": f"body {i} <&> ünïcødé", "DelaySeconds": i,
                 "MessageAttributes": {"s": {"DataType": "String", "StringValue": "v"},
                                       "n": {"DataType": "Number.int", "StringValue": "12"},
                                       "b": {"DataType": "Binary", "BinaryValue": bytes(range(i, i + 20))}},
                 "MessageSystemAttributes": {"AWSTraceHeader": {"DataType": "String", "StringValue": "Root=1"}}}
                for i in range(10)],
}


@pytest.mark.parametrize(("service", "operation", "params"), [
    ("sqs", "SendMessageBatch", BATCH),
    ("sqs", "SendMessage", {"QueueUrl": "u", "MessageBody": "x", "MessageGroupId": "g",
                            "MessageDeduplicationId": "d"}),
    ("sqs", "CreateQueue", {"QueueName": "q", "Attributes": {"VisibilityTimeout": "30", "FifoQueue": "true"},
                            "tags": {"team": "a"}}),
    ("sqs", "ReceiveMessage", {"QueueUrl": "u", "MaxNumberOfMessages": 10, "WaitTimeSeconds": 20,
                               "MessageAttributeNames": ["All"], "MessageSystemAttributeNames": ["SentTimestamp"]}),
    ("sqs", "ListQueues", {}),
    ("kinesis", "PutRecords", {"StreamName": "s", "Records": [{"Data": b"\x00\xffdata", "PartitionKey": "k"},
                                                              {"Data": b"", "PartitionKey": "k2",
                                                               "ExplicitHashKey": "1"}]}),
    ("kinesis", "GetShardIterator", {"StreamName": "s", "ShardId": "shardId-000000000000",
                                     "ShardIteratorType": "AT_TIMESTAMP",
                                     # botocore sends whole epoch seconds
                                     "Timestamp": datetime(2026, 11, 28, 12, 0, 1, tzinfo=UTC)}),
])
def test_decodes_what_botocore_sends(service: str, operation: str, params: dict[str, Any]) -> None:
    assert _decode(service, operation, _botocore_body(service, operation, params)) == params


def test_fractional_epoch_timestamps() -> None:
    body = b'{"StreamName": "s", "ShardId": "x", "ShardIteratorType": "AT_TIMESTAMP", "Timestamp": 1700000000.25}'
    assert _decode("kinesis", "GetShardIterator", body)["Timestamp"] == datetime.fromtimestamp(1700000000.25, UTC)


def test_unknown_members_and_nulls_are_ignored() -> None:
    body = orjson.dumps({"QueueUrl": "u", "MessageBody": "x", "NoSuchMember": {"a": 1}, "DelaySeconds": None})
    assert _decode("sqs", "SendMessage", body) == {"QueueUrl": "u", "MessageBody": "x"}


def test_empty_body_is_an_empty_input() -> None:
    assert _decode("sqs", "ListQueues", b"") == {}
    assert _decode("sqs", "ListQueues", b"  {}  ") == {}


@pytest.mark.parametrize(("body", "code", "message"), [
    (b'{"QueueUrl": "u"}', "MissingParameter", "The request must contain the parameter MessageBody."),
    (b'{"QueueUrl": "u", "Entries": [{"Id": "1"}]}', "MissingParameter",
     "The request must contain the parameter Entries.1.MessageBody."),
    (b'{"QueueUrl": 5, "MessageBody": "x"}', "InvalidParameterValue", None),
    (b'{"QueueUrl": "u", "MessageBody": "x", "DelaySeconds": "5"}', "InvalidParameterValue", None),
    (b'{"QueueUrl": "u", "MessageBody": "x", "DelaySeconds": true}', "InvalidParameterValue", None),
    (b'{"QueueUrl": "u", "MessageBody": "x", "MessageAttributes": []}', "InvalidParameterValue", None),
    (b'{"QueueUrl": "u", "MessageBody": "x", "MessageAttributes": {"a": {"DataType": "Binary", '
     b'"BinaryValue": "not base64!"}}}', "InvalidParameterValue", None),
    (b'{"QueueUrl": "u", "MessageBody": "x"', "SerializationException", None),
    (b'[1, 2]', "SerializationException", None),
    (b'\xff\xfe', "SerializationException", None),
    (b'"text"', "SerializationException", None),
])
def test_sqs_input_errors(body: bytes, code: str, message: str | None) -> None:
    op = "SendMessageBatch" if b"Entries" in body else "SendMessage"
    with pytest.raises(BrokerError) as info:
        _decode("sqs", op, body)
    assert info.value.code == code
    assert info.value.status == 400
    if message is not None:
        assert info.value.message == message


def test_sqs_leaves_value_rules_to_the_service() -> None:
    # SQS words attribute-name and range errors itself (InvalidAttributeName, ...): the codec only checks types.
    body = orjson.dumps({"QueueUrl": "u", "AttributeNames": ["NoSuchAttribute"]})
    assert _decode("sqs", "GetQueueAttributes", body)["AttributeNames"] == ["NoSuchAttribute"]


@pytest.mark.parametrize(("params", "code", "message"), [
    ({"StreamName": "s"}, "ValidationException",
     "1 validation error detected: Value null at 'shardId' failed to satisfy constraint: Member must not be null"),
    ({"StreamName": ""}, "ValidationException", "1 validation error detected: Value '' at 'streamName' failed to "
     "satisfy constraint: Member must have length greater than or equal to 1"),
    ({"StreamName": "bad name!"}, "ValidationException", None),
    ({"StreamName": "s", "ShardId": "x", "ShardIteratorType": "SIDEWAYS"}, "ValidationException", None),
    ({"StreamName": 3, "ShardId": "x", "ShardIteratorType": "LATEST"}, "SerializationException", None),
])
def test_kinesis_input_errors_are_coral_style(params: dict[str, Any], code: str, message: str | None) -> None:
    with pytest.raises(BrokerError) as info:
        _decode("kinesis", "GetShardIterator", orjson.dumps(params))
    assert info.value.code == code
    if message is not None:
        assert info.value.message == message


def test_kinesis_nested_validation_path() -> None:
    body = orjson.dumps({"StreamName": "s", "Records": [{"Data": "", "PartitionKey": "k"}, {"Data": ""}]})
    with pytest.raises(BrokerError) as info:
        _decode("kinesis", "PutRecords", body)
    assert "'records.2.member.partitionKey'" in info.value.message


def _messages(n: int) -> list[dict[str, Any]]:
    return [{"MessageId": f"id-{i}", "ReceiptHandle": "rh" * 40, "MD5OfBody": "0" * 32, "Body": f"body {i} & <x>",
             "Attributes": {"SentTimestamp": "1700000000000", "ApproximateReceiveCount": "1"},
             "MD5OfMessageAttributes": "1" * 32,
             "MessageAttributes": {"b": {"DataType": "Binary", "BinaryValue": b"\x00\x01\x02"},
                                   "s": {"DataType": "String", "StringValue": "v"}}} for i in range(n)]


def test_receive_message_output_parses_in_botocore() -> None:
    codec = _codec("sqs")
    op = codec.model.operation("ReceiveMessage")
    assert op is not None
    output = {"Messages": _messages(10)}
    response = codec.encode_output(op, output, "req-1")
    assert response.status == 200
    assert response.content_type == "application/x-amz-json-1.0"
    parsed = _botocore_parse("sqs", "ReceiveMessage", 200, response.headers, response.body)
    assert parsed.pop("ResponseMetadata")["RequestId"] == "req-1"
    assert parsed == output


def test_output_omits_none_and_drops_unknown_members() -> None:
    codec = _codec("sqs")
    op = codec.model.operation("SendMessage")
    assert op is not None
    response = codec.encode_output(op, {"MessageId": "m", "MD5OfMessageBody": "x", "SequenceNumber": None,
                                        "internal_detail": 1}, "r")
    assert orjson.loads(response.body) == {"MessageId": "m", "MD5OfMessageBody": "x"}


def test_kinesis_timestamps_and_blobs_in_output() -> None:
    codec = _codec("kinesis")
    op = codec.model.operation("GetRecords")
    assert op is not None
    when = datetime(2026, 11, 28, 10, 0, 0, 123000, tzinfo=UTC)
    output = {"Records": [{"SequenceNumber": "1", "ApproximateArrivalTimestamp": when, "Data": b"\x00\xff",
                           "PartitionKey": "k"}], "NextShardIterator": "it", "MillisBehindLatest": 0}
    response = codec.encode_output(op, output, "r")
    assert response.content_type == "application/x-amz-json-1.1"
    raw = orjson.loads(response.body)
    assert raw["Records"][0]["ApproximateArrivalTimestamp"] == pytest.approx(when.timestamp())
    parsed = _botocore_parse("kinesis", "GetRecords", 200, response.headers, response.body)
    parsed.pop("ResponseMetadata")
    assert parsed == output


def test_operation_without_output_is_an_empty_object() -> None:
    codec = _codec("sqs")
    op = codec.model.operation("DeleteMessage")
    assert op is not None
    assert codec.encode_output(op, {}, "r").body == b"{}"


def test_sqs_error_is_query_compatible() -> None:
    response = _codec("sqs").encode_error(QueueDoesNotExist(), "req-9")
    assert response.status == 400
    assert dict(response.headers) == {"x-amzn-RequestId": "req-9",
                                      "x-amzn-query-error": "AWS.SimpleQueueService.NonExistentQueue;Sender"}
    assert orjson.loads(response.body) == {"__type": "com.amazonaws.sqs#QueueDoesNotExist",
                                           "message": "The specified queue does not exist."}
    parsed = _botocore_parse("sqs", "GetQueueUrl", 400, response.headers, response.body)
    assert parsed["Error"]["Code"] == "AWS.SimpleQueueService.NonExistentQueue"
    assert parsed["Error"]["QueryErrorCode"] == "QueueDoesNotExist"
    assert parsed["Error"]["Type"] == "Sender"
    assert parsed["ResponseMetadata"]["RequestId"] == "req-9"


def test_server_fault_is_receiver() -> None:
    response = _codec("sqs").encode_error(InternalFailure(), "r")
    assert response.status == 500
    assert ("x-amzn-query-error", "InternalFailure;Receiver") in response.headers


def test_plain_json_service_error() -> None:
    error = BrokerError("Stream s under account 000000000000 not found.", code="ResourceNotFoundException")
    response = _codec("kinesis").encode_error(error, "r")
    assert response.status == 400
    assert not any(k == "x-amzn-query-error" for k, _ in response.headers)
    parsed = _botocore_parse("kinesis", "DescribeStream", 400, response.headers, response.body)
    assert parsed["Error"] == {"Code": "ResourceNotFoundException",
                               "Message": "Stream s under account 000000000000 not found."}


_TS_MODEL: dict[str, Any] = {
    "metadata": {"protocol": "json", "jsonVersion": "1.1", "apiVersion": "2020-01-01", "endpointPrefix": "fake",
                 "targetPrefix": "Fake", "serviceId": "Fake", "signatureVersion": "v4"},
    "operations": {"Do": {"name": "Do", "http": {"method": "POST", "requestUri": "/"},
                          "input": {"shape": "Times"}, "output": {"shape": "Times"}}},
    "shapes": {
        "Times": {"type": "structure", "members": {
            "Epoch": {"shape": "Timestamp"},
            "Iso": {"shape": "Timestamp", "timestampFormat": "iso8601"},
            "Http": {"shape": "Timestamp", "timestampFormat": "rfc822"},
            "IsoList": {"shape": "IsoList"}}},
        "IsoList": {"type": "list", "member": {"shape": "IsoTimestamp"}},
        "IsoTimestamp": {"type": "timestamp", "timestampFormat": "iso8601"},
        "Timestamp": {"type": "timestamp"},
    },
}


def test_timestamp_format_traits_are_honoured() -> None:
    codec = JsonCodec(ServiceModel.from_dict("fake", _TS_MODEL))
    op = codec.model.operation("Do")
    assert op is not None
    when = datetime(2026, 11, 28, 1, 2, 3, tzinfo=UTC)
    output = {"Epoch": when, "Iso": when, "Http": when, "IsoList": [when]}
    body = codec.encode_output(op, output, "r").body
    raw = orjson.loads(body)
    assert raw == {"Epoch": when.timestamp(), "Iso": "2026-11-28T01:02:03.000Z",
                   "Http": "Sat, 28 Nov 2026 01:02:03 GMT", "IsoList": ["2026-11-28T01:02:03.000Z"]}
    boto_op = BotoServiceModel(_TS_MODEL, service_name="fake").operation_model("Do")
    parsed = parsers.create_parser("json").parse({"status_code": 200, "headers": {}, "body": body},
                                                 boto_op.output_shape)
    parsed.pop("ResponseMetadata")
    assert parsed == output
    # inputs in any of the three formats decode to the same instant
    assert codec.decode_body(op, body) == output
