"""Fuzz every HTTP protocol of a real server: malformed signatures, headers and bodies get well-formed AWS errors.

Two real ``raftmq serve`` processes: one in dev mode (any signature is accepted, so requests aim only at sandbox
resources and may legitimately succeed) and one with ``--credentials`` (signatures are checked, so requests may aim
at the seeded resources and none may succeed). Both are seeded first (queues with messages, a stream with records,
a topic with a subscription); at the end the seeded state must read back unchanged and /health must answer 200.

Every response must be a 4xx in the error format of the protocol spoken (JSON ``__type``, CBOR ``__type``, Query
XML ``ErrorResponse``) with a code AWS uses, or (dev mode) a success in that protocol's format; a request whose
HTTP framing was broken may instead get a clean close. A 5xx, a hang or bytes that are no HTTP response fail.

Bounded for CI (the whole file well under a minute); ``RAFTMQ_SLOW=1`` multiplies the examples by 20 and
``RAFTMQ_FUZZ_SCALE=N`` by N, drawing new random examples on each run (the CI run is derandomized).
"""

from __future__ import annotations

import base64
import functools
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import botocore.session
import cbor2
import pytest
from botocore import serialize
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from broker.aws.service_model import Shape, load_service_model
from broker.model.sns_envelope import CERT_PATH
from tests.integration.conftest import make_client, make_sqs_client
from tests.integration.server import RaftMQServer
from tests.integration.sqs_clients import sqs_session
from tests.integration.test_fuzz_support import (
    Seed,
    assert_client_error,
    assert_well_formed,
    error_code,
    exchange,
    one_reply,
    request_bytes,
    seed_state,
    snapshot,
)

SLOW = os.environ.get("RAFTMQ_SLOW") == "1"
# RAFTMQ_FUZZ_SCALE multiplies the examples too (and, above 1, draws new random examples on every run).
SCALE = int(os.environ.get("RAFTMQ_FUZZ_SCALE", "20" if SLOW else "1"))
REGION = "us-east-1"
ACCOUNT = "111111111111"
ROOT = ("AKIAFUZZROOT00000001", "fuzz-root-secret")
DEV_KEY = ("AKIAIOSFODNN7EXAMPLE", "dev-secret")
CREDENTIALS = {"accounts": [{"id": ACCOUNT, "root_keys": [{"id": ROOT[0], "secret": ROOT[1]}], "users": []}]}


def fuzz_settings(examples: int) -> settings:
    return settings(max_examples=examples * SCALE, deadline=None, derandomize=SCALE == 1, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture])


# -- servers ---------------------------------------------------------------------------------------------------

class SecuredServer(RaftMQServer):
    """``raftmq serve --credentials FILE``: signatures are really checked."""

    def __init__(self, data_dir: Path, credentials: Path) -> None:
        super().__init__(data_dir)
        self.credentials = credentials

    def args(self) -> list[str]:
        return [*super().args(), "--credentials", str(self.credentials)]


@dataclass(frozen=True, slots=True)
class Target:
    """A fuzzed server: its port, the key that signs validly there, the seeded state and the names to aim at."""

    server: RaftMQServer
    port: int
    key: tuple[str, str]
    secured: bool
    seed: Seed
    before: dict[str, Any]
    queue_urls: tuple[str, ...]
    arns: tuple[str, ...]
    streams: tuple[str, ...]

    def clients(self) -> tuple[Any, Any, Any]:
        kw = {"aws_access_key_id": self.key[0], "aws_secret_access_key": self.key[1]}
        return (make_sqs_client(self.server.endpoint, **kw), make_client("kinesis", self.server.endpoint, **kw),
                make_client("sns", self.server.endpoint, **kw))


def _prepare(server: RaftMQServer, key: tuple[str, str], secured: bool) -> Target:
    ready = server.start()
    kw = {"aws_access_key_id": key[0], "aws_secret_access_key": key[1]}
    sqs = make_sqs_client(server.endpoint, **kw)
    kinesis, sns = make_client("kinesis", server.endpoint, **kw), make_client("sns", server.endpoint, **kw)
    seed = seed_state(sqs, kinesis, sns, "seed")
    before = snapshot(seed, sqs, kinesis, sns)
    if secured:
        # Nothing fuzzed here can authenticate, so the fuzzer may aim at the seeded resources themselves.
        urls: tuple[str, ...] = (seed.queue_url, seed.fifo_url)
        arns: tuple[str, ...] = (seed.queue_arn, seed.topic_arn)
        streams: tuple[str, ...] = (seed.stream,)
    else:
        # Dev mode lets any request in: aim at a sandbox, so only a server bug could touch the seeded state.
        url = sqs.create_queue(QueueName="sandbox")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        kinesis.create_stream(StreamName="sandbox", ShardCount=1)
        topic_arn = sns.create_topic(Name="sandbox")["TopicArn"]
        urls, arns, streams = (url,), (queue_arn, topic_arn), ("sandbox",)
    return Target(server, ready.port, key, secured, seed, before, urls, arns, streams)


def _finish(target: Target) -> None:
    """The server is up, healthy and the seeded state reads back as it was before the fuzzing."""
    assert target.server.running, target.server.stderr_text()
    health = one_reply(exchange(target.port, request_bytes("GET", "/health", [("Host", "x")], b"")))
    assert health.status == 200, health
    assert snapshot(target.seed, *target.clients()) == target.before
    assert "Traceback" not in target.server.stderr_text(), target.server.stderr_text()


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    server = RaftMQServer(tmp_path_factory.mktemp("fuzz-dev") / "data", account_id=ACCOUNT)
    try:
        target = _prepare(server, DEV_KEY, secured=False)
        yield target
        _finish(target)
        server.stop()
    finally:
        server.close()


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    base = tmp_path_factory.mktemp("fuzz-secured")
    credentials = base / "credentials.json"
    credentials.write_text(json.dumps(CREDENTIALS))
    server = SecuredServer(base / "data", credentials)
    try:
        target = _prepare(server, ROOT, secured=True)
        yield target
        _finish(target)
        server.stop()
    finally:
        server.close()


