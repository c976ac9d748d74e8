"""Shared pieces of the fuzz tests (no tests here): raw HTTP exchanges, AWS error-shape checks, seeded state.

Why a raw socket and not an HTTP library: malformed request lines, duplicate or broken Content-Length headers and
invalid bytes in header values must reach the server as sent. Each exchange opens a connection, writes the bytes,
half-closes (so the server sees the end of the input) and reads until the server closes; the bytes read are then
parsed as zero or more HTTP/1.1 responses, so a malformed answer fails the test as surely as a 500 or a hang does.
"""

from __future__ import annotations

import glob
import socket
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cbor2
import orjson

from broker.model import errors as model_errors
from broker.model import kinesis_errors

REPO = Path(__file__).resolve().parents[2]
EXCHANGE_TIMEOUT = 15.0

# Error codes AWS services share and that are not in the service models; the rest come from the models and from
# the broker's error classes (a code no AWS service uses would not be a well-formed AWS error).
COMMON_CODES = frozenset({
    "AccessDenied", "AccessDeniedException", "AuthorizationError", "AuthorizationErrorException",
    "IncompleteSignature", "IncompleteSignatureException", "InvalidAction", "InvalidClientTokenId",
    "InvalidParameterCombination", "InvalidParameterValue", "InvalidQueryParameter", "InvalidSignatureException",
    "MalformedQueryString", "MissingAction", "MissingAuthenticationToken", "MissingAuthenticationTokenException",
    "MissingParameter", "OptInRequired", "RequestExpired", "RequestEntityTooLarge", "SerializationException",
    "ServiceUnavailable", "SignatureDoesNotMatch", "Throttling", "ThrottlingException",
    "UnknownOperationException", "UnrecognizedClientException", "ValidationError", "ValidationException",
    # What the HTTP server answers itself before any AWS service sees the request.
    "BadRequest", "RequestURITooLong", "RequestHeaderFieldsTooLarge", "MethodNotAllowed", "NotImplemented",
    "LengthRequired", "RequestTimeout",
})


def _model_codes() -> frozenset[str]:
    codes: set[str] = set()
    for path in glob.glob(str(REPO / "proto" / "aws" / "*.json")):
        shapes = orjson.loads(Path(path).read_bytes()).get("shapes", {})
        for name, shape in shapes.items():
            if shape.get("exception") or "error" in shape:
                codes.add(name)
                code = shape.get("error", {}).get("code")
                if code:
                    codes.add(code)
    for module in (model_errors, kinesis_errors):
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, model_errors.BrokerError):
                codes.add(value.code)
                if value.query_code:
                    codes.add(value.query_code)
    return frozenset(codes)


KNOWN_CODES = COMMON_CODES | _model_codes()
SERVER_FAULTS = frozenset({"InternalFailure", "InternalError", "InternalFailureException", "InternalErrorException"})
KNOWN_CLIENT_CODES = KNOWN_CODES - SERVER_FAULTS


# -- raw HTTP ------------------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip()


@dataclass(slots=True)
class Exchange:
    """What came back on one connection: the responses in order and whether bytes followed that did not parse."""

    replies: list[Reply] = field(default_factory=list)
    trailing: bytes = b""


def exchange(port: int, data: bytes, *, timeout: float = EXCHANGE_TIMEOUT) -> Exchange:
    """Write ``data``, half-close and read until the server closes; a server that never closes fails the test."""
    deadline = time.monotonic() + timeout
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        except OSError:  # EPIPE, ECONNRESET, ENOTCONN: the server refused the request early and closed
            pass  # what it wrote first is still readable
        chunks: list[bytes] = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"server did not close the connection within {timeout} s after {data[:200]!r}")
            sock.settimeout(left)
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            except TimeoutError:
                raise AssertionError(f"server hung for {timeout} s after {data[:200]!r}") from None
            if not chunk:
                break
            chunks.append(chunk)
    return parse_responses(b"".join(chunks))


def parse_responses(raw: bytes) -> Exchange:
    """Split what the server wrote into HTTP/1.1 responses (Content-Length or chunked bodies)."""
    result = Exchange()
    rest = raw
    while rest:
        head_end = rest.find(b"\r\n\r\n")
        if head_end < 0:
            result.trailing = rest
            return result
        lines = rest[:head_end].split(b"\r\n")
        parts = lines[0].split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
            result.trailing = rest
            return result
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if not sep:
                result.trailing = rest
                return result
            headers[name.decode("latin-1").strip().lower()] = value.decode("latin-1").strip()
        rest = rest[head_end + 4:]
        if parts[1].startswith(b"1"):
            continue  # an interim answer (100 Continue) has no body; the final response follows
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body, rest = _dechunk(rest)
        else:
            size = int(headers.get("content-length", "0"))
            body, rest = rest[:size], rest[size:]
        result.replies.append(Reply(int(parts[1]), headers, body))
    return result


