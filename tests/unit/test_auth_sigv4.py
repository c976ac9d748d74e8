"""SigV4 verification against requests signed by botocore itself (an independent signer), at a fixed clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from botocore import auth as botocore_auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from broker.auth import sigv4
from broker.auth.authenticator import Authenticator, DevAuthenticator
from broker.auth.credentials import parse_credentials
from broker.http.types import HttpRequest
from broker.model.errors import BrokerError

KEY, SECRET = "AKIAALICE0000000001", "alice-secret/+="
OLD_KEY = "AKIAALICE0000000OLD"
NOW = datetime(2026, 11, 28, 12, 0, 0, tzinfo=UTC)
STORE = parse_credentials({"accounts": [{"id": "111111111111", "users": [{"name": "alice", "keys": [
    {"id": KEY, "secret": SECRET}, {"id": OLD_KEY, "secret": "old", "active": False}]}]}]})


@pytest.fixture
def signing_clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[datetime]]:
    """botocore signs at clock[0] (naive UTC, as botocore expects)."""
    clock = [NOW]
    monkeypatch.setattr(botocore_auth, "get_current_datetime", lambda: clock[0].replace(tzinfo=None))
    yield clock


def sign(url: str, body: bytes = b"", *, service: str = "sqs", secret: str = SECRET, key: str = KEY,
         headers: dict[str, str] | None = None, method: str = "POST", presign_expires: int | None = None,
         unsigned_payload: bool = False) -> HttpRequest:
    """A request signed by botocore, turned into what our HTTP server hands the gateway."""
    request = AWSRequest(method=method, url=url, data=body, headers=headers or {})
    creds = Credentials(key, secret)
    if presign_expires is not None:
        botocore_auth.SigV4QueryAuth(creds, service, "eu-west-1", expires=presign_expires).add_auth(request)
    else:
        if unsigned_payload:
            request.headers["X-Amz-Content-SHA256"] = "UNSIGNED-PAYLOAD"
        botocore_auth.SigV4Auth(creds, service, "eu-west-1").add_auth(request)
    prepared = request.prepare()
    parts = urlsplit(prepared.url)
    wire_headers = {k.lower(): v for k, v in prepared.headers.items()}
    wire_headers.setdefault("host", parts.netloc)
    raw_body = prepared.body if isinstance(prepared.body, bytes) else (prepared.body or "").encode()
    return HttpRequest(method, parts.path or "/", parts.query, wire_headers, raw_body, client_host="127.0.0.1")


def authenticator(now: datetime = NOW) -> Authenticator:
    return Authenticator(STORE, clock=lambda: now)


def code_of(request: HttpRequest, service: str = "sqs", now: datetime = NOW) -> str:
    with pytest.raises(BrokerError) as info:
        authenticator(now).authenticate(request, service)
    return info.value.code


JSON_HEADERS = {"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "AmazonSQS.ListQueues"}


def test_header_signature_of_a_json_request_verifies(signing_clock: list[datetime]) -> None:
    request = sign("http://localhost:4566/", b'{"QueueNamePrefix": "a"}', headers=JSON_HEADERS)
    identity = authenticator().authenticate(request, "sqs")
    assert (identity.account_id, identity.arn, identity.access_key_id) == (
        "111111111111", "arn:aws:iam::111111111111:user/alice", KEY)
    assert identity.user_id.startswith("AIDA")


def test_query_request_to_a_queue_path_with_encoded_characters_verifies(signing_clock: list[datetime]) -> None:
    request = sign("http://127.0.0.1:9/111111111111/my%20queue?x=a%2Fb&b=", b"Action=SendMessage&MessageBody=hi+there",
                   headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    assert authenticator().authenticate(request, "sqs").account_id == "111111111111"


def test_wrong_secret_is_signature_does_not_match(signing_clock: list[datetime]) -> None:
    assert code_of(sign("http://localhost/", b"{}", headers=JSON_HEADERS, secret="wrong")) == "SignatureDoesNotMatch"


def test_tampered_body_header_or_query_is_signature_does_not_match(signing_clock: list[datetime]) -> None:
    request = sign("http://localhost/?a=1", b'{"QueueNamePrefix": "a"}', headers=JSON_HEADERS)
    for changed in (
        HttpRequest(request.method, request.path, request.query, request.headers, b'{"QueueNamePrefix": "b"}'),
        HttpRequest(request.method, request.path, "a=2", request.headers, request.body),
        HttpRequest(request.method, "/other", request.query, request.headers, request.body),
        HttpRequest(request.method, request.path, request.query,
                    {**request.headers, "x-amz-target": "AmazonSQS.DeleteQueue"}, request.body),
    ):
        assert code_of(changed) == "SignatureDoesNotMatch"


def test_unsigned_payload_lets_the_body_vary(signing_clock: list[datetime]) -> None:
    request = sign("http://localhost/", b"{}", headers=JSON_HEADERS, unsigned_payload=True)
    request.body = b'{"anything": 1}'
    assert authenticator().authenticate(request, "sqs").access_key_id == KEY


def test_claimed_payload_hash_must_match_the_body(signing_clock: list[datetime]) -> None:
    request = sign("http://localhost/", b"{}", headers={**JSON_HEADERS, "X-Amz-Content-SHA256": "0" * 64})
    assert code_of(request) == "SignatureDoesNotMatch"


def test_unknown_and_inactive_keys_are_invalid_client_token_id(signing_clock: list[datetime]) -> None:
    assert code_of(sign("http://localhost/", b"{}", key="AKIANOBODY000000000")) == "InvalidClientTokenId"
    assert code_of(sign("http://localhost/", b"{}", key=OLD_KEY, secret="old")) == "InvalidClientTokenId"


def test_no_signature_is_missing_authentication_token() -> None:
    request = HttpRequest("POST", "/", "", {"host": "localhost"}, b"Action=ListQueues")
    assert code_of(request) == "MissingAuthenticationToken"


@pytest.mark.parametrize(("authorization", "fragment"), [
    ("AWS4-HMAC-SHA256 Credential=AKIAALICE0000000001/20261128/eu-west-1/sqs/aws4_request",
     "requires 'Signature' parameter"),
    ("AWS4-HMAC-SHA256 Credential=AKIAALICE0000000001/20261128/sqs/aws4_request, SignedHeaders=host, "
     "Signature=" + "0" * 64, "exactly 5 slash-delimited elements"),
    ("AWS3 Credential=x", "Unsupported AWS 'algorithm'"),
    ("AWS4-HMAC-SHA256 Credential=AKIAALICE0000000001/20261128/eu-west-1/sqs/aws4_request, SignedHeaders=host, "
     "Signature=" + "0" * 64 + ", 0", "'0' not a valid key=value pair (missing equal-sign)"),
])
def test_malformed_authorization_is_incomplete_signature(authorization: str, fragment: str) -> None:
    request = HttpRequest("POST", "/", "", {"host": "localhost", "authorization": authorization,
                                            "x-amz-date": "20261128T120000Z"}, b"")
    with pytest.raises(BrokerError) as info:
        authenticator().authenticate(request, "sqs")
    assert (info.value.code, info.value.status) == ("IncompleteSignature", 400)
    assert fragment in info.value.message


def test_scope_must_name_the_service(signing_clock: list[datetime]) -> None:
    request = sign("http://localhost/", b"Action=GetCallerIdentity", service="sts")
    with pytest.raises(BrokerError) as info:
        authenticator().authenticate(request, "sqs")
    assert info.value.code == "SignatureDoesNotMatch"
    assert "Credential should be scoped to correct service: 'sqs'" in info.value.message


@pytest.mark.parametrize(("skew_min", "ok"), [(-16, False), (-14, True), (0, True), (14, True), (16, False)])
def test_clock_skew_window_is_15_minutes(signing_clock: list[datetime], skew_min: int, ok: bool) -> None:
    signing_clock[0] = NOW + timedelta(minutes=skew_min)
    request = sign("http://localhost/", b"{}", headers=JSON_HEADERS)
    if ok:
        assert authenticator().authenticate(request, "sqs").access_key_id == KEY
    else:
        with pytest.raises(BrokerError) as info:
            authenticator().authenticate(request, "sqs")
        assert (info.value.code, info.value.status) == ("RequestExpired", 400)
        assert ("Signature expired" if skew_min < 0 else "Signature not yet current") in info.value.message


def test_presigned_url_verifies_until_it_expires(signing_clock: list[datetime]) -> None:
    request = sign("http://localhost:4566/111111111111/q?Action=ReceiveMessage", method="GET", presign_expires=300)
    assert "X-Amz-Signature=" in request.query and "authorization" not in request.headers
    assert authenticator(NOW + timedelta(seconds=299)).authenticate(request, "sqs").access_key_id == KEY
    with pytest.raises(BrokerError) as info:
        authenticator(NOW + timedelta(seconds=301)).authenticate(request, "sqs")
    assert (info.value.code, info.value.message) == ("RequestExpired", "Request has expired")


def test_presigned_url_with_a_changed_parameter_fails(signing_clock: list[datetime]) -> None:
    request = sign("http://localhost:4566/111111111111/q?Action=ReceiveMessage", method="GET", presign_expires=300)
    request.query = request.query.replace("ReceiveMessage", "PurgeQueue")
    assert code_of(request) == "SignatureDoesNotMatch"


def test_presigned_expiry_over_a_week_is_refused(signing_clock: list[datetime]) -> None:
    request = sign("http://localhost/?Action=ListQueues", method="GET", presign_expires=300)
    request.query = request.query.replace("X-Amz-Expires=300", "X-Amz-Expires=604801")
    assert code_of(request) == "IncompleteSignature"


def test_scope_date_must_be_the_request_date(signing_clock: list[datetime]) -> None:
    request = sign("http://localhost/", b"{}", headers=JSON_HEADERS)
    request.headers["x-amz-date"] = "20261127T120000Z"
    assert code_of(request) == "SignatureDoesNotMatch"


def test_canonical_uri_and_query_follow_the_spec() -> None:
    assert sigv4.canonical_uri("") == "/"
    assert sigv4.canonical_uri("/a/./b/../c/") == "/a/c/"
    assert sigv4.canonical_uri("/a%20b") == "/a%2520b"
    assert sigv4.canonical_query("b=2&a=x%2Fy&X-Amz-Signature=zz&a=1") == "a=1&a=x%2Fy&b=2"


def test_dev_authenticator_accepts_anything_as_the_configured_root() -> None:
    request = HttpRequest("POST", "/", "", {"authorization": "AWS4-HMAC-SHA256 Credential=ANYKEY/x/y/sqs/aws4_request"},
                          b"")
    identity = DevAuthenticator("000000000000").authenticate(request, "sqs")
    assert (identity.account_id, identity.arn, identity.access_key_id) == (
        "000000000000", "arn:aws:iam::000000000000:root", "ANYKEY")


@pytest.mark.parametrize("amz_date", ["2026-11-28T12:00:00Z", "20261128T256000Z", "20261128T120000"])
def test_a_malformed_x_amz_date_is_incomplete_signature(signing_clock: list[datetime], amz_date: str) -> None:
    request = sign("http://localhost/", b"{}", headers=JSON_HEADERS)
    request.headers["x-amz-date"] = amz_date
    with pytest.raises(BrokerError) as info:
        authenticator().authenticate(request, "sqs")
    assert info.value.code == "IncompleteSignature"
    assert "ISO-8601 'basic format'" in info.value.message