@pytest.fixture(params=["dev", "secured"])
def target(request: pytest.FixtureRequest) -> Target:
    fixture: Target = request.getfixturevalue(request.param)
    return fixture


# -- requests -------------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Request:
    """One request before it is written; ``framed`` is False once a mutation broke its HTTP framing."""

    method: str
    path: str
    headers: tuple[tuple[str, str | bytes], ...]
    body: bytes
    framed: bool = True

    def to_bytes(self) -> bytes:
        headers = list(self.headers)
        if self.framed and not any(n.lower() == "content-length" for n, _ in headers):
            headers.append(("Content-Length", str(len(self.body))))
        return request_bytes(self.method, self.path, headers, self.body)


@dataclass(frozen=True, slots=True)
class Protocol:
    """How one AWS protocol frames a request for one service."""

    name: str
    service: str
    content_type: str
    target_prefix: str | None  # X-Amz-Target prefix (JSON/CBOR) or None (Query)
    version: str = ""


PROTOCOLS = {
    "sqs-json": Protocol("sqs-json", "sqs", "application/x-amz-json-1.0", "AmazonSQS"),
    "sqs-query": Protocol("sqs-query", "sqs", "application/x-www-form-urlencoded; charset=utf-8", None, "2012-11-05"),
    "sns-query": Protocol("sns-query", "sns", "application/x-www-form-urlencoded; charset=utf-8", None, "2010-03-31"),
    "sts-query": Protocol("sts-query", "sts", "application/x-www-form-urlencoded; charset=utf-8", None, "2011-06-15"),
    "kinesis-json": Protocol("kinesis-json", "kinesis", "application/x-amz-json-1.1", "Kinesis_20131202"),
    "kinesis-cbor": Protocol("kinesis-cbor", "kinesis", "application/x-amz-cbor-1.1", "Kinesis_20131202"),
}
_MODELS = {"sqs-json": ("sqs", "json"), "sqs-query": ("sqs", "query"), "sns-query": ("sns", "query"),
           "sts-query": ("sts", "query"), "kinesis-json": ("kinesis", "json"), "kinesis-cbor": ("kinesis", "json")}


def _member_names(service: str, protocol: str) -> tuple[list[str], list[str]]:
    """(operation names, every member name of every input shape) of a pinned model."""
    model = load_service_model(service, protocol)
    names: set[str] = set()
    for shape in model.shapes.values():
        for member_name, member in shape.members.items():
            names.add(member_name)
            names.add(member.serialized_name)
    return sorted(model.operations), sorted(names)


MODEL_NAMES = {name: _member_names(*model) for name, model in _MODELS.items()}


def sign(target: Target, request: Request, service: str, key: tuple[str, str] | None = None,
         when: datetime | None = None) -> Request:
    """The request with a SigV4 Authorization as botocore computes it (``key`` defaults to the target's)."""
    key = key or target.key
    url = f"http://127.0.0.1:{target.port}{request.path}"
    aws = AWSRequest(method=request.method, url=url, data=request.body,
                     headers={n: v for n, v in request.headers if n.lower() != "host"})
    signer = SigV4Auth(Credentials(*key), service, REGION)
    if when is not None:
        aws.context["timestamp"] = when.strftime("%Y%m%dT%H%M%SZ")
    signer.add_auth(aws)
    headers = [("Host", f"127.0.0.1:{target.port}"), *((n, str(v)) for n, v in aws.headers.items())]
    return replace(request, headers=tuple(headers))


def presign(target: Target, path_and_query: str, service: str, key: tuple[str, str] | None = None) -> Request:
    key = key or target.key
    aws = AWSRequest(method="GET", url=f"http://127.0.0.1:{target.port}{path_and_query}")
    SigV4QueryAuth(Credentials(*key), service, REGION, expires=300).add_auth(aws)
    path = aws.url.split(str(target.port), 1)[1]
    return Request("GET", path, (("Host", f"127.0.0.1:{target.port}"),), b"")


def base_request(protocol: Protocol, operation: str, body: bytes, path: str = "/") -> Request:
    headers: list[tuple[str, str | bytes]] = [("Content-Type", protocol.content_type)]
    if protocol.target_prefix is not None:
        headers.append(("X-Amz-Target", f"{protocol.target_prefix}.{operation}"))
    return Request("POST", path, tuple(headers), body)


# -- strategies: values and bodies -------------------------------------------------------------------------------

HUGE_NUMBERS = ("1e999", "-1e999", "99999999999999999999999999999", "-9223372036854775809", "NaN", "Infinity",
                "-0", "0x10", "1_000", "٣", "1.5", "")


def resource_values(target: Target) -> st.SearchStrategy[str]:
    return st.sampled_from([*target.queue_urls, *target.arns, *target.streams])


def scalars(target: Target, surrogates: bool = True) -> st.SearchStrategy[Any]:
    """Leaves of any type; lone surrogates only where the encoder can write them (stdlib JSON's escapes)."""
    options = [st.none(), st.booleans(), st.integers(), st.integers(min_value=2**63, max_value=2**300),
               st.floats(), st.text(max_size=40), resource_values(target), st.sampled_from(HUGE_NUMBERS)]
    if surrogates:
        options.append(st.text(alphabet=st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1,
                               max_size=2))
    return st.one_of(*options)


