"""The gateway with a verifying authenticator: signed requests reach the service as their caller; Hypothesis throws
malformed signatures, dates and scopes at every protocol and every answer is a well-formed AWS error that never
reaches a service."""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import cbor2
import orjson
import pytest
from botocore import auth as botocore_auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from broker.auth.authenticator import Authenticator
from broker.auth.credentials import parse_credentials
from broker.aws.gateway import AwsGateway
from broker.http.types import HttpRequest, HttpResponse
from broker.service import RequestContext

KEY, SECRET = "AKIAALICE0000000001", "alice-secret"
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
STORE = parse_credentials({"accounts": [{"id": "111111111111", "users": [{"name": "alice", "policies": [
    {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}], "keys": [{"id": KEY, "secret": SECRET}]}]}]})


class RecordingService:
    def __init__(self, name: str) -> None:
        self.name = name
        self.calls: list[tuple[str, RequestContext]] = []

    async def handle(self, operation: str, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        self.calls.append((operation, ctx))
        return {}


SERVICES = {name: RecordingService(name) for name in ("sqs", "sns", "kinesis", "sts")}
GATEWAY = AwsGateway(SERVICES, "000000000000", "us-east-1", authenticator=Authenticator(STORE, clock=lambda: NOW))

# (service, headers, body) of one harmless request per protocol
PROTOCOLS: dict[str, tuple[str, dict[str, str], bytes]] = {
    "sqs-json": ("sqs", {"x-amz-target": "AmazonSQS.ListQueues", "content-type": "application/x-amz-json-1.0"}, b"{}"),
    "sqs-query": ("sqs", {"content-type": "application/x-www-form-urlencoded"},
                  b"Action=ListQueues&Version=2012-11-05"),
    "sns-query": ("sns", {"content-type": "application/x-www-form-urlencoded"},
                  b"Action=ListTopics&Version=2010-03-31"),
    "sts-query": ("sts", {"content-type": "application/x-www-form-urlencoded"},
                  b"Action=GetCallerIdentity&Version=2011-06-15"),
    "kinesis-json": ("kinesis", {"x-amz-target": "Kinesis_20131202.ListStreams",
                                 "content-type": "application/x-amz-json-1.1"}, b"{}"),
    "kinesis-cbor": ("kinesis", {"x-amz-target": "Kinesis_20131202.ListStreams",
                                 "content-type": "application/x-amz-cbor-1.1"}, cbor2.dumps({})),
}
AUTH_CODES = {"MissingAuthenticationToken", "InvalidClientTokenId", "SignatureDoesNotMatch", "IncompleteSignature",
              "RequestExpired", "InvalidAction", "MalformedQueryString", "MissingAuthenticationTokenException",
              "UnrecognizedClientException",
              "InvalidSignatureException", "IncompleteSignatureException"}


def error_code(response: HttpResponse) -> str:
    """The AWS error code of a response in whichever format it came; fails if it is not a well-formed error."""
    if response.content_type.startswith("text/xml"):
        root = ET.fromstring(response.body)
        tags = {element.tag.rsplit("}", 1)[-1]: element.text for element in root.iter()}
        assert root.tag.endswith("ErrorResponse") and tags.get("RequestId") and tags.get("Message") is not None
        return str(tags["Code"])
    body = cbor2.loads(response.body) if "cbor" in response.content_type else orjson.loads(response.body)
    assert isinstance(body.get("message"), str)
    return str(body["__type"]).rsplit("#", 1)[-1]


def signed(protocol: str, *, secret: str = SECRET) -> HttpRequest:
    service, headers, body = PROTOCOLS[protocol]
    request = AWSRequest(method="POST", url="http://localhost:4566/", data=body, headers=headers)
    original = botocore_auth.get_current_datetime
    botocore_auth.get_current_datetime = lambda: NOW.replace(tzinfo=None)
    try:
        botocore_auth.SigV4Auth(Credentials(KEY, secret), service, "eu-west-1").add_auth(request)
    finally:
        botocore_auth.get_current_datetime = original
    prepared = request.prepare()
    wire = {k.lower(): v for k, v in prepared.headers.items()}
    wire["host"] = urlsplit(prepared.url).netloc
    return HttpRequest("POST", "/", "", wire, body, client_host="127.0.0.1")


def run(request: HttpRequest) -> HttpResponse:
    return asyncio.run(GATEWAY(request))


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_signed_request_reaches_the_service_as_its_caller(protocol: str) -> None:
    service = SERVICES[PROTOCOLS[protocol][0]]
    before = len(service.calls)
    response = run(signed(protocol))
    assert response.status == 200, response.body
    assert len(service.calls) == before + 1
    ctx = service.calls[-1][1]
    assert (ctx.account_id, ctx.principal_arn, ctx.access_key_id, ctx.region) == (
        "111111111111", "arn:aws:iam::111111111111:user/alice", KEY, "eu-west-1")


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_wrong_secret_is_an_error_in_the_protocol_spoken(protocol: str) -> None:
    response = run(signed(protocol, secret="wrong"))
    expected = "InvalidSignatureException" if protocol.startswith("kinesis") else "SignatureDoesNotMatch"
    assert (error_code(response), response.status) == (expected, 400 if protocol.startswith("kinesis") else 403)


_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60)
_credential = st.one_of(_text, st.builds(
    lambda key, date, region, service, term: f"{key}/{date}/{region}/{service}/{term}",
    st.sampled_from([KEY, "AKIANOBODY000000000", ""]), st.sampled_from(["20261128", "20261127", "x"]),
    st.sampled_from(["eu-west-1", "", "EU"]), st.sampled_from(["sqs", "sns", "kinesis", "sts", "s3", ""]),
    st.sampled_from(["aws4_request", "aws3"])))
