"""HttpProtocol through an in-memory transport: properties over any split of the input and any garbage, and flow
control in both directions."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httptools
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from broker.http.protocol import MAX_PIPELINE, HttpProtocol, ServerState
from broker.http.types import HttpRequest, HttpResponse

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class MemoryTransport:
    """The slice of asyncio.Transport the protocol uses, recording what it writes and when it closes."""

    def __init__(self) -> None:
        self.out = bytearray()
        self.closed = asyncio.Event()
        self.reading = True
        self.pauses = 0

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 5555) if name == "peername" else default

    def write(self, data: bytes) -> None:
        assert not self.closed.is_set(), "write after close"
        self.out += data

    def can_write_eof(self) -> bool:
        return False

    def write_eof(self) -> None:
        raise AssertionError("can_write_eof is False")

    def close(self) -> None:
        self.closed.set()

    abort = close

    def pause_reading(self) -> None:
        assert self.reading
        self.reading = False
        self.pauses += 1

    def resume_reading(self) -> None:
        assert not self.reading
        self.reading = True


class Responses:
    """Parses the server's output with httptools' response parser; any framing error fails the test."""

    def __init__(self) -> None:
        self.items: list[tuple[int, bytes]] = []
        self._body = b""
        self._parser = httptools.HttpResponseParser(self)

    def on_body(self, body: bytes) -> None:
        self._body += body

    def on_message_complete(self) -> None:
        self.items.append((self._parser.get_status_code(), self._body))
        self._body = b""

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:  # pragma: no cover - the server never switches protocols
            raise AssertionError("unexpected upgrade") from None
        return self.items


async def echo_path(request: HttpRequest) -> HttpResponse:
    await asyncio.sleep(0)  # a real suspension, so requests overlap the parsing of later ones
    return HttpResponse(200, f"{request.method} {request.path}?{request.query}|".encode() + request.body)


async def run(chunks: list[bytes], max_body_bytes: int = 2_200_000) -> tuple[MemoryTransport, list[tuple[int, bytes]]]:
    """Feed the chunks, then EOF; wait until the protocol closes the transport; parse what it wrote."""
    transport = MemoryTransport()
    protocol = HttpProtocol(ServerState(echo_path, None, max_body_bytes))
    protocol.connection_made(transport)  # type: ignore[arg-type]
    for chunk in chunks:
        protocol.data_received(chunk)
    if not protocol.eof_received():
        transport.close()  # what an asyncio transport does when eof_received returns False
    await asyncio.wait_for(transport.closed.wait(), 5.0)
    protocol.connection_lost(None)
    return transport, Responses().feed(bytes(transport.out))


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True) if b > a]


token = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_.", min_size=1, max_size=12)
request_st = st.tuples(
    st.sampled_from(["GET", "POST", "PUT", "DELETE"]),
    st.lists(token, min_size=0, max_size=3).map(lambda parts: "/" + "/".join(parts)),
    st.lists(st.tuples(token, token), max_size=3).map(lambda kv: "&".join(f"{k}={v}" for k, v in kv)),
    st.binary(max_size=300),
    st.booleans(),  # chunked
)


def encode_request(method: str, path: str, query: str, body: bytes, chunked: bool) -> bytes:
    target = f"{path}?{query}" if query else path
    head = f"{method} {target} HTTP/1.1\r\nHost: h\r\nX-Pad: {'p' * len(path)}\r\n"
    if chunked:
        pieces = [body[i:i + 7] for i in range(0, len(body), 7)]
        encoded = b"".join(f"{len(p):x}\r\n".encode() + p + b"\r\n" for p in pieces) + b"0\r\n\r\n"
        return (head + "Transfer-Encoding: chunked\r\n\r\n").encode() + encoded
    return (head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body


@SETTINGS
@given(st.lists(request_st, min_size=1, max_size=20), st.lists(st.integers(min_value=0), max_size=30))
async def test_any_split_of_pipelined_requests_gives_the_same_answers_in_order(
        requests: list[tuple[str, str, str, bytes, bool]], cuts: list[int]) -> None:
    stream = b"".join(encode_request(*r) for r in requests)
    _, responses = await run(split(stream, cuts))
    expected = [(200, f"{m} {p}?{q}|".encode() + b) for m, p, q, b, _ in requests]
    assert responses == expected


@SETTINGS
@given(st.lists(st.binary(min_size=1, max_size=200), min_size=1, max_size=8))
async def test_garbage_never_escapes_and_every_answer_is_well_framed(chunks: list[bytes]) -> None:
    _, responses = await run(chunks)
    # Whatever came in, the output parsed as complete HTTP responses (checked by Responses) and at most one
    # error, which is always the last answer.
    errors = [status for status, _ in responses if status >= 400]
    assert len(errors) <= 1
    if errors:
        assert responses[-1][0] >= 400


@SETTINGS
@given(st.lists(request_st, min_size=1, max_size=5), st.integers(min_value=0, max_value=4),
       st.lists(st.integers(min_value=0), max_size=10))
async def test_a_bad_request_in_the_pipeline_is_answered_after_the_good_ones(
        requests: list[tuple[str, str, str, bytes, bool]], position: int, cuts: list[int]) -> None:
    position = min(position, len(requests))
    encoded = [encode_request(*r) for r in requests]
    stream = b"".join([*encoded[:position], b"BROKEN / HTTP/1.1\r\n\r\n", *encoded[position:]])
    _, responses = await run(split(stream, cuts))
    good = [(200, f"{m} {p}?{q}|".encode() + b) for m, p, q, b, _ in requests[:position]]
    assert responses[:-1] == good
    assert responses[-1][0] == 400


@SETTINGS
@given(st.integers(min_value=1, max_value=200), st.booleans(), st.lists(st.integers(min_value=0), max_size=10))
async def test_body_limit_is_exact(size: int, chunked: bool, cuts: list[int]) -> None:
    limit = 100
    stream = encode_request("POST", "/", "", b"b" * size, chunked)
    _, responses = await run(split(stream, cuts), max_body_bytes=limit)
    if size <= limit:
        assert responses == [(200, b"POST /?|" + b"b" * size)]
    else:
        assert [status for status, _ in responses] == [413]


def connect(handler: Callable[[HttpRequest], Awaitable[HttpResponse]]) -> tuple[HttpProtocol, MemoryTransport]:
    transport = MemoryTransport()
    protocol = HttpProtocol(ServerState(handler, None, 1000))
    protocol.connection_made(transport)  # type: ignore[arg-type]
    return protocol, transport


async def test_deep_pipelines_pause_reading_until_answers_catch_up() -> None:
    release = asyncio.Event()
    answered: list[str] = []
    all_answered = asyncio.Event()

    async def handler(request: HttpRequest) -> HttpResponse:
        await release.wait()
        answered.append(request.path)
        if len(answered) == 3 * MAX_PIPELINE:
            all_answered.set()
        return HttpResponse(200, request.path.encode())

    protocol, transport = connect(handler)
    protocol.data_received(b"".join(encode_request("GET", f"/{i}", "", b"", False) for i in range(3 * MAX_PIPELINE)))
    assert not transport.reading  # the whole chunk was parsed, but no more is read while so much is owed
    release.set()
    await all_answered.wait()
    assert transport.reading and transport.pauses == 1
    assert answered == [f"/{i}" for i in range(3 * MAX_PIPELINE)]
    assert [body for _, body in Responses().feed(bytes(transport.out))] == [a.encode() for a in answered]


async def turns(n: int) -> None:
    for _ in range(n):
        await asyncio.sleep(0)  # one loop turn each: enough for an immediate handler to run and answer


@pytest.mark.parametrize("paused", [False, True])
async def test_no_new_request_starts_while_the_transport_buffer_is_full(paused: bool) -> None:
    async def handler(request: HttpRequest) -> HttpResponse:
        return HttpResponse(200, b"ok")

    protocol, transport = connect(handler)
    if paused:
        protocol.pause_writing()
    protocol.data_received(encode_request("GET", "/", "", b"", False))
    await turns(5)
    assert bool(transport.out) is not paused  # the unpaused run is the control: 5 turns are enough to answer
    if paused:
        protocol.resume_writing()
        await turns(5)
        assert Responses().feed(bytes(transport.out)) == [(200, b"ok")]


async def test_shutdown_lets_a_half_received_request_arrive_then_closes() -> None:
    protocol, transport = connect(echo_path)
    protocol.data_received(b"POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n12345")
    protocol.shutdown()
    assert not transport.closed.is_set()
    protocol.data_received(b"67890" + encode_request("GET", "/too-late", "", b"", False))
    await transport.closed.wait()
    assert Responses().feed(bytes(transport.out)) == [(200, b"POST /up?|1234567890")]
    assert b"Connection: close\r\n" in transport.out


async def test_shutdown_answers_what_is_running_or_arriving_and_closes_idle_at_once() -> None:
    protocol, transport = connect(echo_path)
    protocol.data_received(encode_request("GET", "/", "", b"", False))
    protocol.data_received(b"GET /next HTTP/1.1\r\n")  # pipelined, incomplete
    protocol.shutdown()  # the first request is running: answered; the partial one is still arriving
    protocol.data_received(b"Host: t\r\n\r\n")
    await transport.closed.wait()
    assert [body for _, body in Responses().feed(bytes(transport.out))] == [b"GET /?|", b"GET /next?|"]

    protocol, transport = connect(echo_path)
    protocol.shutdown()
    assert transport.closed.is_set()
