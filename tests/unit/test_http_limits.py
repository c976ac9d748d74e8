"""Abuse limits of HttpProtocol through an in-memory transport: body caps before buffering, header limits, the
connection cap and the timeouts, with the sweep driven at chosen instants instead of waiting for them."""

from __future__ import annotations

import asyncio
from typing import Any

import cbor2
import orjson
import pytest

from broker.http.limits import HttpLimits, limit_response, parse_body_caps, scope_service
from broker.http.protocol import HttpProtocol, ServerState
from broker.http.types import HttpRequest, HttpResponse
from broker.metrics import REGISTRY
from tests.unit.test_http_protocol import MemoryTransport, Responses

CAPS = {"sqs": 100, "kinesis": 1000, "sns": 50, "sts": 10}
SQS_HEAD = "X-Amz-Target: AmazonSQS.SendMessage\r\nContent-Type: application/x-amz-json-1.0\r\n"
KINESIS_HEAD = "X-Amz-Target: Kinesis_20131202.PutRecord\r\nContent-Type: application/x-amz-json-1.1\r\n"


def limits(**overrides: Any) -> HttpLimits:
    options: dict[str, Any] = {"body_bytes": CAPS, "header_timeout": 10.0, "body_timeout": 10.0,
                               "min_body_rate": 100.0, "idle_timeout": 30.0}
    options.update(overrides)
    return HttpLimits(**options)


def rejected(reason: str) -> float:
    return REGISTRY.get_sample_value("raftmq_rejected_requests_total", {"reason": reason}) or 0.0


class Conn:
    """One protocol on a memory transport."""

    def __init__(self, state: ServerState) -> None:
        self.transport = MemoryTransport()
        self.protocol = HttpProtocol(state)
        self.protocol.connection_made(self.transport)  # type: ignore[arg-type]

    def send(self, data: bytes | str) -> None:
        self.protocol.data_received(data.encode() if isinstance(data, str) else data)

    def responses(self) -> list[tuple[int, bytes]]:
        return Responses().feed(bytes(self.transport.out))


def server(lim: HttpLimits) -> tuple[ServerState, list[HttpRequest], asyncio.Event]:
    seen: list[HttpRequest] = []
    gate = asyncio.Event()
    gate.set()

    async def handler(request: HttpRequest) -> HttpResponse:
        seen.append(request)
        await gate.wait()
        return HttpResponse(200, b"ok")

    return ServerState(handler, None, 0, lim), seen, gate


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def post(head: str, body: bytes, path: str = "/") -> bytes:
    return f"POST {path} HTTP/1.1\r\nHost: h\r\n{head}Content-Length: {len(body)}\r\n\r\n".encode() + body


# -- body caps --------------------------------------------------------------------------------------------------


async def test_body_cap_is_per_service_and_checked_on_the_announced_length() -> None:
    state, seen, _ = server(limits())
    kinesis = Conn(state)
    kinesis.send(f"POST / HTTP/1.1\r\nHost: h\r\n{KINESIS_HEAD}Content-Length: 900\r\n\r\n")
    await settle()
    assert kinesis.transport.out == b""  # 900 bytes is fine for Kinesis: the server waits for them
    sqs = Conn(state)
    before = rejected("body_too_large")
    sqs.send(f"POST / HTTP/1.1\r\nHost: h\r\n{SQS_HEAD}Content-Length: 1000000000\r\n\r\n")
    await settle()
    [(status, body)] = sqs.responses()
    assert status == 413
    assert orjson.loads(body)["__type"] == "RequestEntityTooLarge"
    assert b"x-amzn-query-error: RequestEntityTooLarge;Sender" in sqs.transport.out
    assert b"Connection: close" in sqs.transport.out
    assert rejected("body_too_large") == before + 1
    assert seen == []


async def test_exactly_the_cap_is_served() -> None:
    state, seen, _ = server(limits())
    conn = Conn(state)
    conn.send(post(SQS_HEAD, b"x" * 100))
    await settle()
    assert [s for s, _ in conn.responses()] == [200]
    assert len(seen[0].body) == 100


