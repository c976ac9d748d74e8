"""The gateway end to end with real botocore clients (their requests are routed in memory to the gateway through
botocore's ``before-send`` hook, so the SDK's own serializers, parsers and error factory judge our bytes), plus raw
requests for everything an SDK would never send."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import botocore.session
import orjson
import pytest
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.client import BaseClient
from botocore.config import Config
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from broker.aws import gateway as gateway_module
from broker.aws.gateway import AwsGateway, credential_scope
from broker.aws.service_model import MODELS_DIR, ServiceModel, load_file, load_service_model
from broker.http.types import HttpRequest, HttpResponse
from broker.metrics import REGISTRY
from broker.model.errors import BrokerError, QueueDoesNotExist
from broker.service import RequestContext
from broker.sts import StsService

ACCOUNT = "123456789012"
ENDPOINT = "http://localhost:4566"


class FakeService:
    """Records every call; answers from a table keyed by operation (an exception is raised)."""

    def __init__(self, name: str, answers: dict[str, Any] | None = None) -> None:
        self.name = name
        self.answers = answers or {}
        self.calls: list[tuple[str, dict[str, Any], RequestContext]] = []

    async def handle(self, operation: str, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        self.calls.append((operation, params, ctx))
        answer = self.answers.get(operation, {})
        if isinstance(answer, BaseException):
            raise answer
        result: dict[str, Any] = answer
        return result


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, *args: Any, **kwargs: Any) -> Iterator[bytes]:
        yield self._body


def _to_http_request(request: AWSPreparedRequest) -> HttpRequest:
    url = urlsplit(request.url)
    headers = {k.lower(): (v.decode() if isinstance(v, bytes) else str(v)) for k, v in request.headers.items()}
    headers.setdefault("host", url.netloc)
    body = request.body or b""
    if not isinstance(body, bytes):
        body = body.encode() if isinstance(body, str) else body.read()
    return HttpRequest(request.method, url.path or "/", url.query, headers, body, client_host="127.0.0.1")


def _client(service: str, gateway: AwsGateway, region: str = "us-east-1") -> BaseClient:
    session = botocore.session.get_session()
    client = session.create_client(service, region_name=region, endpoint_url=ENDPOINT,
                                   aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret",
                                   config=Config(retries={"max_attempts": 1}))

    def send(request: AWSPreparedRequest, **kwargs: Any) -> AWSResponse:
        response = asyncio.run(gateway(_to_http_request(request)))
        headers = dict(response.headers)
        headers["Content-Type"] = response.content_type
        return AWSResponse(request.url, response.status, headers, _Raw(response.body))

    client.meta.events.register("before-send", send)
    return client


def _gateway(*services: Any, public_endpoint: str | None = None) -> AwsGateway:
    return AwsGateway({s.name: s for s in services}, ACCOUNT, "us-east-1", public_endpoint)


def _call(gateway: AwsGateway, body: bytes = b"", headers: dict[str, str] | None = None, path: str = "/",
          query: str = "", method: str = "POST", request_id: str = "") -> HttpResponse:
    request = HttpRequest(method, path, query, {"host": "localhost:4566", **(headers or {})}, body,
                          request_id=request_id)
    return asyncio.run(gateway(request))


def _json_headers(target: str) -> dict[str, str]:
    return {"x-amz-target": target, "content-type": "application/x-amz-json-1.0"}


FORM = {"content-type": "application/x-www-form-urlencoded; charset=utf-8"}


# -- SDK round trips --------------------------------------------------------------------------------------------


def test_sqs_json_through_botocore() -> None:
    md5_of_a = "0cc175b9c0f1b6a831c399e269772661"  # botocore checks it
    sqs = FakeService("sqs", {"SendMessageBatch": {
        "Successful": [{"Id": "a", "MessageId": "m-1", "MD5OfMessageBody": md5_of_a}],
        "Failed": [{"Id": "b", "SenderFault": True, "Code": "X", "Message": "no"}]}})
    client = _client("sqs", _gateway(sqs), region="eu-west-1")
    result = client.send_message_batch(QueueUrl=f"{ENDPOINT}/{ACCOUNT}/q", Entries=[
        {"Id": "a", "MessageBody": "a"}, {"Id": "b", "MessageBody": "b", "DelaySeconds": 3}])
    assert result["Successful"][0]["MessageId"] == "m-1"
    assert result["Failed"][0]["Code"] == "X"
    operation, params, ctx = sqs.calls[0]
    assert operation == "SendMessageBatch"
    assert params == {"QueueUrl": f"{ENDPOINT}/{ACCOUNT}/q",
                      "Entries": [{"Id": "a", "MessageBody": "a"}, {"Id": "b", "MessageBody": "b", "DelaySeconds": 3}]}
    assert (ctx.account_id, ctx.region, ctx.endpoint_url, ctx.protocol, ctx.access_key_id, ctx.client_host) == (
        ACCOUNT, "eu-west-1", ENDPOINT, "json", "AKIDEXAMPLE", "127.0.0.1")
    assert result["ResponseMetadata"]["RequestId"] == ctx.request_id


def test_queue_does_not_exist_is_what_sdks_expect() -> None:
    client = _client("sqs", _gateway(FakeService("sqs", {"GetQueueUrl": QueueDoesNotExist()})))
    with pytest.raises(client.exceptions.QueueDoesNotExist) as info:
        client.get_queue_url(QueueName="nope")
    error = info.value.response["Error"]
    assert error["Code"] == "AWS.SimpleQueueService.NonExistentQueue"
    assert error["Message"] == "The specified queue does not exist."
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_sts_get_caller_identity_through_botocore() -> None:
    client = _client("sts", _gateway(StsService(), FakeService("sqs")))
    identity = client.get_caller_identity()
    assert (identity["Account"], identity["UserId"], identity["Arn"]) == (ACCOUNT, ACCOUNT,
                                                                         f"arn:aws:iam::{ACCOUNT}:root")


def test_sts_unsupported_action_through_botocore() -> None:
    client = _client("sts", _gateway(StsService()))
    with pytest.raises(client.exceptions.ClientError) as info:
        client.get_session_token()
    assert info.value.response["Error"]["Code"] == "InvalidAction"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_kinesis_json_11_through_botocore() -> None:
    not_found = BrokerError(f"Stream gone under account {ACCOUNT} not found.", code="ResourceNotFoundException")
    kinesis = FakeService("kinesis", {
        "PutRecords": {"FailedRecordCount": 0, "Records": [{"SequenceNumber": "1", "ShardId": "shardId-000000000000"}]},
        "DescribeStreamSummary": not_found})
    client = _client("kinesis", _gateway(kinesis, FakeService("sqs")))
    result = client.put_records(StreamName="s", Records=[{"Data": b"\x00\xff", "PartitionKey": "k"}])
    assert result["Records"][0]["ShardId"] == "shardId-000000000000"
    assert kinesis.calls[0][1] == {"StreamName": "s", "Records": [{"Data": b"\x00\xff", "PartitionKey": "k"}]}
    with pytest.raises(client.exceptions.ResourceNotFoundException) as info:
        client.describe_stream_summary(StreamName="gone")
    assert info.value.response["Error"] == {"Code": "ResourceNotFoundException",
                                            "Message": f"Stream gone under account {ACCOUNT} not found."}


# -- routing ----------------------------------------------------------------------------------------------------


def test_unsigned_query_request_picks_the_service_by_version_or_action() -> None:
    gateway = _gateway(StsService(), FakeService("sqs"))
    for body in (b"Action=GetCallerIdentity&Version=2011-06-15", b"Action=GetCallerIdentity"):
        response = _call(gateway, body, FORM)
        assert response.status == 200, response.body
        assert f"<Account>{ACCOUNT}</Account>".encode() in response.body
    assert _call(gateway, b"", query="Action=GetCallerIdentity&Version=2011-06-15", method="GET").status == 200


def test_query_service_from_the_credential_scope() -> None:
    sns = FakeService("sns", {"Publish": {"MessageId": "m"}})
    gateway = _gateway(sns)
    auth = ("AWS4-HMAC-SHA256 Credential=AKID2/20261128/ap-south-1/sns/aws4_request, "
            "SignedHeaders=host;x-amz-date, Signature=abc")
    response = _call(gateway, b"Action=Publish&Version=2010-03-31&TopicArn=t&Message=hi",
                     {**FORM, "authorization": auth})
    assert response.status == 200
    assert b"<PublishResult><MessageId>m</MessageId></PublishResult>" in response.body
    _, params, ctx = sns.calls[0]
    assert params == {"TopicArn": "t", "Message": "hi"}
    assert (ctx.region, ctx.access_key_id, ctx.protocol) == ("ap-south-1", "AKID2", "query")


def test_credential_scope_parsing() -> None:
    scope = credential_scope({"authorization": "AWS4-HMAC-SHA256 Credential=AK/20260101/us-west-2/sqs/aws4_request,"
                                               " SignedHeaders=host, Signature=x"})
    assert scope is not None and (scope.access_key_id, scope.region, scope.service) == ("AK", "us-west-2", "sqs")
    presigned = credential_scope({}, {"X-Amz-Credential": "AK/20260101/eu-west-1/sts/aws4_request"})
    assert presigned is not None and presigned.service == "sts"
    assert credential_scope({"authorization": "Bearer x"}) is None
    assert credential_scope({"authorization": "AWS4-HMAC-SHA256 Credential=short/x"}) is None


def test_public_endpoint_and_request_id() -> None:
    sqs = FakeService("sqs")
    gateway = _gateway(sqs, public_endpoint="https://mq.example.com/")
    response = _call(gateway, b"{}", _json_headers("AmazonSQS.ListQueues"), request_id="rid-7")
    assert response.status == 200
    assert ("x-amzn-RequestId", "rid-7") in response.headers
    assert sqs.calls[0][2].endpoint_url == "https://mq.example.com"
    assert sqs.calls[0][2].request_id == "rid-7"
    generated = _call(gateway, b"{}", _json_headers("AmazonSQS.ListQueues"))
    rid = dict(generated.headers)["x-amzn-RequestId"]
    assert len(rid) == 36 and rid.count("-") == 4


def test_query_request_posted_to_a_queue_url_gets_its_queue_url(monkeypatch: pytest.MonkeyPatch) -> None:
    # SQS over Query needs the frozen Query model (not committed yet): stand in a Query variant of the JSON model.
    raw = dict(load_file(MODELS_DIR / "sqs-2012-11-05.json"))
    raw["metadata"] = {**raw["metadata"], "protocol": "query",
                       "xmlNamespace": "http://queue.amazonaws.com/doc/2012-11-05/"}
    query_model = ServiceModel.from_dict("sqs", raw)
    monkeypatch.setattr(gateway_module, "has_model", lambda service, protocol: True)
    monkeypatch.setattr(gateway_module, "load_service_model",
                        lambda service, protocol: query_model if protocol == "query" else
                        load_service_model(service, protocol))
    sqs = FakeService("sqs", {"SendMessage": {"MessageId": "m", "MD5OfMessageBody": "x"}})
    gateway = _gateway(sqs)
    response = _call(gateway, b"Action=SendMessage&Version=2012-11-05&MessageBody=hi", FORM,
                     path=f"/{ACCOUNT}/orders")
    assert response.status == 200, response.body
    assert sqs.calls[0][1] == {"QueueUrl": f"http://localhost:4566/{ACCOUNT}/orders", "MessageBody": "hi"}
    # an explicit QueueUrl wins
    _call(gateway, b"Action=SendMessage&Version=2012-11-05&MessageBody=hi&QueueUrl=other", FORM,
          path=f"/{ACCOUNT}/orders")
    assert sqs.calls[1][1]["QueueUrl"] == "other"


# -- client mistakes are 4xx in the client's protocol ------------------------------------------------------------


def _json_error(response: HttpResponse) -> tuple[int, str, str]:
    body = orjson.loads(response.body)
    return response.status, body["__type"], dict(response.headers).get("x-amzn-query-error", "")


def test_unknown_target_and_operation() -> None:
    gateway = _gateway(FakeService("sqs"))
    assert _json_error(_call(gateway, b"{}", _json_headers("DynamoDB_20120810.GetItem")))[:2] == (
        400, "UnknownOperationException")
    assert _json_error(_call(gateway, b"{}", _json_headers("AmazonSQS.Frobnicate"))) == (
        400, "com.amazonaws.sqs#UnknownOperationException", "UnknownOperationException;Sender")
    assert _json_error(_call(gateway, b"{}", {"content-type": "application/x-amz-json-1.0"}))[:2] == (
        400, "UnknownOperationException")


def test_malformed_json_and_missing_parameters() -> None:
    gateway = _gateway(FakeService("sqs"))
    assert _json_error(_call(gateway, b"{nope", _json_headers("AmazonSQS.SendMessage"))) == (
        400, "com.amazonaws.sqs#SerializationException", "SerializationException;Sender")
    status, code, header = _json_error(_call(gateway, b'{"QueueUrl": "u"}', _json_headers("AmazonSQS.SendMessage")))
    assert (status, code, header) == (400, "com.amazonaws.sqs#MissingParameter", "MissingParameter;Sender")


def test_cbor_is_refused_cleanly_until_a_codec_exists() -> None:
    response = _call(_gateway(FakeService("sqs")), b"\xa0", {"x-amz-target": "AmazonSQS.ListQueues",
                                                              "content-type": "application/x-amz-cbor-1.1"})
    assert response.status == 400


def test_query_mistakes() -> None:
    gateway = _gateway(StsService(), FakeService("sqs"))
    cases = [
        (b"Action=AssumeRoot&Version=2011-06-15&TargetPrincipal=1&TaskPolicyArn.arn=" + b"a" * 20, "InvalidAction"),
        (b"Action=Frobnicate&Version=2011-06-15", "InvalidAction"),
        (b"Version=2011-06-15", "MissingAction"),
        (b"", "MissingAction"),
        (b"Action=Publish&Version=2010-03-31&TopicArn=t&Message=m", "InvalidAction"),  # sns is not served
        (b"Action=SendMessage&Version=2012-11-05&QueueUrl=u", "MissingParameter"),  # the frozen SQS Query model
        (b"Action=GetCallerIdentity&Version=2011-06-15&x=%ff", "MalformedQueryString"),
    ]
    for body, code in cases:
        response = _call(gateway, body, FORM)
        assert response.status == 400, (body, response.body)
        assert response.content_type == "text/xml"
        assert f"<Code>{code}</Code>".encode() in response.body, (body, response.body)


def test_scope_naming_an_unserved_service() -> None:
    auth = "AWS4-HMAC-SHA256 Credential=AK/20261128/us-east-1/sns/aws4_request, SignedHeaders=host, Signature=x"
    response = _call(_gateway(StsService()), b"Action=GetCallerIdentity", {**FORM, "authorization": auth})
    assert response.status == 400
    assert b"<Code>InvalidAction</Code>" in response.body and b"sns" in response.body


# -- server faults ------------------------------------------------------------------------------------------------


def test_unexpected_exception_is_a_logged_500_with_the_request_id(caplog: pytest.LogCaptureFixture) -> None:
    gateway = _gateway(FakeService("sqs", {"ListQueues": RuntimeError("boom")}))
    with caplog.at_level(logging.ERROR, logger="broker.aws.gateway"):
        response = _call(gateway, b"{}", _json_headers("AmazonSQS.ListQueues"), request_id="rid-500")
    assert _json_error(response) == (500, "com.amazonaws.sqs#InternalFailure", "InternalFailure;Receiver")
    assert b"rid-500" in response.body
    assert any(r.exc_info and "rid-500" in r.getMessage() for r in caplog.records)


def test_output_the_codec_cannot_encode_is_a_500() -> None:
    gateway = _gateway(FakeService("sqs", {"ListQueues": {"QueueUrls": [object()]}}))
    response = _call(gateway, b"{}", _json_headers("AmazonSQS.ListQueues"))
    assert _json_error(response)[:2] == (500, "com.amazonaws.sqs#InternalFailure")


def test_metrics_are_observed_once_per_request() -> None:
    gateway = _gateway(FakeService("sqs", {"GetQueueUrl": QueueDoesNotExist()}))

    def count(action: str, status: str) -> float:
        return REGISTRY.get_sample_value("raftmq_requests_total",
                                         {"service": "sqs", "action": action, "status": status}) or 0.0

    before_ok, before_err = count("ListQueues", "200"), count("GetQueueUrl", "400")
    _call(gateway, b"{}", _json_headers("AmazonSQS.ListQueues"))
    _call(gateway, b'{"QueueName": "x"}', _json_headers("AmazonSQS.GetQueueUrl"))
    assert count("ListQueues", "200") == before_ok + 1
    assert count("GetQueueUrl", "400") == before_err + 1
    unknown = REGISTRY.get_sample_value("raftmq_requests_total",
                                        {"service": "unknown", "action": "unknown", "status": "400"}) or 0.0
    _call(gateway, b"{}", _json_headers("Nope.Nope"))
    assert REGISTRY.get_sample_value("raftmq_requests_total",
                                     {"service": "unknown", "action": "unknown", "status": "400"}) == unknown + 1


# -- fuzzing: no client input is a 500 ------------------------------------------------------------------------------

_INTS = st.integers(min_value=-(2**63), max_value=2**64 - 1)  # what orjson can write
_JSON = st.recursive(st.none() | st.booleans() | _INTS | st.floats(allow_nan=False) | st.text(max_size=8),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                                  max_size=3), max_leaves=12)
_SQS_MEMBERS = st.sampled_from(["QueueUrl", "QueueName", "MessageBody", "Entries", "Id", "DelaySeconds",
                                "MessageAttributes", "DataType", "BinaryValue", "StringValue", "Attributes",
                                "AttributeNames", "MaxNumberOfMessages", "ReceiptHandle", "Tags", "TagKeys"])
_SQS_BODY = st.recursive(st.none() | st.booleans() | _INTS | st.text(max_size=8),
                         lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_SQS_MEMBERS, inner,
                                                                                      max_size=4), max_leaves=16)
_SQS_OPS = [*sorted(load_service_model("sqs", "json").operations), "Nope", ""]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(op=st.sampled_from(_SQS_OPS), body=_SQS_BODY | _JSON, raw=st.none() | st.binary(max_size=40))
def test_no_json_input_is_a_server_error(op: str, body: Any, raw: bytes | None) -> None:
    gateway = _gateway(FakeService("sqs"))
    payload = raw if raw is not None else orjson.dumps(body)
    response = _call(gateway, payload, _json_headers(f"AmazonSQS.{op}"))
    assert response.status < 500, response.body


_FORM_KEYS = st.sampled_from(["Action", "Version", "RoleArn", "RoleSessionName", "DurationSeconds", "PolicyArns",
                              "PolicyArns.member.1.arn", "PolicyArns.member", "Tags.member.1.Key",
                              "Tags.member.x.Value", "Tags", "Tags.member.1", "SerialNumber", "X-Amz-Credential",
                              "ProvidedContexts.member.1.ContextAssertion"])
_FORM_VALUES = st.sampled_from(["GetCallerIdentity", "AssumeRole", "2011-06-15", "", "x", "12", "-1", "%zz",
                                "a/b/c/d/e", "AK/20260101/us-east-1/sts/aws4_request"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(form=st.dictionaries(_FORM_KEYS, _FORM_VALUES, max_size=8), raw=st.none() | st.binary(max_size=40))
def test_no_form_input_is_a_server_error(form: dict[str, str], raw: bytes | None) -> None:
    gateway = _gateway(FakeService("sts", {"AssumeRole": {}, "GetCallerIdentity": {}}))
    body = raw if raw is not None else "&".join(f"{k}={v}" for k, v in form.items()).encode()
    response = _call(gateway, body, FORM)
    assert response.status < 500, response.body