_authorization = st.one_of(
    st.none(), _text,
    st.builds(lambda alg, cred, signed_headers, sig: f"{alg} Credential={cred}, SignedHeaders={signed_headers}, "
              f"Signature={sig}", st.sampled_from(["AWS4-HMAC-SHA256", "AWS4-HMAC-SHA512", ""]), _credential,
              st.sampled_from(["host;x-amz-date", "x-amz-date", "", "host"]),
              st.one_of(_text, st.text("0123456789abcdef", min_size=64, max_size=64))))
_date = st.one_of(st.none(), _text, st.sampled_from(["20261128T120000Z", "20261128T100000Z", "20261128T999999Z"]))
_query = st.one_of(st.just(""), st.builds(
    lambda cred, date, expires, sig: f"X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={cred}&X-Amz-Date={date}"
                                     f"&X-Amz-Expires={expires}&X-Amz-SignedHeaders=host&X-Amz-Signature={sig}",
    _credential, _text, st.sampled_from(["60", "-1", "x", "604801"]), _text))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(protocol=st.sampled_from(list(PROTOCOLS)), authorization=_authorization, amz_date=_date, query=_query,
       content_sha=st.one_of(st.none(), st.sampled_from(["UNSIGNED-PAYLOAD", "0" * 64]), _text))
def test_malformed_signatures_get_well_formed_errors_and_never_reach_a_service(
        protocol: str, authorization: str | None, amz_date: str | None, query: str, content_sha: str | None) -> None:
    _, headers, body = PROTOCOLS[protocol]
    wire = {**headers, "host": "localhost:4566"}
    for name, value in (("authorization", authorization), ("x-amz-date", amz_date),
                        ("x-amz-content-sha256", content_sha)):
        if value is not None:
            wire[name] = value
    calls = sum(len(s.calls) for s in SERVICES.values())
    response = run(HttpRequest("POST", "/", query, wire, body, client_host="127.0.0.1"))
    assert 400 <= response.status < 500, response.body
    assert error_code(response) in AUTH_CODES
    assert sum(len(s.calls) for s in SERVICES.values()) == calls