async def test_chunked_body_is_refused_as_its_chunks_pass_the_cap() -> None:
    state, seen, _ = server(limits())
    conn = Conn(state)
    conn.send(f"POST / HTTP/1.1\r\nHost: h\r\n{SQS_HEAD}Transfer-Encoding: chunked\r\n\r\n")
    conn.send(b"40\r\n" + b"a" * 64 + b"\r\n")
    await settle()
    assert conn.transport.out == b""  # 64 of 100 bytes: still reading
    conn.send(b"40\r\n" + b"b" * 64 + b"\r\n")  # 128 > 100, and the body has not ended
    await settle()
    assert [s for s, _ in conn.responses()] == [413]
    assert seen == []


async def test_credential_scope_names_the_service_of_a_query_request() -> None:
    state, _, _ = server(limits())
    conn = Conn(state)
    auth = ("Authorization: AWS4-HMAC-SHA256 Credential=AKID/20261128/us-east-1/sns/aws4_request, "
            "SignedHeaders=host, Signature=x\r\n")
    conn.send(post(auth + "Content-Type: application/x-www-form-urlencoded\r\n", b"Action=Publish&" + b"m" * 60))
    await settle()
    [(status, body)] = conn.responses()
    assert status == 413  # 75 bytes > SNS's 50, though under SQS's 100
    assert body.startswith(b"<ErrorResponse><Error><Type>Sender</Type><Code>RequestEntityTooLarge</Code>")


async def test_cbor_requests_are_refused_in_cbor() -> None:
    state, _, _ = server(limits())
    conn = Conn(state)
    conn.send(post("X-Amz-Target: Kinesis_20131202.PutRecord\r\nContent-Type: application/x-amz-cbor-1.1\r\n",
                   b"\xa0" * 1001))
    await settle()
    [(status, body)] = conn.responses()
    assert status == 413
    assert cbor2.loads(body)["__type"] == "RequestEntityTooLarge"


def test_body_cap_lookup() -> None:
    lim = HttpLimits()
    assert lim.body_cap({"x-amz-target": "Kinesis_20131202.PutRecords"}) == 15 << 20
    assert lim.body_cap({"x-amz-target": "AmazonSQS.SendMessageBatch"}) == 4 << 20
    assert lim.body_cap({"authorization": "AWS4-HMAC-SHA256 Credential=A/20261128/eu-west-1/sts/aws4_request"}) \
        == 64 << 10
    assert lim.body_cap({}) == 4 << 20  # unsigned / presigned Query: the largest Query service's cap
    assert lim.body_cap({"x-amz-target": "Unknown.Op"}) == 4 << 20
    assert HttpLimits(body_bytes={"sqs": 5}, default_body_bytes=7).body_cap({"x-amz-target": "Other.X"}) == 7
    assert scope_service("AWS4-HMAC-SHA256 Credential=broken") is None
    assert scope_service(None) is None


def test_parse_body_caps() -> None:
    assert parse_body_caps("sqs=4M, kinesis=100,sts=2K") == {"sqs": 4 << 20, "kinesis": 100, "sts": 2048}
    for bad in ("sqs", "sqs=lots", "=5"):
        with pytest.raises(ValueError):
            parse_body_caps(bad)


def test_limits_reject_nonsense() -> None:
    for bad in ({"header_timeout": 0}, {"min_body_rate": 0}, {"max_connections": 0}, {"body_bytes": {"sqs": -1}}):
        with pytest.raises(ValueError):
            HttpLimits(**bad)


def test_limit_response_picks_the_protocol() -> None:
    query = limit_response(408, "RequestTimeout", "slow", {}, "Action=ListQueues", "GET")
    assert query.content_type == "text/xml" and b"<Code>RequestTimeout</Code>" in query.body
    json11 = limit_response(413, "RequestEntityTooLarge", "big", {"content-type": "application/x-amz-json-1.1"})
    assert json11.content_type == "application/x-amz-json-1.1"
    assert ("x-amzn-query-error", "RequestEntityTooLarge;Sender") not in json11.headers
    unavailable = limit_response(503, "ServiceUnavailable", "busy", {})
    assert orjson.loads(unavailable.body) == {"__type": "ServiceUnavailable", "message": "busy"}


# -- headers ----------------------------------------------------------------------------------------------------