# Members that name a resource: the fuzzer fills them with the target's resources so requests reach the services.
RESOURCE_MEMBERS = frozenset({"QueueUrl", "StreamName", "StreamARN", "ConsumerARN", "TopicArn", "TargetArn",
                              "SourceArn", "DestinationArn", "ResourceArn", "ResourceARN", "SubscriptionArn",
                              "Endpoint", "QueueOwnerAWSAccountId"})


def shape_values(target: Target, shape: Shape, *, cbor: bool, depth: int = 0, name: str = "") -> Any:
    """Mostly what the model asks for (so requests get past the parsers into the services), sometimes junk."""
    junk = scalars(target, surrogates=not cbor)
    if depth > 4:
        return junk
    if name in RESOURCE_MEMBERS:
        fitting: st.SearchStrategy[Any] = st.one_of(resource_values(target), st.text(max_size=30))
    elif shape.type == "structure":
        members = {n: shape_values(target, m.shape, cbor=cbor, depth=depth + 1, name=n)
                   for n, m in shape.members.items()}
        required = {n: v for n, v in members.items() if n in shape.required}
        optional = {n: v for n, v in members.items() if n not in shape.required}
        fitting = st.fixed_dictionaries(required, optional=optional)
    elif shape.type == "list" and shape.member is not None:
        fitting = st.lists(shape_values(target, shape.member.shape, cbor=cbor, depth=depth + 1), max_size=3)
    elif shape.type == "map" and shape.key is not None and shape.value is not None:
        keys = st.sampled_from(sorted(shape.key.shape.enum)) if shape.key.shape.enum else st.text(max_size=12)
        fitting = st.dictionaries(keys, shape_values(target, shape.value.shape, cbor=cbor, depth=depth + 1),
                                  max_size=3)
    elif shape.type == "string":
        fitting = st.sampled_from(sorted(shape.enum)) if shape.enum else st.text(max_size=40)
    elif shape.type in ("integer", "long"):
        fitting = st.one_of(st.integers(-5, 1200), st.integers(-(2**63), 2**63 - 1))
    elif shape.type in ("float", "double"):
        fitting = st.floats()
    elif shape.type == "boolean":
        fitting = st.booleans()
    elif shape.type == "blob":
        fitting = st.binary(max_size=40) if cbor else st.binary(max_size=40).map(
            lambda b: base64.b64encode(b).decode())
    elif shape.type == "timestamp":
        fitting = st.one_of(st.integers(-(2**40), 2**45), st.floats(), st.text(max_size=25))
    else:
        fitting = junk
    return st.integers(0, 15).flatmap(lambda i: junk if i == 15 else fitting)


def model_params(target: Target, protocol: Protocol, operation: str, *, cbor: bool = False) -> Any:
    service, kind = _MODELS[protocol.name]
    op = load_service_model(service, kind).operation(operation)
    if op is None or op.input is None:
        return st.just({})
    return shape_values(target, op.input, cbor=cbor)


def json_values(target: Target, names: list[str]) -> st.SearchStrategy[Any]:
    keys = st.one_of(st.sampled_from(names), st.text(max_size=12))

    def containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        return st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=5))

    return st.recursive(scalars(target), containers, max_leaves=24)


def _dumps(value: Any, ascii_only: bool) -> bytes:
    """stdlib JSON: keeps what orjson refuses to write (NaN, big integers, lone surrogates)."""
    return json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


@st.composite
def json_bodies(draw: st.DrawFn, target: Target, names: list[str], model: Any = None) -> bytes:
    doc = draw(st.dictionaries(st.sampled_from(names), json_values(target, names), max_size=6))
    if model is not None and draw(st.integers(0, 3)) < 3:
        doc = draw(model)
    text = _dumps(doc, draw(st.booleans()))
    kind = draw(st.sampled_from(["doc"] * 6 + ["truncated", "garbage", "deep", "spliced", "other"]))
    if kind == "truncated" and text:
        return text[:draw(st.integers(0, len(text) - 1))]
    if kind == "garbage":
        return draw(st.binary(max_size=300))
    if kind == "deep":
        depth = draw(st.integers(100, 200_000))
        opener = draw(st.sampled_from([b"[", b'{"a":', b'{"QueueUrl":[', b'{"Records":[{"Data":']))
        return opener * depth
    if kind == "spliced":
        at = draw(st.integers(0, len(text)))
        return text[:at] + draw(st.binary(min_size=1, max_size=8)) + text[at:]
    if kind == "other":
        return _dumps(draw(json_values(target, names)), True)
    return text


def cbor_values(target: Target, names: list[str]) -> st.SearchStrategy[Any]:
    leaves = st.one_of(
        scalars(target, surrogates=False),
        st.binary(max_size=40), st.just(cbor2.undefined),
        st.builds(cbor2.CBORSimpleValue, st.sampled_from([0, 19, 32, 255])),
    )
    keys = st.one_of(st.sampled_from(names), st.text(max_size=12), st.integers(), st.binary(max_size=4))
    tags = st.one_of(st.sampled_from([0, 1, 2, 3, 4, 5, 24, 25, 28, 29, 30, 35, 36, 37, 100, 256, 258, 260, 261,
                                      262, 1004, 55799]), st.integers(0, 2**64 - 1))

    def containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        return st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=5),
                         st.builds(cbor2.CBORTag, tags, inner))

    return st.recursive(leaves, containers, max_leaves=24)


def _cbor(value: Any) -> bytes:
    try:
        return cbor2.dumps(value)
    except (ValueError, TypeError, cbor2.CBOREncodeError):
        return b"\xa0"


