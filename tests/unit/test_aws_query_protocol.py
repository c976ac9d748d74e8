"""Query/XML codec against botocore: the form botocore puts on the wire decodes to the params it was given, our XML
parses (with botocore's Query parser) back to the output, errors come out with the model's codes and statuses."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import botocore.session
import pytest
from botocore import parsers, serialize
from botocore.awsrequest import create_request_object, prepare_request_dict
from botocore.model import ServiceModel as BotoServiceModel
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.aws.query_protocol import QueryCodec, form_tree, parse_form
from broker.aws.service_model import ServiceModel, load_service_model
from broker.model.errors import BrokerError, InvalidParameterValue

_SESSION = botocore.session.get_session()


def _codec(service: str) -> QueryCodec:
    return QueryCodec(load_service_model(service, "query"))


def _wire_body(service: str, operation: str, params: dict[str, Any]) -> bytes:
    """The exact form body botocore sends (serializer + request preparation)."""
    op = _SESSION.get_service_model(service).operation_model(operation)
    request = serialize.create_serializer("query").serialize_to_request(params, op)
    prepare_request_dict(request, endpoint_url="http://localhost:4566")
    body = create_request_object(request).prepare().body
    return body if isinstance(body, bytes) else body.encode()


def _decode(service: str, operation: str, body: bytes, query: str = "") -> dict[str, Any]:
    codec = _codec(service)
    op = codec.model.operation(operation)
    assert op is not None
    return codec.decode_form(op, parse_form(body, query))


def _botocore_parse(service: str, operation: str, status: int, body: bytes) -> dict[str, Any]:
    op = _SESSION.get_service_model(service).operation_model(operation)
    parsed: dict[str, Any] = parsers.create_parser("query").parse(
        {"status_code": status, "headers": {}, "body": body}, op.output_shape)
    return parsed


@pytest.mark.parametrize(("service", "operation", "params"), [
    ("sts", "GetCallerIdentity", {}),
    ("sts", "AssumeRole", {"RoleArn": "arn:aws:iam::000000000000:role/r", "RoleSessionName": "session",
                           "DurationSeconds": 900, "PolicyArns": [{"arn": "arn:aws:iam::aws:policy/A"},
                                                                  {"arn": "arn:aws:iam::aws:policy/B"}],
                           "Tags": [{"Key": "k", "Value": "v"}], "TransitiveTagKeys": ["k"]}),
    ("sns", "Publish", {"TopicArn": "arn:t", "Message": "a & b <c> +%=\n\r\tü", "Subject": "s",
                        "MessageAttributes": {"s": {"DataType": "String", "StringValue": "v"},
                                              "b": {"DataType": "Binary", "BinaryValue": b"\x00\xff"}}}),
    ("sns", "CreateTopic", {"Name": "t", "Attributes": {"FifoTopic": "true", "DisplayName": "d"},
                            "Tags": [{"Key": "k1", "Value": "v1"}, {"Key": "k2", "Value": ""}]}),
    ("sns", "PublishBatch", {"TopicArn": "arn:t", "PublishBatchRequestEntries": [
        {"Id": f"e{i}", "Message": f"m{i}", "MessageAttributes": {"n": {"DataType": "Number", "StringValue": "1"}}}
        for i in range(12)]}),
    ("sns", "TagResource", {"ResourceArn": "arn:t", "Tags": []}),
    ("sns", "Subscribe", {"TopicArn": "arn:t", "Protocol": "sqs", "Endpoint": "arn:q", "ReturnSubscriptionArn": True,
                          "Attributes": {"RawMessageDelivery": "true"}}),
])
def test_decodes_what_botocore_sends(service: str, operation: str, params: dict[str, Any]) -> None:
    assert _decode(service, operation, _wire_body(service, operation, params)) == params


def test_query_string_and_body_are_merged() -> None:
    params = _decode("sns", "Publish", b"Message=hi", "Action=Publish&TopicArn=arn%3At")
    assert params == {"TopicArn": "arn:t", "Message": "hi"}


def test_form_tree() -> None:
    tree = form_tree({"A": "", "A.member.1": "x", "B.1.Name": "n", "B.1.Value": "v", "C": "c"})
    assert tree == {"A": {"": "", "member": {"1": "x"}}, "B": {"1": {"Name": "n", "Value": "v"}}, "C": "c"}


def test_list_indices_are_ordered_numerically() -> None:
    body = b"TopicArn=t&Tags.member.10.Key=j&Tags.member.10.Value=&" + b"&".join(
        f"Tags.member.{i}.Key=k{i}&Tags.member.{i}.Value=".encode() for i in range(1, 10))
    params = _decode("sns", "TagResource", body + b"&ResourceArn=r")
    assert [t["Key"] for t in params["Tags"]] == [f"k{i}" for i in range(1, 10)] + ["j"]


@pytest.mark.parametrize(("service", "operation", "body", "code"), [
    ("sns", "Publish", b"TopicArn=t", "MissingParameter"),
    ("sns", "Publish", b"Message=m&MessageAttributes.entry.1.Name=a", "MissingParameter"),
    ("sns", "TagResource", b"ResourceArn=r&Tags.member.x.Key=k", "InvalidParameterValue"),
    ("sns", "TagResource", b"ResourceArn=r&Tags=oops", "InvalidParameterValue"),
    ("sts", "AssumeRole", b"RoleArn=a&RoleSessionName=s&DurationSeconds=ten", "InvalidParameterValue"),
    ("sns", "Subscribe", b"TopicArn=t&Protocol=sqs&ReturnSubscriptionArn=maybe", "InvalidParameterValue"),
    ("sns", "Publish", b"Message=m&MessageAttributes.entry.1.Name=a&MessageAttributes.entry.1.Value.DataType=Binary"
                       b"&MessageAttributes.entry.1.Value.BinaryValue=%%%", "InvalidParameterValue"),
    ("sns", "Publish", b"Message=%ff%fe", "MalformedQueryString"),
])
def test_input_errors(service: str, operation: str, body: bytes, code: str) -> None:
    with pytest.raises(BrokerError) as info:
        _decode(service, operation, body)
    assert (info.value.code, info.value.status) == (code, 400)


def test_missing_parameter_names_the_wire_parameter() -> None:
    with pytest.raises(BrokerError) as info:
        _decode("sns", "Publish", b"Message=m&MessageAttributes.entry.1.Name=a")
    assert info.value.message == "The request must contain the parameter MessageAttributes.entry.1.Value."


@pytest.mark.parametrize(("service", "operation", "output"), [
    ("sts", "GetCallerIdentity", {"UserId": "000000000000", "Account": "000000000000",
                                  "Arn": "arn:aws:iam::000000000000:root"}),
    ("sts", "AssumeRole", {"Credentials": {"AccessKeyId": "AK", "SecretAccessKey": "s", "SessionToken": "t",
                                           "Expiration": datetime(2026, 11, 28, 12, 30, tzinfo=UTC)},
                           "AssumedRoleUser": {"AssumedRoleId": "id", "Arn": "arn"}, "PackedPolicySize": 6}),
    ("sns", "ListTopics", {"Topics": [{"TopicArn": "a"}, {"TopicArn": "b&<>"}], "NextToken": "n"}),
    ("sns", "ListTopics", {"Topics": []}),
    ("sns", "GetTopicAttributes", {"Attributes": {"A": "1", "Policy": '{"x": "<y>"}'}}),
    ("sns", "PublishBatch", {"Successful": [{"Id": "1", "MessageId": "m"}],
                             "Failed": [{"Id": "2", "Code": "c", "SenderFault": True, "Message": "bad"}]}),
    ("sns", "DeleteTopic", {}),
])
def test_output_parses_in_botocore(service: str, operation: str, output: dict[str, Any]) -> None:
    codec = _codec(service)
    op = codec.model.operation(operation)
    assert op is not None
    response = codec.encode_output(op, output, "req-1")
    assert (response.status, response.content_type) == (200, "text/xml")
    assert ("x-amzn-RequestId", "req-1") in response.headers
    parsed = _botocore_parse(service, operation, 200, response.body)
    assert parsed.pop("ResponseMetadata")["RequestId"] == "req-1"
    assert parsed == output


def test_response_envelope() -> None:
    codec = _codec("sts")
    op = codec.model.operation("GetCallerIdentity")
    assert op is not None
    body = codec.encode_output(op, {"Account": "1"}, "r").body.decode()
    assert body == ('<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
                    "<GetCallerIdentityResult><Account>1</Account></GetCallerIdentityResult>"
                    "<ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></GetCallerIdentityResponse>")


def test_modelled_error_uses_the_models_code_and_status() -> None:
    response = _codec("sns").encode_error(BrokerError("Topic does not exist", code="NotFoundException"), "req-2")
    assert response.status == 404
    parsed = _botocore_parse("sns", "Publish", 404, response.body)
    assert parsed["Error"] == {"Type": "Sender", "Code": "NotFound", "Message": "Topic does not exist"}
    assert parsed["ResponseMetadata"]["RequestId"] == "req-2"


def test_unmodelled_error() -> None:
    response = _codec("sts").encode_error(InvalidParameterValue("bad <value> & more"), "r")
    assert response.status == 400
    assert b"<Type>Sender</Type><Code>InvalidParameterValue</Code><Message>bad &lt;value&gt; &amp; more</Message>" \
        in response.body
    assert response.body.startswith(b'<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">')
    assert _botocore_parse("sts", "GetCallerIdentity", 400, response.body)["Error"]["Message"] == \
        "bad <value> & more"


_XML_TEXT = st.text(st.characters(codec="utf-8",  # utf-8 excludes surrogates
                                  exclude_characters="".join(chr(c) for c in range(32) if c not in (9, 10, 13))
                                  + "\ufffe\uffff"))


@settings(max_examples=150, deadline=None)
@given(message_id=_XML_TEXT, sequence=_XML_TEXT)
def test_any_xml_text_round_trips(message_id: str, sequence: str) -> None:
    codec = _codec("sns")
    op = codec.model.operation("Publish")
    assert op is not None
    output = {"MessageId": message_id, "SequenceNumber": sequence}
    parsed = _botocore_parse("sns", "Publish", 200, codec.encode_output(op, output, "r").body)
    parsed.pop("ResponseMetadata")
    # botocore drops empty elements' text to "" and keeps everything else verbatim
    assert parsed == output


@settings(max_examples=150, deadline=None)
@given(message=st.text(), subject=st.text(min_size=1))
def test_any_form_text_round_trips(message: str, subject: str) -> None:
    params = {"Message": message, "Subject": subject}
    assert _decode("sns", "Publish", _wire_body("sns", "Publish", params)) == params


# A synthetic Query model with the traits the old SQS Query model uses and SNS/STS do not (flattened lists and maps
# renamed by locationName, non-flattened maps, every scalar type): botocore's serializer and parser built from the
# same dict are the oracle.
_SYNTHETIC: dict[str, Any] = {
    "metadata": {"protocol": "query", "apiVersion": "2012-11-05", "endpointPrefix": "fake",
                 "xmlNamespace": "http://queue.amazonaws.com/doc/2012-11-05/", "signatureVersion": "v4",
                 "serviceId": "Fake"},
    "operations": {"Do": {"name": "Do", "http": {"method": "POST", "requestUri": "/"},
                          "input": {"shape": "DoRequest"},
                          "output": {"shape": "DoResult", "resultWrapper": "DoResult"}}},
    "shapes": {
        "DoRequest": {"type": "structure", "required": ["QueueUrl"], "members": {
            "QueueUrl": {"shape": "String"},
            "Attributes": {"shape": "AttributeMap", "locationName": "Attribute"},
            "AttributeNames": {"shape": "NameList"},
            "Entries": {"shape": "EntryList"},
            "Tags": {"shape": "TagMap", "locationName": "Tag"},
            "Count": {"shape": "Integer"}, "Flag": {"shape": "Boolean"}, "When": {"shape": "Timestamp"},
            "Data": {"shape": "Blob"}, "Ratio": {"shape": "Double"}, "Big": {"shape": "Long"}}},
        "DoResult": {"type": "structure", "members": {
            "Messages": {"shape": "MessageList"},
            "Attributes": {"shape": "AttributeMap", "locationName": "Attribute"},
            "Tags": {"shape": "TagMap", "locationName": "Tag"},
            "Names": {"shape": "PlainList"},
            "When": {"shape": "Timestamp"}, "Epoch": {"shape": "Timestamp", "timestampFormat": "unixTimestamp"},
            "Flag": {"shape": "Boolean"}, "Count": {"shape": "Integer"},
            "Data": {"shape": "Blob"}, "Ratio": {"shape": "Double"}}},
        "AttributeMap": {"type": "map", "key": {"shape": "String", "locationName": "Name"},
                         "value": {"shape": "String", "locationName": "Value"}, "flattened": True},
        "TagMap": {"type": "map", "key": {"shape": "String", "locationName": "Key"},
                   "value": {"shape": "String", "locationName": "Value"}},
        "NameList": {"type": "list", "member": {"shape": "String", "locationName": "AttributeName"},
                     "flattened": True},
        "EntryList": {"type": "list", "member": {"shape": "Entry", "locationName": "Entry"}, "flattened": True},
        "Entry": {"type": "structure", "required": ["Id"], "members": {
            "Id": {"shape": "String"}, "Attributes": {"shape": "AttributeMap", "locationName": "Attribute"}}},
        "MessageList": {"type": "list", "member": {"shape": "Entry", "locationName": "Message"}, "flattened": True},
        "PlainList": {"type": "list", "member": {"shape": "String", "locationName": "item"}},
        "String": {"type": "string"}, "Integer": {"type": "integer"}, "Long": {"type": "long"},
        "Boolean": {"type": "boolean"}, "Timestamp": {"type": "timestamp"}, "Blob": {"type": "blob"},
        "Double": {"type": "double"},
    },
}


def _synthetic() -> tuple[QueryCodec, Any]:
    return (QueryCodec(ServiceModel.from_dict("fake", _SYNTHETIC)),
            BotoServiceModel(_SYNTHETIC, service_name="fake").operation_model("Do"))


def test_synthetic_model_request_round_trip() -> None:
    codec, boto_op = _synthetic()
    params = {"QueueUrl": "http://h/1/q", "Attributes": {"VisibilityTimeout": "5", "Policy": "{}"},
              "AttributeNames": ["All", "Policy"], "Entries": [{"Id": "a", "Attributes": {"x": "1"}}, {"Id": "b"}],
              "Tags": {"team": "t", "empty": ""}, "Count": -3, "Flag": False, "Big": 2**40, "Ratio": 0.25,
              "When": datetime(2026, 11, 28, 1, 2, 3, tzinfo=UTC), "Data": b"\x00\x01binary"}
    request = serialize.create_serializer("query").serialize_to_request(params, boto_op)
    prepare_request_dict(request, endpoint_url="http://localhost:4566")
    body = create_request_object(request).prepare().body
    form = parse_form(body if isinstance(body, bytes) else body.encode())
    assert "Attribute.1.Name" in form and "AttributeName.2" in form and "Entry.1.Attribute.1.Value" in form
    assert "Tag.entry.1.Key" in form
    op = codec.model.operation("Do")
    assert op is not None
    assert codec.decode_form(op, form) == params


def test_synthetic_model_response_round_trip() -> None:
    codec, boto_op = _synthetic()
    output = {"Messages": [{"Id": "m1", "Attributes": {"SentTimestamp": "1"}}, {"Id": "m2"}],
              "Attributes": {"A": "1"}, "Tags": {"k": "v"}, "Names": ["x", "y"], "Flag": True, "Count": 7,
              "When": datetime(2026, 11, 28, 1, 2, 3, 456000, tzinfo=UTC), "Data": b"\xff", "Ratio": 1.5,
              "Epoch": datetime(2026, 11, 28, 1, 2, 3, tzinfo=UTC)}
    op = codec.model.operation("Do")
    assert op is not None
    response = codec.encode_output(op, output, "r")
    assert b"<Message><Id>m1</Id><Attribute><Name>SentTimestamp</Name><Value>1</Value></Attribute></Message>" \
        in response.body
    assert b"<Tag><entry><Key>k</Key><Value>v</Value></entry></Tag>" in response.body
    assert b"<When>2026-11-28T01:02:03.456Z</When>" in response.body
    assert b"<Epoch>1795827723.0</Epoch>" in response.body
    parsed = parsers.create_parser("query").parse({"status_code": 200, "headers": {}, "body": response.body},
                                                  boto_op.output_shape)
    parsed.pop("ResponseMetadata")
    assert parsed == output