async def test_too_many_headers_get_431() -> None:
    state, seen, _ = server(limits(max_headers=5))
    conn = Conn(state)
    before = rejected("too_many_headers")
    conn.send("GET / HTTP/1.1\r\n" + "".join(f"X-H{i}: v\r\n" for i in range(6)) + "\r\n")
    await settle()
    assert [s for s, _ in conn.responses()] == [431]
    assert rejected("too_many_headers") == before + 1
    ok = Conn(state)
    ok.send("GET / HTTP/1.1\r\n" + "".join(f"X-H{i}: v\r\n" for i in range(5)) + "\r\n")
    await settle()
    assert [s for s, _ in ok.responses()] == [200]
    assert len(seen) == 1


async def test_oversize_header_block_and_url() -> None:
    state, _, _ = server(limits(max_header_bytes=200, max_url_bytes=100))
    big = Conn(state)
    big.send("GET / HTTP/1.1\r\nX-Big: " + "v" * 300 + "\r\n\r\n")
    long_url = Conn(state)
    long_url.send("GET /" + "u" * 200 + " HTTP/1.1\r\n\r\n")
    await settle()
    assert [s for s, _ in big.responses()] == [431]
    assert [s for s, _ in long_url.responses()] == [414]


# -- connections --------------------------------------------------------------------------------------------------


async def test_connection_cap_refuses_the_next_one_with_503_until_one_leaves() -> None:
    state, _, _ = server(limits(max_connections=2))
    first, second = Conn(state), Conn(state)
    before = rejected("connection_limit")
    third = Conn(state)
    assert [s for s, _ in third.responses()] == [503]
    assert b"Connection: close" in third.transport.out
    assert third.protocol not in state.connections and len(state.connections) == 2
    assert rejected("connection_limit") == before + 1
    third.send("GET / HTTP/1.1\r\n\r\n")  # read and thrown away, never served
    await settle()
    assert len(third.responses()) == 1
    first.protocol.connection_lost(None)
    fourth = Conn(state)
    fourth.send("GET / HTTP/1.1\r\n\r\n")
    await settle()
    assert [s for s, _ in fourth.responses()] == [200]
    assert second.protocol in state.connections


# -- timeouts (a fake clock; the sweep is called at chosen instants) -----------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def timed_server(lim: HttpLimits) -> tuple[ServerState, list[HttpRequest], asyncio.Event, Clock]:
    state, seen, gate = server(lim)
    clock = Clock()
    state.clock = clock
    return state, seen, gate, clock


async def test_a_slow_head_gets_408_and_is_closed() -> None:
    state, seen, _, clock = timed_server(limits())
    conn = Conn(state)
    conn.send("POST / HTTP/1.1\r\nHost: h\r\nX-Slow: ")
    assert state.sweep_timeouts(clock.now + 9.5) == 0
    before = rejected("header_timeout")
    assert state.sweep_timeouts(clock.now + 10.5) == 1
    await settle()
    [(status, body)] = conn.responses()
    assert status == 408
    assert orjson.loads(body)["__type"] == "RequestTimeout"
    assert rejected("header_timeout") == before + 1
    assert seen == []


async def test_the_first_head_is_timed_from_the_connection_start() -> None:
    state, _, _, clock = timed_server(limits())
    conn = Conn(state)
    clock.now += 9  # silent for 9 s, then one byte: no fresh 10 s
    conn.send("G")
    assert state.sweep_timeouts(clock.now + 1.5) == 1


async def test_a_silent_new_connection_is_closed_after_the_header_timeout() -> None:
    state, _, _, clock = timed_server(limits(idle_timeout=None))
    conn = Conn(state)
    assert state.sweep_timeouts(clock.now + 9) == 0
    assert state.sweep_timeouts(clock.now + 11) == 1
    assert conn.transport.closed.is_set() and conn.transport.out == b""


async def test_a_trickled_body_is_cut_but_a_slow_steady_one_is_not() -> None:
    state, seen, _, clock = timed_server(limits(body_bytes={"sqs": 10_000}))
    steady, trickle = Conn(state), Conn(state)
    head = f"POST / HTTP/1.1\r\nHost: h\r\n{SQS_HEAD}Content-Length: 5000\r\n\r\n"
    steady.send(head)
    trickle.send(head)
    steady.send(b"s" * 2000)  # 2000 bytes at 100 B/s earn 20 s on top of the 10 s body timeout
    trickle.send(b"t")
    before = rejected("body_timeout")
    assert state.sweep_timeouts(clock.now + 10.5) == 1
    await settle()
    assert [s for s, _ in trickle.responses()] == [408]
    assert rejected("body_timeout") == before + 1
    assert steady.transport.out == b""
    assert state.sweep_timeouts(clock.now + 29) == 0
    steady.send(b"s" * 3000)
    await settle()
    assert [s for s, _ in steady.responses()] == [200]
    assert len(seen) == 1 and len(seen[0].body) == 5000