# Hand-made CBOR the encoder never writes: indefinite lengths, breaks in the wrong place, truncated heads.
RAW_CBOR = (b"\xbf", b"\xbf\xff", b"\xbfcabc\xff", b"\x9f\x01\x02", b"\x5f\x41a\x41b\xff", b"\x7f\x61a\x61b\xff",
            b"\x7f\x41a\xff", b"\x5f\x61a\xff", b"\xbf\x9f\xff\xff", b"\xff", b"\x1b\xff\xff\xff\xff\xff\xff\xff",
            b"\x5b\xff\xff\xff\xff\xff\xff\xff\xff", b"\xa1\x61a", b"\xf8\x00", b"\xfb\x7f\xf8\x00\x00\x00\x00\x00",
            b"\xc1\x63abc", b"\xc1\xfb\x7f\xf0\x00\x00\x00\x00\x00\x00", b"\xc4\x82\x1b\x7f\xff\xff\xff\xff\xff\xff"
            b"\xff\x01", b"\xc5\x82\x1b\x7f\xff\xff\xff\xff\xff\xff\xff\x01", b"\xd8\x1c\xa0", b"\xd8\x1d\x00",
            b"\xd9\xd9\xf7\xa0", b"\xd8\x18\x41\xff", b"\xa1\x80\x00", b"\xa1\xa0\x00")


@st.composite
def cbor_bodies(draw: st.DrawFn, target: Target, names: list[str], model: Any = None) -> bytes:
    doc = draw(st.dictionaries(st.sampled_from(names), cbor_values(target, names), max_size=6))
    if model is not None and draw(st.integers(0, 3)) < 3:
        doc = draw(model)
    data = _cbor(doc)
    kind = draw(st.sampled_from(["doc"] * 6 + ["raw", "prefixed", "truncated", "garbage", "deep", "other"]))
    if kind == "raw":
        return draw(st.sampled_from(RAW_CBOR))
    if kind == "prefixed":  # a map of one member whose value is hand-made
        name = draw(st.sampled_from(names)).encode()
        return bytes([0xA1, 0x60 + len(name)]) + name + draw(st.sampled_from(RAW_CBOR)) if len(name) < 24 else data
    if kind == "truncated" and data:
        return data[:draw(st.integers(0, len(data) - 1))]
    if kind == "garbage":
        return draw(st.binary(max_size=300))
    if kind == "deep":
        return draw(st.sampled_from([b"\x81", b"\xa1\x61a", b"\x9f", b"\xc1"])) * draw(st.integers(60, 100_000))
    if kind == "other":
        return _cbor(draw(cbor_values(target, names)))
    return data


def _form_keys(names: list[str]) -> st.SearchStrategy[str]:
    name = st.sampled_from(names)
    index = st.sampled_from(["1", "2", "0", "-1", "10", "99999999999999999999", "a", ""])
    return st.one_of(
        name, st.builds(lambda n, i: f"{n}.{i}", name, index),
        st.builds(lambda n, i, m: f"{n}.member.{i}.{m}", name, index, name),
        st.builds(lambda n, i: f"{n}.entry.{i}.key", name, index),
        st.builds(lambda n, i: f"{n}.{i}.Value.StringValue", name, index),
        st.sampled_from(["Action", "Version", "X-Amz-Signature", "X-Amz-Credential", "X-Amz-Date", ".", "..", "a..b"]),
        st.text(max_size=15))


@st.composite
def form_bodies(draw: st.DrawFn, target: Target, protocol: Protocol, operation: str, names: list[str]) -> bytes:
    values = st.one_of(st.text(max_size=40), resource_values(target), st.sampled_from(HUGE_NUMBERS))
    pairs: list[tuple[str, str]] = []
    # Hypothesis leans towards the smallest choice (0, False, the first element): make that the valid one, so the
    # examples it prefers get past the parsers and the rarer ones break a single thing.
    if draw(st.integers(0, 9)) < 9:
        pairs.append(("Action", operation if draw(st.integers(0, 4)) < 4 else draw(st.text(max_size=20))))
    if not draw(st.booleans()):
        pairs.append(("Version", protocol.version if not draw(st.booleans()) else draw(st.text(max_size=12))))
    if draw(st.integers(0, 3)) < 3:
        pairs += botocore_form(protocol, operation, draw(model_params(target, protocol, operation)))
    extra: list[tuple[str, str]] = draw(st.lists(st.tuples(_form_keys(names), values),
                                                 max_size=8 if len(pairs) < 3 else 2))
    pairs += extra
    repeat: bool = draw(st.booleans())
    if pairs and repeat:
        pairs.append(draw(st.sampled_from(pairs)))  # a repeated key
    body = urlencode(pairs, quote_via=quote, encoding="utf-8", errors="surrogatepass").encode()
    kind = draw(st.sampled_from(["form"] * 6 + ["escapes", "garbage", "separators", "long"]))
    if kind == "escapes":
        return body + b"&" + draw(st.sampled_from([b"%", b"%zz", b"a=%ff%fe", b"%ed%a0%80=x", b"a=%c0%af",
                                                   b"Action=%00", b"=%", b"a=b=c"]))
    if kind == "garbage":
        return body + draw(st.binary(max_size=60))
    if kind == "separators":
        return body + draw(st.sampled_from([b"&&&", b";a=b", b"&=", b"&a", b"&&Action=&Action="]))
    if kind == "long":
        return body + b"&Attribute." + b"9" * draw(st.integers(1, 5000)) + b".Name=x"
    return body


def botocore_form(protocol: Protocol, operation: str, params: Any) -> list[tuple[str, str]]:
    """``params`` as botocore's Query serializer writes them (the form real SDKs send); nothing if it cannot."""
    service = protocol.service
    client_protocol = "query" if service == "sqs" else None
    model = _botocore_model(service, client_protocol)
    try:
        op = model.operation_model(operation)
        request = serialize.create_serializer("query").serialize_to_request(params, op)
    except Exception:  # junk of the wrong type for botocore: the plain pairs carry this example
        return []
    body = request["body"]
    return [(k, str(v)) for k, v in body.items() if k not in ("Action", "Version")] if isinstance(body, dict) else []