def _dechunk(data: bytes) -> tuple[bytes, bytes]:
    out: list[bytes] = []
    while True:
        line_end = data.find(b"\r\n")
        if line_end < 0:
            return b"".join(out), b""
        size = int(data[:line_end].split(b";")[0], 16)
        data = data[line_end + 2:]
        if size == 0:
            return b"".join(out), data[2:] if data.startswith(b"\r\n") else data
        out.append(data[:size])
        data = data[size + 2:]


def request_bytes(method: str, target: str, headers: Iterable[tuple[str | bytes, str | bytes]], body: bytes, *,
                  version: bytes = b"HTTP/1.1") -> bytes:
    """One request as written: headers in order, duplicates kept, values as given (bytes pass through)."""
    out = [method.encode("latin-1", "replace") + b" " + target.encode("latin-1", "replace") + b" " + version]
    for name, value in headers:
        n = name if isinstance(name, bytes) else name.encode("latin-1", "replace")
        v = value if isinstance(value, bytes) else value.encode("utf-8", "surrogatepass")
        out.append(n + b": " + v)
    return b"\r\n".join(out) + b"\r\n\r\n" + body


# -- what a well-formed AWS error looks like --------------------------------------------------------------------

def _strip(code: str) -> str:
    return code.rsplit("#", 1)[-1].split(":", 1)[0]


def cbor_loads(data: bytes) -> Any:
    """CBOR as the Java SDK reads it: tag 1 holds epoch milliseconds (cbor2 alone would read seconds)."""
    return cbor2.loads(data, semantic_decoders={1: lambda value, immutable: value})


def error_code(reply: Reply) -> str:
    """The AWS error code of an error reply in whatever protocol it is worded; fails if it is none of them."""
    kind = reply.content_type
    if kind in ("application/x-amz-json-1.0", "application/x-amz-json-1.1"):
        doc = orjson.loads(reply.body)
        assert isinstance(doc, dict) and isinstance(doc.get("__type"), str), reply
        assert isinstance(doc.get("message", doc.get("Message")), str), reply
        return _strip(doc["__type"])
    if kind == "application/x-amz-cbor-1.1":
        doc = cbor_loads(reply.body)
        assert isinstance(doc, dict) and isinstance(doc.get("__type"), str), reply
        assert isinstance(doc.get("message"), str), reply
        assert str(reply.headers.get("x-amzn-errortype", doc["__type"])).split(":")[0] == doc["__type"], reply
        return _strip(doc["__type"])
    if kind in ("text/xml", "application/xml"):
        root = ET.fromstring(reply.body)
        assert root.tag.split("}")[-1] == "ErrorResponse", reply
        ns = root.tag[:root.tag.index("}") + 1] if root.tag.startswith("{") else ""
        error = root.find(f"{ns}Error")
        assert error is not None, reply
        code = error.findtext(f"{ns}Code")
        assert code, reply
        assert error.find(f"{ns}Message") is not None, reply
        assert root.findtext(f"{ns}RequestId"), reply
        return code
    raise AssertionError(f"error reply in no AWS error format: {reply}")


def assert_client_error(reply: Reply, *, allow_503: bool = False) -> str:
    """4xx (503 only where allowed) with a body in an AWS error format and a code AWS uses."""
    assert 400 <= reply.status < 500 or (allow_503 and reply.status == 503), reply
    code = error_code(reply)
    assert code in KNOWN_CLIENT_CODES, f"unknown error code {code!r}: {reply}"
    return code


def assert_well_formed(reply: Reply) -> None:
    """A success in the protocol's format, or a well-formed client error."""
    if reply.status != 200:
        assert_client_error(reply)
        return
    kind = reply.content_type
    if kind in ("application/x-amz-json-1.0", "application/x-amz-json-1.1"):
        assert isinstance(orjson.loads(reply.body), dict), reply
    elif kind == "application/x-amz-cbor-1.1":
        assert isinstance(cbor_loads(reply.body), dict), reply
    elif kind in ("text/xml", "application/xml"):
        assert ET.fromstring(reply.body).tag.endswith("Response"), reply
    elif kind != "application/vnd.amazon.eventstream":
        raise AssertionError(f"200 in no AWS format: {reply}")