async def test_no_timeout_while_a_handler_runs_then_the_idle_clock_starts() -> None:
    state, seen, gate, clock = timed_server(limits())
    gate.clear()  # a long poll: the handler waits
    conn = Conn(state)
    conn.send("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n")
    await settle()
    assert len(seen) == 1
    clock.now += 1000
    assert state.sweep_timeouts() == 0  # far past every timeout, but the server is the one being waited for
    assert not conn.transport.closed.is_set()
    gate.set()
    await settle()
    assert [s for s, _ in conn.responses()] == [200]
    assert state.sweep_timeouts(clock.now + 29) == 0  # keep-alive within the idle timeout
    idle_before = REGISTRY.get_sample_value("raftmq_http_idle_closed_total") or 0.0
    assert state.sweep_timeouts(clock.now + 31) == 1
    assert conn.transport.closed.is_set()
    assert REGISTRY.get_sample_value("raftmq_http_idle_closed_total") == idle_before + 1


async def test_a_later_request_is_timed_from_its_first_byte_not_from_the_idle_gap() -> None:
    state, seen, _, clock = timed_server(limits(idle_timeout=100.0))
    conn = Conn(state)
    conn.send("GET /1 HTTP/1.1\r\nHost: h\r\n\r\n")
    await settle()
    clock.now += 50  # idle keep-alive for 50 s (the periodic sweep runs), then the next request starts arriving
    assert state.sweep_timeouts() == 0
    conn.send("GET /2 HTTP/1.1\r\nHo")
    assert state.sweep_timeouts(clock.now + 9) == 0
    assert state.sweep_timeouts(clock.now + 11) == 1
    await settle()
    assert [s for s, _ in conn.responses()] == [200, 408]
    assert len(seen) == 1


async def test_the_sweep_stops_with_the_last_connection() -> None:
    state, _, _ = server(limits())
    conn = Conn(state)
    assert state._sweep is not None
    conn.protocol.connection_lost(None)
    assert state._sweep is None and not state.connections


# -- a real socket: the sweep runs by itself ----------------------------------------------------------------------


async def test_slowloris_over_a_real_socket_is_closed_by_the_sweep() -> None:
    from broker.http.server import HttpServer

    async def handler(request: HttpRequest) -> HttpResponse:
        return HttpResponse(200, b"ok")

    srv = HttpServer(handler, "127.0.0.1", 0, limits=HttpLimits(header_timeout=0.2, idle_timeout=5.0))
    await srv.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        writer.write(b"GET / HTTP/1.1\r\nHost: h\r\nX-Slow: ")
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), 3.0)  # read() returns at EOF: the server closed
        assert data.startswith(b"HTTP/1.1 408 ")
        writer.close()
        reader2, writer2 = await asyncio.open_connection("127.0.0.1", srv.port)
        writer2.write(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        assert (await asyncio.wait_for(reader2.readuntil(b"ok"), 3.0)).startswith(b"HTTP/1.1 200 ")
        writer2.close()
    finally:
        await srv.stop(1.0)


def test_node_options_become_limits() -> None:
    from broker.config import NodeConfig
    from broker.limits_wiring import http_limits

    default = http_limits(NodeConfig())
    assert default == HttpLimits()
    custom = http_limits(NodeConfig(max_connections=0, header_timeout_s=0, body_timeout_s=5, idle_timeout_s=-1,
                                    max_body_bytes="sqs=1K"))
    assert custom.max_connections is None and custom.header_timeout is None and custom.idle_timeout is None
    assert custom.body_timeout == 5
    assert custom.body_bytes["sqs"] == 1024 and custom.body_bytes["kinesis"] == 15 << 20
    with pytest.raises(ValueError):
        http_limits(NodeConfig(max_body_bytes="sqs=big"))