@functools.cache
def _botocore_model(service: str, protocol: str | None) -> Any:
    session = sqs_session(protocol)._session if protocol else botocore.session.get_session()
    return session.get_service_model(service)


def bodies(target: Target, protocol: Protocol, operation: str) -> st.SearchStrategy[bytes]:
    names = MODEL_NAMES[protocol.name][1]
    if protocol.name == "kinesis-cbor":
        return cbor_bodies(target, names, model_params(target, protocol, operation, cbor=True))
    if protocol.target_prefix is not None:
        return json_bodies(target, names, model_params(target, protocol, operation))
    return form_bodies(target, protocol, operation, names)


# -- strategies: header mutations --------------------------------------------------------------------------------

CONTENT_TYPES = ("application/x-amz-json-1.0", "application/x-amz-json-1.1", "application/x-amz-cbor-1.1",
                 "application/x-www-form-urlencoded", "application/x-www-form-urlencoded; charset=latin-1",
                 "application/json", "text/plain", "multipart/form-data; boundary=x", "", "application/x-amz-json",
                 "application/x-amz-json-1.0; charset=utf-8", "APPLICATION/X-AMZ-CBOR-1.1", "*/*")
TARGETS = ("", ".", "AmazonSQS", "AmazonSQS.", "AmazonSQS.SendMessage.Extra", "Kinesis_20131202.",
           "Kinesis_20131202.SubscribeToShard", "DynamoDB_20120810.GetItem", "amazonsqs.SendMessage",
           "AmazonSQS.__init__", "AmazonSQS.sendmessage", "Kinesis_20131202.PutRecord\x00")
DATES = ("", "20260101T000000Z", "19700101T000000Z", "99991231T235959Z", "2026-11-28T00:00:00Z", "garbage",
         "20261328T256161Z", "Sat, 28 Nov 2026 00:00:00 GMT", "0")
LENGTHS = ("-1", "99999999999999999999999", "abc", "", "0x10", " 5", "1,1", "18446744073709551616", "+3",
           "2147483648")


def _auth_variants(auth: str, *, lenient: bool = True) -> st.SearchStrategy[str]:
    """Authorization values that break its grammar or its content; ``lenient`` adds spellings of a valid signature
    a server may accept (extra separators and spaces)."""
    def swap(old: str, new: str) -> str:
        return auth.replace(old, new, 1)

    credential = auth.split("Credential=", 1)[1].split(",", 1)[0] if "Credential=" in auth else "A/B"
    signature = auth.rsplit("Signature=", 1)[1] if "Signature=" in auth else "00"
    flipped = signature[:-1] + ("0" if signature[-1:] != "0" else "1")
    parts = credential.split("/")
    return st.one_of(
        st.text(max_size=60),
        st.sampled_from([
            "AWS4-HMAC-SHA256", "AWS4-HMAC-SHA256 ", "AWS4-HMAC-SHA256 Credential=", "AWS AKIA:abc",
            "Bearer x", "AWS4-HMAC-SHA512 " + auth.split(" ", 1)[-1], swap("Signature=", "Sig="),
            swap("Credential=", "Credential"), swap("SignedHeaders=", "SignedHeaders=;;"),
            swap("SignedHeaders=", "SignedHeaders=x-absent;"), swap(signature, flipped), swap(signature, ""),
            swap(signature, "zz" + signature[2:]), auth.split(", Signature=")[0],
            swap(credential, "/".join(parts[:2])), swap(credential, credential + "/extra"),
            swap(credential, credential.replace(REGION, "eu-west-1")),
            swap(credential, "/".join([parts[0], "20000101", *parts[2:]])),
            swap(credential, "/".join([*parts[:3], "s3", *parts[4:]])) if len(parts) > 4 else auth + "x",
            swap(credential, "AKIAUNKNOWN000000001/" + "/".join(parts[1:])),
            auth + ", Signature=" + flipped, auth + "\x00", auth.lower(),
            *((auth + ",,,", auth.replace(", ", ","), auth.replace(" ", "  ", 1)) if lenient else ()),
        ]).filter(lambda v: v != auth),
    )


