"""Fuzz the gRPC API of a real server with malformed protobuf bytes: every answer is a gRPC status, never a crash.

Raw channel calls (no serializer) send arbitrary bytes and protobuf-shaped junk (unknown fields, wrong wire types,
lengths past the end, deep nesting) to every method of every broker service. A status is fine when it names the
client's mistake (INVALID_ARGUMENT, NOT_FOUND, ...); UNKNOWN, INTERNAL, DATA_LOSS or UNAVAILABLE (the server fell
over) fail. Afterwards the server is healthy and the seeded queues, stream and topic read back unchanged. On a
node with ``--credentials`` every call of the client API is UNAUTHENTICATED, unless its bytes do not parse: those
are INVALID_ARGUMENT everywhere (broker/grpc_api/parse_guard.py answers them before anything reads them).
"""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.message import DecodeError, Message
from google.protobuf.message_factory import GetMessageClass
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import proto.broker.v1
from tests.integration.conftest import make_client, make_sqs_client
from tests.integration.server import RaftMQServer
from tests.integration.test_fuzz_support import exchange, one_reply, request_bytes, seed_state, snapshot

SCALE = int(os.environ.get("RAFTMQ_FUZZ_SCALE", "20" if os.environ.get("RAFTMQ_SLOW") == "1" else "1"))
CALL_TIMEOUT = 5.0
STREAM_TIMEOUT = 1.5  # a stream that is still open after this long is alive, not broken
CLIENT_MISTAKES = frozenset({
    grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND, grpc.StatusCode.ALREADY_EXISTS,
    grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.OUT_OF_RANGE, grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNIMPLEMENTED,
    grpc.StatusCode.ABORTED,
})


@dataclass(frozen=True, slots=True)
class Method:
    path: str  # /raftmq.broker.v1.Queues/Send
    client_streaming: bool
    server_streaming: bool
    request: type[Message]

    def parses(self, payload: bytes) -> bool:
        """Whether protobuf itself can read ``payload`` as this method's request."""
        try:
            self.request.FromString(payload)
        except DecodeError:
            return False
        return True


def broker_methods() -> list[Method]:
    """Every RPC of every service the broker's protos define (found, not listed, so new services are fuzzed too)."""
    methods: list[Method] = []
    for info in pkgutil.iter_modules(proto.broker.v1.__path__):
        if not info.name.endswith("_pb2"):
            continue
        module = importlib.import_module(f"proto.broker.v1.{info.name}")
        for service in module.DESCRIPTOR.services_by_name.values():
            for m in service.methods:
                methods.append(Method(f"/{service.full_name}/{m.name}", m.client_streaming, m.server_streaming,
                                      GetMessageClass(m.input_type)))
    return sorted(methods, key=lambda m: m.path)


METHODS = broker_methods()


# -- protobuf-shaped junk --------------------------------------------------------------------------------------

def _varint(n: int) -> bytes:
    out = bytearray()
    n &= (1 << 70) - 1
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


@st.composite
def protobuf_junk(draw: st.DrawFn, depth: int = 0) -> bytes:
    out = bytearray()
    for _ in range(draw(st.integers(0, 6))):
        number = draw(st.one_of(st.integers(1, 12), st.integers(0, 2**29 + 5)))
        wire = draw(st.integers(0, 7))
        out += _varint(number << 3 | wire)
        if wire == 0:
            out += _varint(draw(st.one_of(st.integers(0, 300), st.integers(0, 2**64 - 1), st.integers(2**64, 2**70))))
        elif wire == 1:
            out += draw(st.binary(min_size=8, max_size=8))
        elif wire == 2:
            payload = draw(protobuf_junk(depth + 1)) if depth < 3 and draw(st.booleans()) else draw(
                st.one_of(st.text(max_size=20).map(lambda t: t.encode()), st.binary(max_size=20)))
            length = len(payload) if draw(st.integers(0, 5)) else draw(st.integers(0, 2**32))
            out += _varint(length) + payload
        elif wire == 5:
            out += draw(st.binary(min_size=4, max_size=4))
        # 3/4 (groups) and 6/7 (no such wire type) carry nothing
    return bytes(out)


def payloads() -> st.SearchStrategy[bytes]:
    nested = st.integers(1, 2000).map(lambda n: b"\x0a\x7f" * n)  # field 1, length 127, over and over
    return st.one_of(protobuf_junk(), st.binary(max_size=200), nested, st.just(b""))


# -- servers ---------------------------------------------------------------------------------------------------

class SecuredServer(RaftMQServer):
    def __init__(self, data_dir: Path, credentials: Path) -> None:
        super().__init__(data_dir)
        self.credentials = credentials

    def args(self) -> list[str]:
        return [*super().args(), "--credentials", str(self.credentials)]


@dataclass(slots=True)
class GrpcTarget:
    server: RaftMQServer
    channel: grpc.Channel
    clients: tuple[Any, Any, Any]
    before: dict[str, Any]
    seed: Any