def one_reply(result: Exchange) -> Reply:
    """The answer to a request that parses as HTTP: exactly one response and nothing unparseable after it."""
    assert result.trailing == b"", result
    assert len(result.replies) == 1, result
    return result.replies[0]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


# -- seeded state ------------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Seed:
    """Resources filled before fuzzing; the fuzzers never name them validly where a request could succeed."""

    queue_url: str
    fifo_url: str
    queue_arn: str
    stream: str
    topic_arn: str


def seed_state(sqs: Any, kinesis: Any, sns: Any, prefix: str) -> Seed:
    queue_url = sqs.create_queue(QueueName=f"{prefix}-queue")["QueueUrl"]
    fifo_url = sqs.create_queue(QueueName=f"{prefix}-queue.fifo",
                                Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"})["QueueUrl"]
    for i in range(4):
        sqs.send_message(QueueUrl=queue_url, MessageBody=f"standard-{i}",
                         MessageAttributes={"n": {"DataType": "Number", "StringValue": str(i)}})
        sqs.send_message(QueueUrl=fifo_url, MessageBody=f"fifo-{i}", MessageGroupId=f"g{i % 2}")
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    stream = f"{prefix}-stream"
    kinesis.create_stream(StreamName=stream, ShardCount=2)
    for i in range(6):
        kinesis.put_record(StreamName=stream, Data=f"record-{i}".encode(), PartitionKey=f"pk-{i}")
    topic_arn = sns.create_topic(Name=f"{prefix}-topic")["TopicArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
    return Seed(queue_url, fifo_url, queue_arn, stream, topic_arn)


_COUNTS = ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
           "ApproximateNumberOfMessagesDelayed")


def _queue_snapshot(sqs: Any, url: str) -> dict[str, Any]:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    expected = int(attributes["ApproximateNumberOfMessages"])
    messages: dict[str, tuple[str, str, str]] = {}
    deadline = time.monotonic() + 10
    while len(messages) < expected and time.monotonic() < deadline:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0,
                                  MessageAttributeNames=["All"]).get("Messages", [])
        for m in got:
            messages[m["MessageId"]] = (m["Body"], m["MD5OfBody"], m.get("MD5OfMessageAttributes", ""))
    stable = {k: v for k, v in attributes.items()
              if k not in ("LastModifiedTimestamp", *_COUNTS)}  # counts are checked by the messages themselves
    return {"attributes": stable, "counts": {k: attributes[k] for k in _COUNTS}, "messages": messages}


def _stream_snapshot(kinesis: Any, stream: str) -> dict[str, Any]:
    summary = kinesis.describe_stream(StreamName=stream)["StreamDescription"]
    records: dict[str, list[tuple[str, bytes, str]]] = {}
    for shard in summary["Shards"]:
        iterator = kinesis.get_shard_iterator(StreamName=stream, ShardId=shard["ShardId"],
                                              ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        got = kinesis.get_records(ShardIterator=iterator, Limit=1000)["Records"]
        records[shard["ShardId"]] = [(r["SequenceNumber"], r["Data"], r["PartitionKey"]) for r in got]
    return {"status": summary["StreamStatus"], "retention": summary["RetentionPeriodHours"],
            "encryption": summary.get("EncryptionType"), "records": records}


def _topic_snapshot(sns: Any, topic_arn: str) -> dict[str, Any]:
    attributes = sns.get_topic_attributes(TopicArn=topic_arn)["Attributes"]
    subscriptions = sns.list_subscriptions_by_topic(TopicArn=topic_arn)["Subscriptions"]
    return {"attributes": attributes,
            "subscriptions": sorted((s["Protocol"], s["Endpoint"], s["SubscriptionArn"]) for s in subscriptions)}


def snapshot(seed: Seed, sqs: Any, kinesis: Any, sns: Any) -> dict[str, Any]:
    """Everything stored about the seeded resources, read back through the public APIs."""
    return {"queue": _queue_snapshot(sqs, seed.queue_url), "fifo": _queue_snapshot(sqs, seed.fifo_url),
            "stream": _stream_snapshot(kinesis, seed.stream), "topic": _topic_snapshot(sns, seed.topic_arn)}