@st.composite
def mutated(draw: st.DrawFn, request: Request, *, must_break: bool = False) -> Request:
    """Apply one to four header mutations; ``must_break`` keeps only mutations that invalidate a signature."""
    headers = list(request.headers)
    framed = request.framed
    signed = _signed_headers(headers)
    steps = draw(st.integers(1, 4))
    for _ in range(steps):
        kinds = ["drop", "value", "dup", "auth", "date", "target", "ctype", "length", "te", "misc"]
        kind = draw(st.sampled_from(kinds))
        index = draw(st.integers(0, max(0, len(headers) - 1)))
        name = headers[index][0] if headers else "X-Extra"
        if kind == "drop" and headers:
            headers.pop(index)
        elif kind == "value" and headers:
            value = draw(st.one_of(st.text(max_size=30), st.binary(max_size=30).map(
                lambda b: b.replace(b"\r", b"").replace(b"\n", b""))))
            if _canonical(value) != _canonical(headers[index][1]):
                headers[index] = (name, value)
        elif kind == "dup" and headers:
            value = draw(st.text(min_size=1, max_size=30).filter(lambda v: "\r" not in v and "\n" not in v))
            if _canonical(value) != _canonical(headers[index][1]):
                headers.insert(draw(st.integers(0, len(headers))), (name, value))
        elif kind == "auth":
            auth = next((str(v) for n, v in headers if n.lower() == "authorization"), "")
            headers = [(n, v) for n, v in headers if n.lower() != "authorization"]
            headers.append(("Authorization", draw(_auth_variants(auth, lenient=not must_break)) if auth
                            else draw(st.text(max_size=60))))
        elif kind == "date":
            headers = [(n, v) for n, v in headers if n.lower() != "x-amz-date"]
            skewed = (datetime.now(UTC) + timedelta(minutes=draw(st.sampled_from([-60, -16, 16, 60 * 24 * 400]))))
            value = draw(st.sampled_from([*DATES, skewed.strftime("%Y%m%dT%H%M%SZ")]))
            headers.append(("X-Amz-Date", value))
        elif kind in ("target", "ctype"):
            header = "X-Amz-Target" if kind == "target" else "Content-Type"
            headers = [(n, v) for n, v in headers if n.lower() != header.lower()]
            value = draw(st.one_of(st.sampled_from(TARGETS), st.text(max_size=40)) if kind == "target"
                         else st.sampled_from(CONTENT_TYPES))
            headers.append((header, value))
        elif kind == "length" and not must_break:
            headers.append(("Content-Length", draw(st.one_of(st.sampled_from(LENGTHS), st.integers(
                0, len(request.body) + 10).map(str)))))
            framed = False
        elif kind == "te" and not must_break:
            headers.append(("Transfer-Encoding", draw(st.sampled_from(["chunked", "gzip", "chunked, identity", "x"]))))
            framed = False
        elif kind == "misc" and not must_break:
            headers.append(draw(st.sampled_from([("Expect", "100-continue"), ("Connection", "Upgrade"),
                                                 ("Upgrade", "h2c"), ("Connection", "close"),
                                                 ("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD"),
                                                 ("X-Amz-Security-Token", "x"), ("Host", "")])))
    # Judged on the result, not per step: a duplicate dropped again, or a header set back to its value, undoes a
    # change, and the server joins repeated headers with ", " before it checks the signature.
    if must_break and _signature_view(headers, signed) == _signature_view(list(request.headers), signed):
        auth = next((str(v) for n, v in headers if n.lower() == "authorization"), "")
        headers = [(n, v) for n, v in headers if n.lower() != "authorization"]
        headers.append(("Authorization", draw(_auth_variants(auth, lenient=False))))
    return Request(request.method, request.path, tuple(headers), request.body, framed)


def _signed_headers(headers: list[tuple[str, str | bytes]]) -> frozenset[str]:
    auth = next((str(v) for n, v in headers if n.lower() == "authorization"), "")
    if "SignedHeaders=" not in auth:
        return frozenset()
    return frozenset(auth.split("SignedHeaders=", 1)[1].split(",", 1)[0].split(";"))


def _signature_view(headers: list[tuple[str, str | bytes]], signed: frozenset[str]) -> dict[str, object]:
    """What a SigV4 check sees of the headers: each signed header (repeats joined with ", ", as the server does)
    and the fields of Authorization as broker.auth.sigv4 reads them (the last of a repeated field kept, empty parts
    skipped, and a part without "=" refused, as AWS does), so junk the server ignores does not count as breaking
    the signature."""
    joined: dict[str, bytes] = {}
    for name, value in headers:
        key = name.lower()
        if key in signed or key == "authorization":
            raw = value if isinstance(value, bytes) else value.encode("utf-8", "surrogatepass")
            joined[key] = joined[key] + b", " + raw if key in joined else raw
    view: dict[str, object] = {k: _canonical(v) for k, v in joined.items() if k != "authorization"}
    auth = joined.get("authorization", b"").decode("latin-1")
    algorithm, _, rest = auth.strip().partition(" ")
    fields = dict(part.strip().partition("=")[::2] for part in rest.split(",") if "=" in part)
    not_pairs = sorted(part.strip() for part in rest.split(",") if part.strip() and "=" not in part)
    view["authorization"] = (algorithm, sorted(fields.items()), not_pairs)
    return view


def _canonical(value: str | bytes) -> bytes:
    raw = value if isinstance(value, bytes) else value.encode("utf-8", "surrogatepass")
    return b" ".join(raw.split()).lower()


# -- checks -----------------------------------------------------------------------------------------------------

def send(target: Target, request: Request) -> None:
    """Write the request and check every answer (or, for broken framing, a clean close)."""
    result = exchange(target.port, request.to_bytes())
    if request.framed:
        one_reply(result)
    assert result.trailing == b"", result
    for reply in result.replies:
        if target.secured:
            event(f"{reply.status} {assert_client_error(reply)}")
        else:
            assert_well_formed(reply)
            event(f"{reply.status} {error_code(reply) if reply.status != 200 else 'ok'}")
    if not result.replies:
        event("closed")


@st.composite
def protocol_request(draw: st.DrawFn, target: Target, protocol: Protocol) -> Request:
    """A fuzzed request of ``protocol``: a model operation (or junk), a fuzzed body, then header mutations."""
    operations = MODEL_NAMES[protocol.name][0]
    operation = draw(st.sampled_from(operations)) if draw(st.integers(0, 9)) < 9 else draw(st.text(max_size=20))
    body = draw(bodies(target, protocol, operation))
    request = base_request(protocol, operation, body, draw(st.sampled_from(["/", "/", "/queue", "/?", "//"])))
    how = draw(st.sampled_from(["signed", "signed", "wrong-secret", "unknown-key", "unsigned"]))
    if how == "signed" and not target.secured:
        request = sign(target, request, protocol.service)
    elif how in ("wrong-secret", "signed"):
        request = sign(target, request, protocol.service, (target.key[0], "not-the-secret"))
    elif how == "unknown-key":
        request = sign(target, request, protocol.service, ("AKIAUNKNOWNFUZZ00001", "x"))
    else:
        request = replace(request, headers=(("Host", "localhost"), *request.headers))
    if draw(st.integers(0, 3)) == 3:  # a quarter: most requests should get past the headers to the services
        request = draw(mutated(request))
    return request