def _start(server: RaftMQServer, key: tuple[str, str]) -> GrpcTarget:
    ready = server.start()
    kw = {"aws_access_key_id": key[0], "aws_secret_access_key": key[1]}
    clients = (make_sqs_client(server.endpoint, **kw), make_client("kinesis", server.endpoint, **kw),
               make_client("sns", server.endpoint, **kw))
    seed = seed_state(*clients, "grpc-seed")
    channel = grpc.insecure_channel(f"127.0.0.1:{ready.grpc_port}")
    return GrpcTarget(server, channel, clients, snapshot(seed, *clients), seed)


def _finish(target: GrpcTarget) -> None:
    target.channel.close()
    assert target.server.running, target.server.stderr_text()
    assert target.server.ready is not None
    health = one_reply(exchange(target.server.ready.port, request_bytes("GET", "/health", [("Host", "x")], b"")))
    assert health.status == 200, health
    assert snapshot(target.seed, *target.clients) == target.before
    assert unexpected_tracebacks(target.server.stderr_text(limit=1 << 30)) == []


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GrpcTarget]:
    server = RaftMQServer(tmp_path_factory.mktemp("fuzz-grpc") / "data")
    try:
        target = _start(server, ("AKIAIOSFODNN7EXAMPLE", "x"))
        yield target
        _finish(target)
        server.stop()
    finally:
        server.close()


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GrpcTarget]:
    base = tmp_path_factory.mktemp("fuzz-grpc-secured")
    key = ("AKIAFUZZGRPC00000001", "grpc-secret")
    credentials = base / "credentials.json"
    credentials.write_text(json.dumps({"accounts": [
        {"id": "111111111111", "root_keys": [{"id": key[0], "secret": key[1]}], "users": []}]}))
    server = SecuredServer(base / "data", credentials)
    try:
        target = _start(server, key)
        yield target
        _finish(target)
        server.stop()
    finally:
        server.close()


def unexpected_tracebacks(stderr: str) -> list[str]:
    """Every logged traceback: none is expected, not even for bytes that do not parse (broker.grpc_api.parse_guard
    answers those before grpcio or a servicer sees them)."""
    lines = stderr.splitlines()
    return [lines[i + 1] if i + 1 < len(lines) else line
            for i, line in enumerate(lines) if line.startswith("Traceback")]


def call(channel: grpc.Channel, method: Method, payload: bytes) -> grpc.StatusCode:
    """One raw call; the status it ended with (OK for a success)."""
    try:
        if method.client_streaming and method.server_streaming:
            responses = channel.stream_stream(method.path)(iter([payload, payload]), timeout=STREAM_TIMEOUT)
            for _ in responses:
                pass
        elif method.client_streaming:
            channel.stream_unary(method.path)(iter([payload]), timeout=CALL_TIMEOUT)
        elif method.server_streaming:
            for _ in channel.unary_stream(method.path)(payload, timeout=STREAM_TIMEOUT):
                pass
        else:
            channel.unary_unary(method.path)(payload, timeout=CALL_TIMEOUT)
    except grpc.RpcError as exc:
        code: grpc.StatusCode = exc.code()
        return code
    return grpc.StatusCode.OK


def fuzz_settings(examples: int) -> settings:
    return settings(max_examples=examples * SCALE, deadline=None, derandomize=SCALE == 1, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def test_every_broker_service_is_fuzzed() -> None:
    services = {m.path.split("/")[1] for m in METHODS}
    assert {"raftmq.broker.v1.Queues", "raftmq.broker.v1.Streams", "raftmq.broker.v1.Topics"} <= services


@fuzz_settings(6)
@pytest.mark.parametrize("method", METHODS, ids=lambda m: m.path.rsplit(".", 1)[-1])
@given(payload=payloads())
def test_malformed_protobuf_gets_a_grpc_status(dev: GrpcTarget, method: Method, payload: bytes) -> None:
    code = call(dev.channel, method, payload)
    allowed = CLIENT_MISTAKES | {grpc.StatusCode.OK}
    if not method.parses(payload):
        allowed = {grpc.StatusCode.INVALID_ARGUMENT}  # broker.grpc_api.parse_guard, before anything reads it
    if method.server_streaming or method.path.endswith(("/Receive", "/Read")):
        allowed |= {grpc.StatusCode.DEADLINE_EXCEEDED}  # long polls and open streams outlive the short timeout
    assert code in allowed, f"{method.path} answered {code} to {payload!r}"


@fuzz_settings(3)
@pytest.mark.parametrize("method", [m for m in METHODS if m.path.startswith(
    ("/raftmq.broker.v1.Queues/", "/raftmq.broker.v1.Streams/", "/raftmq.broker.v1.Topics/"))],
    ids=lambda m: m.path.rsplit(".", 1)[-1])
@given(payload=payloads())
def test_a_node_with_credentials_refuses_every_call_unauthenticated(secured: GrpcTarget, method: Method,
                                                                    payload: bytes) -> None:
    code = call(secured.channel, method, payload)
    allowed = {grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.UNIMPLEMENTED}
    if not method.parses(payload):
        allowed = {grpc.StatusCode.INVALID_ARGUMENT}  # parsed (and refused) before the token is looked at
    assert code in allowed, (method.path, code)