# -- the fuzz tests ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(PROTOCOLS))
@fuzz_settings(100)
@given(data=st.data())
def test_fuzzed_requests_get_well_formed_aws_answers(target: Target, name: str, data: st.DataObject) -> None:
    send(target, data.draw(protocol_request(target, PROTOCOLS[name]), label="request"))


def _mutating_requests(target: Target) -> list[Callable[[], Request]]:
    """Validly signed requests that would change the seeded state if the server let a mutation of them through."""
    seed = target.seed
    sqs_json, kinesis_json = PROTOCOLS["sqs-json"], PROTOCOLS["kinesis-json"]
    send_body = json.dumps({"QueueUrl": seed.queue_url, "MessageBody": "injected"}).encode()
    put_body = {"StreamName": seed.stream, "Data": "aW5qZWN0ZWQ=", "PartitionKey": "pk"}

    def form(protocol: str, params: dict[str, str]) -> Callable[[], Request]:
        p = PROTOCOLS[protocol]
        body = urlencode({**params, "Version": p.version}).encode()
        return lambda: sign(target, base_request(p, params["Action"], body), p.service)

    return [
        lambda: sign(target, base_request(sqs_json, "SendMessage", send_body), "sqs"),
        lambda: sign(target, base_request(sqs_json, "PurgeQueue", json.dumps({"QueueUrl": seed.queue_url})
                                          .encode()), "sqs"),
        lambda: sign(target, base_request(sqs_json, "DeleteQueue", json.dumps({"QueueUrl": seed.fifo_url})
                                          .encode()), "sqs"),
        form("sqs-query", {"Action": "SendMessage", "QueueUrl": seed.queue_url, "MessageBody": "injected"}),
        form("sqs-query", {"Action": "DeleteQueue", "QueueUrl": seed.queue_url}),
        form("sns-query", {"Action": "Publish", "TopicArn": seed.topic_arn, "Message": "injected"}),
        form("sns-query", {"Action": "DeleteTopic", "TopicArn": seed.topic_arn}),
        form("sts-query", {"Action": "GetCallerIdentity"}),
        lambda: sign(target, base_request(kinesis_json, "PutRecord", json.dumps(put_body).encode()), "kinesis"),
        lambda: sign(target, base_request(kinesis_json, "DeleteStream", json.dumps(
            {"StreamName": seed.stream}).encode()), "kinesis"),
        lambda: sign(target, base_request(PROTOCOLS["kinesis-cbor"], "PutRecord", cbor2.dumps(
            {**put_body, "Data": b"injected"})), "kinesis"),
    ]


def test_the_fuzzer_signs_requests_the_secured_server_accepts(secured: Target) -> None:
    """Without this, every mutated request below could fail for a reason that has nothing to do with the mutation."""
    body = json.dumps({"QueueUrl": secured.seed.queue_url, "AttributeNames": ["QueueArn"]}).encode()
    reply = one_reply(exchange(secured.port, sign(secured, base_request(
        PROTOCOLS["sqs-json"], "GetQueueAttributes", body), "sqs").to_bytes()))
    assert reply.status == 200, reply
    query = urlencode({"Action": "GetQueueAttributes", "QueueUrl": secured.seed.queue_url, "Version": "2012-11-05",
                       "AttributeName.1": "QueueArn"})
    reply = one_reply(exchange(secured.port, presign(secured, "/?" + query, "sqs").to_bytes()))
    assert reply.status == 200, reply


@fuzz_settings(150)
@given(data=st.data())
def test_mutated_signed_requests_are_refused(secured: Target, data: st.DataObject) -> None:
    """Any change to what a valid signature covers (body, signed headers, the signature, its date) is refused."""
    requests = _mutating_requests(secured)
    request = requests[data.draw(st.integers(0, len(requests) - 1), label="base")]()
    if data.draw(st.booleans(), label="change body") and request.body:
        body = data.draw(st.binary(max_size=len(request.body) + 20).filter(lambda b: b != request.body))
        request = replace(request, body=body)
        if data.draw(st.booleans()):
            # No framing mutations here: a Content-Length that cuts the new body back to the signed one would
            # rebuild the valid request.
            request = data.draw(mutated(request, must_break=True))
    else:
        request = data.draw(mutated(request, must_break=True))
    send(secured, request)


@fuzz_settings(60)
@given(data=st.data())
def test_mutated_presigned_urls_are_refused(secured: Target, data: st.DataObject) -> None:
    seed = secured.seed
    query = urlencode({"Action": "SendMessage", "QueueUrl": seed.queue_url, "MessageBody": "injected",
                       "Version": "2012-11-05"})
    request = presign(secured, "/?" + query, "sqs")
    path, _, qs = request.path.partition("?")
    pairs = [p.split("=", 1) for p in qs.split("&")]
    index = data.draw(st.integers(0, len(pairs) - 1))
    how = data.draw(st.sampled_from(["value", "drop", "dup", "append"]))
    if how == "value":
        new = data.draw(st.text(max_size=30).map(lambda t: quote(t, safe="")).filter(lambda v: v != pairs[index][-1]))
        pairs[index] = [pairs[index][0], new]
    elif how == "drop":
        pairs.pop(index)
    elif how == "dup":
        # After the original: a bogus X-Amz-Signature placed before the valid one is ignored (the last one counts),
        # which changes nothing the signature covers, so it is no mutation of the signed request.
        value = data.draw(st.text(min_size=1, max_size=10).map(lambda t: quote(t, safe="")).filter(
            lambda v: v != pairs[index][-1]))
        pairs.insert(index + 1, [pairs[index][0], value])
    else:
        pairs.append(["MessageBody", "other"])
    mutated_path = path + "?" + "&".join("=".join(p) for p in pairs)
    send(secured, replace(request, path=mutated_path))


# Request lines, header blocks and bodies the HTTP parser must reject (or answer) without falling over.
REQUEST_LINES = (b"GET / HTTP/1.1", b"POST / HTTP/1.1", b"GET /health HTTP/1.1", b"GET /metrics HTTP/1.0",
                 b"GET " + CERT_PATH.encode() + b" HTTP/1.1", b"GET / HTTP/2.0", b"GET / HTTP/0.9", b"GET /",
                 b"GET", b"", b" / HTTP/1.1", b"GET  / HTTP/1.1", b"G\x00T / HTTP/1.1", b"BREW / HTTP/1.1",
                 b"GET /\x00 HTTP/1.1", b"GET /a b HTTP/1.1", b"GET http://x/ HTTP/1.1", b"CONNECT x:1 HTTP/1.1",
                 b"GET * HTTP/1.1", b"OPTIONS * HTTP/1.1", b"PRI * HTTP/2.0", b"DELETE /health HTTP/1.1",
                 b"POST /?Action=ListQueues HTTP/1.1", b"GET /?Action=GetCallerIdentity&Version=2011-06-15 HTTP/1.1",
                 b"GET /" + b"a" * 70_000 + b" HTTP/1.1", b"POST /health HTTP/1.1", b"PUT /metrics HTTP/1.1")
HEADER_LINES = (b"Host: x", b"Host:", b"Host x", b" Host: x", b"Host : x", b"\tfolded", b"Content-Length: 5",
                b"Content-Length: -5", b"Content-Length: 99999999999999999999", b"Content-Length: 1, 2",
                b"Transfer-Encoding: chunked", b"Transfer-Encoding: chunked, gzip", b"Transfer-Encoding: xchunked",
                b"X-Amz-Target: AmazonSQS.ListQueues", b"X-Amz-Target: Kinesis_20131202.ListStreams",
                b"Content-Type: application/x-amz-json-1.0", b"Content-Type: application/x-amz-cbor-1.1",
                b"Content-Type: application/x-www-form-urlencoded", b"Expect: 100-continue", b"Expect: 200-ok",
                b"Connection: close", b"Connection: Upgrade", b"Upgrade: websocket", b"X: \x00\x01\xff",
                b"\xff\xfe: x", b"X-Long: " + b"v" * 70_000, b": empty-name", b"Authorization: AWS4-HMAC-SHA256")
BODIES = (b"", b"{}", b"0\r\n\r\n", b"5\r\nhello\r\n0\r\n\r\n", b"zz\r\nhi\r\n0\r\n\r\n",
          b"ffffffffffffffffff\r\n", b"-1\r\n\r\n", b"3;ext=1\r\nabc\r\n0\r\nTrailer: x\r\n\r\n",
          b"Action=ListQueues", b"\x00" * 40, b"{" * 3000, b"\xa0")


@st.composite
def raw_http(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["assembled", "assembled", "assembled", "binary", "pipelined", "mutated"]))
    if kind == "binary":
        return draw(st.binary(min_size=1, max_size=400))
    line = draw(st.one_of(st.sampled_from(REQUEST_LINES), st.binary(max_size=40)))
    headers = draw(st.lists(st.one_of(st.sampled_from(HEADER_LINES), st.binary(max_size=30).map(
        lambda b: b.replace(b"\r", b"").replace(b"\n", b""))), max_size=6))
    body = draw(st.one_of(st.sampled_from(BODIES), st.binary(max_size=100)))
    data = b"\r\n".join([line, *headers]) + b"\r\n\r\n" + body
    if kind == "pipelined":
        data = data + b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n" + draw(st.binary(max_size=50))
    if kind == "mutated" and data:
        at = draw(st.integers(0, len(data) - 1))
        data = data[:at] + draw(st.binary(min_size=1, max_size=4)) + data[at + 1:]
    return data


@fuzz_settings(120)
@given(data=raw_http())
def test_raw_http_garbage_gets_an_error_or_a_clean_close(target: Target, data: bytes) -> None:
    result = exchange(target.port, data)
    assert result.trailing == b"", result
    for reply in result.replies:
        if reply.status == 200:
            continue  # a request the garbage happened to form validly (/health, /metrics, the certificate)
        assert_client_error(reply)


@fuzz_settings(60)
@given(data=st.data())
def test_fuzzed_subscribe_to_shard_is_refused_in_its_protocol(target: Target, data: st.DataObject) -> None:
    protocol = PROTOCOLS[data.draw(st.sampled_from(["kinesis-json", "kinesis-cbor"]))]
    names = ["ConsumerARN", "ShardId", "StartingPosition", "Type", "SequenceNumber", "Timestamp"]
    body = data.draw(cbor_bodies(target, names) if protocol.name == "kinesis-cbor" else json_bodies(target, names))
    request = sign(target, base_request(protocol, "SubscribeToShard", body), "kinesis")
    if data.draw(st.booleans()):
        request = data.draw(mutated(request))
    result = exchange(target.port, request.to_bytes())
    assert result.trailing == b"", result
    if request.framed:
        one_reply(result)
    for reply in result.replies:
        assert_client_error(reply)
        if reply.status < 413 and "x-amz-target" in {n.lower() for n, _ in request.headers}:
            assert reply.content_type != "text/xml", reply  # a target request is answered in JSON or CBOR
