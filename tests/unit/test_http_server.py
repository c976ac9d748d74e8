"""HttpServer over real sockets on 127.0.0.1: framing, keep-alive, pipelining, limits, errors, graceful stop."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
import uvloop

from broker.http.server import HttpServer
from broker.http.types import HttpHandler, HttpRequest, HttpResponse

TIMEOUT = 5.0

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


class Client:
    """A raw HTTP/1.1 client: writes exactly the bytes given, parses responses one by one."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, port: int) -> Client:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    async def reply(self) -> Reply:
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), TIMEOUT)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                assert name.lower() not in headers, f"duplicate header {name}"
                headers[name.lower()] = value.strip()
        body = b""
        if "content-length" in headers:
            body = await asyncio.wait_for(self.reader.readexactly(int(headers["content-length"])), TIMEOUT)
        return Reply(status, headers, body)

    async def closed_by_server(self) -> bool:
        """True when the server closed the connection (EOF or reset) without sending anything more."""
        try:
            rest = await asyncio.wait_for(self.reader.read(), TIMEOUT)
        except ConnectionResetError:
            rest = b""
        await self.close()
        return rest == b""

    async def close(self) -> None:
        self.writer.close()
        with suppress(ConnectionError):
            await self.writer.wait_closed()


async def echo(request: HttpRequest) -> HttpResponse:
    """Answers with everything the server handed over, so tests can check the request side too."""
    doc = {"method": request.method, "path": request.path, "query": request.query, "headers": request.headers,
           "body": request.body.decode("latin-1"), "client_host": request.client_host,
           "request_id": request.request_id}
    return HttpResponse(200, orjson.dumps(doc))


@asynccontextmanager
async def serving(handler: HttpHandler = echo, **kwargs: Any) -> AsyncIterator[HttpServer]:
    server = HttpServer(handler, "127.0.0.1", 0, **kwargs)
    await server.start()
    try:
        yield server
    finally:
        await server.stop(grace=1.0)


def get(path: str = "/", extra: str = "") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: test\r\n{extra}\r\n".encode()


def post(path: str, body: bytes, extra: str = "") -> bytes:
    return f"POST {path} HTTP/1.1\r\nHost: test\r\nContent-Length: {len(body)}\r\n{extra}\r\n".encode() + body


# -- framing and request data ------------------------------------------------------------------------------------


async def test_request_fields_and_response_headers() -> None:
    async with serving() as server:
        assert server.host == "127.0.0.1" and server.port > 0
        client = await Client.connect(server.port)
        client.send(b"POST /queue/a%20b?Action=Send&x=1 HTTP/1.1\r\nHost: test\r\nX-Multi: one\r\nx-multi: two\r\n"
                    b"Content-Length: 5\r\n\r\nhello")
        reply = await client.reply()
        doc = reply.json()
        assert reply.status == 200
        assert doc["method"] == "POST"
        assert doc["path"] == "/queue/a%20b"  # not percent-decoded
        assert doc["query"] == "Action=Send&x=1"
        assert doc["headers"]["x-multi"] == "one, two"
        assert doc["headers"]["host"] == "test"
        assert doc["body"] == "hello"
        assert doc["client_host"] == "127.0.0.1"
        assert UUID.match(doc["request_id"])
        assert reply.headers["x-amzn-requestid"] == doc["request_id"]
        assert reply.headers["content-type"] == "application/json"
        assert reply.headers["content-length"] == str(len(reply.body))
        assert reply.headers["date"].endswith(" GMT")
        assert "connection" not in reply.headers
        await client.close()


async def test_keep_alive_serves_many_requests_on_one_connection() -> None:
    async with serving() as server:
        client = await Client.connect(server.port)
        ids = set()
        for i in range(3):
            client.send(get(f"/r{i}"))
            reply = await client.reply()
            assert reply.status == 200 and reply.json()["path"] == f"/r{i}"
            ids.add(reply.headers["x-amzn-requestid"])
        assert len(ids) == 3  # a fresh id per request
        await client.close()


async def test_connection_close_request_is_answered_then_closed() -> None:
    async with serving() as server:
        client = await Client.connect(server.port)
        client.send(get("/", "Connection: close\r\n") + get("/ignored"))
        reply = await client.reply()
        assert reply.headers["connection"] == "close"
        assert await client.closed_by_server()  # the request after it is never answered


async def test_http10_closes_unless_keep_alive_asked() -> None:
    async with serving() as server:
        client = await Client.connect(server.port)
        client.send(b"GET /old HTTP/1.0\r\n\r\n")
        reply = await client.reply()
        assert reply.status == 200 and reply.headers["connection"] == "close"
        assert await client.closed_by_server()

        client = await Client.connect(server.port)
        client.send(b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        reply = await client.reply()
        assert reply.headers["connection"] == "keep-alive"
        client.send(b"GET /b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        assert (await client.reply()).json()["path"] == "/b"
        await client.close()


async def test_pipelined_requests_answered_in_order_one_at_a_time() -> None:
    running = 0
    overlap = 0

    async def handler(request: HttpRequest) -> HttpResponse:
        nonlocal running, overlap
        running += 1
        overlap = max(overlap, running)
        # Earlier requests take more loop turns: answering in completion order would reverse them.
        for _ in range(10 - int(request.path[1:])):
            await asyncio.sleep(0)
        running -= 1
        return HttpResponse(200, request.path.encode())

    async with serving(handler) as server:
        client = await Client.connect(server.port)
        client.send(b"".join(post(f"/{i}", b"x" * i) for i in range(10)))
        bodies = [(await client.reply()).body for _ in range(10)]
        assert bodies == [f"/{i}".encode() for i in range(10)]
        assert overlap == 1
        await client.close()


async def test_chunked_request_body_is_joined() -> None:
    async with serving() as server:
        client = await Client.connect(server.port)
        client.send(b"POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                    b"5\r\nhello\r\n1;ext=1\r\n \r\n5\r\nworld\r\n0\r\n\r\n")
        assert (await client.reply()).json()["body"] == "hello world"
        await client.close()


async def test_client_half_close_still_gets_its_answer() -> None:
    async with serving() as server:
        client = await Client.connect(server.port)
        client.send(post("/x", b"abc"))
        client.writer.write_eof()
        assert (await client.reply()).json()["body"] == "abc"
        assert await client.closed_by_server()


async def test_head_keeps_length_and_drops_body() -> None:
    async def handler(request: HttpRequest) -> HttpResponse:
        return HttpResponse(200, b"0123456789")

    async with serving(handler) as server:
        client = await Client.connect(server.port)
        client.send(b"HEAD / HTTP/1.1\r\nHost: t\r\n\r\n" + get("/next"))
        head = await asyncio.wait_for(client.reader.readuntil(b"\r\n\r\n"), TIMEOUT)
        assert b"Content-Length: 10\r\n" in head
        # The next response follows immediately: no body bytes were sent for HEAD.
        assert (await client.reply()).body == b"0123456789"
        await client.close()


async def test_handler_headers_are_kept_and_its_request_id_wins() -> None:
    async def handler(request: HttpRequest) -> HttpResponse:
        return HttpResponse(204, headers=[("x-amzn-RequestId", "mine"), ("X-Extra", "1"), ("Content-Length", "99")],
                            content_type="text/plain")

    async with serving(handler) as server:
        client = await Client.connect(server.port)
        client.send(get() + get())
        for _ in range(2):
            reply = await client.reply()  # duplicate headers would fail the parser in Client
            assert reply.status == 204
            assert reply.headers["x-amzn-requestid"] == "mine"
            assert reply.headers["x-extra"] == "1"
            assert reply.headers["content-type"] == "text/plain"
            assert "content-length" not in reply.headers  # 204 has no body and no length
        await client.close()


# -- Expect: 100-continue ------------------------------------------------------------------------------------------


async def test_expect_100_continue_is_answered_before_the_body() -> None:
    async with serving() as server:
        client = await Client.connect(server.port)
        client.send(b"POST /e HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
        interim = await client.reply()
        assert interim.status == 100
        client.send(b"body")
        reply = await client.reply()
        assert reply.status == 200 and reply.json()["body"] == "body"
        await client.close()


async def test_expect_100_continue_waits_for_earlier_answers() -> None:
    release = asyncio.Event()
    entered = asyncio.Event()

    async def handler(request: HttpRequest) -> HttpResponse:
        if request.path == "/slow":
            entered.set()
            await release.wait()
        return HttpResponse(200, request.path.encode() + request.body)

    async with serving(handler) as server:
        client = await Client.connect(server.port)
        client.send(get("/slow") + b"POST /e HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n")
        await entered.wait()
        release.set()
        assert (await client.reply()).body == b"/slow"  # not preceded by the 100 of the second request
        assert (await client.reply()).status == 100
        client.send(b"ok")
        assert (await client.reply()).body == b"/eok"
        await client.close()


async def test_expect_100_continue_with_oversize_length_gets_413_instead() -> None:
    async with serving(max_body_bytes=10) as server:
        client = await Client.connect(server.port)
        client.send(b"POST / HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 11\r\n\r\n")
        assert (await client.reply()).status == 413
        assert await client.closed_by_server()


# -- limits and malformed input --------------------------------------------------------------------------------------


async def test_oversize_content_length_rejected_without_reading_the_body() -> None:
    calls = 0

    async def handler(request: HttpRequest) -> HttpResponse:
        nonlocal calls
        calls += 1
        return HttpResponse(200)

    async with serving(handler, max_body_bytes=1000) as server:
        client = await Client.connect(server.port)
        client.send(post("/ok", b"x" * 1000))
        assert (await client.reply()).status == 200  # exactly the limit is fine
        # Announce 10 MB, send only a little: the answer must not wait for the rest.
        client.send(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 10000000\r\n\r\n" + b"x" * 100)
        reply = await client.reply()
        assert reply.status == 413
        assert reply.headers["connection"] == "close"
        assert reply.json()["__type"] == "RequestEntityTooLarge"
        assert await client.closed_by_server()
        assert calls == 1


async def test_oversize_chunked_body_rejected() -> None:
    async with serving(max_body_bytes=1000) as server:
        client = await Client.connect(server.port)
        chunk = b"258\r\n" + b"y" * 600 + b"\r\n"  # 0x258 = 600 bytes
        client.send(b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk + chunk)
        assert (await client.reply()).status == 413
        assert await client.closed_by_server()


async def test_malformed_request_gets_400_and_close() -> None:
    async with serving() as server:
        client = await Client.connect(server.port)
        client.send(b"THIS IS NOT HTTP\r\n\r\n")
        reply = await client.reply()
        assert reply.status == 400 and reply.headers["connection"] == "close"
        assert await client.closed_by_server()


async def test_malformed_request_after_a_good_one_is_answered_in_order() -> None:
    async with serving() as server:
        client = await Client.connect(server.port)
        client.send(get("/good") + b"GET / HTTP/1.1\r\nContent-Length: abc\r\n\r\n")
        assert (await client.reply()).json()["path"] == "/good"
        assert (await client.reply()).status == 400
        assert await client.closed_by_server()
        # The server itself is unharmed.
        other = await Client.connect(server.port)
        other.send(get("/after"))
        assert (await other.reply()).status == 200
        await other.close()


async def test_oversize_headers_get_431() -> None:
    async with serving() as server:
        client = await Client.connect(server.port)
        client.send(b"GET / HTTP/1.1\r\nHost: t\r\n" + b"X-Big: " + b"a" * 70_000 + b"\r\n\r\n")
        assert (await client.reply()).status == 431
        assert await client.closed_by_server()


async def test_upgrade_request_is_answered_over_http11_then_closed() -> None:
    async with serving() as server:
        client = await Client.connect(server.port)
        client.send(get("/u", "Connection: Upgrade\r\nUpgrade: h2c\r\n") + b"\x00\x01binary")
        reply = await client.reply()
        assert reply.status == 200 and reply.json()["path"] == "/u"
        assert reply.headers["connection"] == "close"
        assert await client.closed_by_server()


# -- handler failures ------------------------------------------------------------------------------------------------


async def test_handler_exception_gives_500_and_connection_survives(caplog: pytest.LogCaptureFixture) -> None:
    async def handler(request: HttpRequest) -> HttpResponse:
        if request.path == "/boom":
            raise RuntimeError("kaput")
        return HttpResponse(200, b"fine")

    async with serving(handler) as server:
        client = await Client.connect(server.port)
        with caplog.at_level(logging.ERROR, logger="broker.http"):
            client.send(get("/boom"))
            reply = await client.reply()
        assert reply.status == 500
        request_id = reply.headers["x-amzn-requestid"]
        doc = reply.json()
        assert doc["__type"] == "InternalFailure"
        assert doc["RequestId"] == request_id and request_id in doc["message"]
        [record] = [r for r in caplog.records if r.exc_info]
        assert request_id in record.getMessage()
        assert isinstance(record.exc_info[1], RuntimeError)  # type: ignore[index]
        client.send(get("/next"))
        assert (await client.reply()).body == b"fine"
        await client.close()


async def test_header_injection_by_handler_becomes_500() -> None:
    async def handler(request: HttpRequest) -> HttpResponse:
        return HttpResponse(200, headers=[("X-Bad", "a\r\nSet-Cookie: evil")])

    async with serving(handler) as server:
        client = await Client.connect(server.port)
        client.send(get())
        reply = await client.reply()
        assert reply.status == 500 and "set-cookie" not in reply.headers
        await client.close()


async def test_access_log_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    async with serving() as server:
        client = await Client.connect(server.port)
        with caplog.at_level(logging.DEBUG, logger="broker.http.access"):
            client.send(get("/logged"))
            reply = await client.reply()
        [record] = [r for r in caplog.records if r.name == "broker.http.access"]
        message = record.getMessage()
        assert reply.headers["x-amzn-requestid"] in message
        assert "GET /logged 200" in message and message.endswith("us")
        await client.close()


# -- routes -------------------------------------------------------------------------------------------------------


async def test_exact_routes_take_precedence_over_the_default_handler() -> None:
    async def special(request: HttpRequest) -> HttpResponse:
        return HttpResponse(200, b"special")

    async with serving(routes={("GET", "/special"): special}) as server:
        client = await Client.connect(server.port)
        client.send(get("/special") + post("/special", b"") + get("/special?x=1") + get("/special/"))
        assert (await client.reply()).body == b"special"
        assert (await client.reply()).json()["method"] == "POST"  # other method: default handler
        assert (await client.reply()).body == b"special"  # the query string is not part of the path
        assert (await client.reply()).json()["path"] == "/special/"
        await client.close()


# -- graceful stop ----------------------------------------------------------------------------------------------------


def slow_handler(entered: asyncio.Event, release: asyncio.Event) -> Callable[[HttpRequest], Awaitable[HttpResponse]]:
    async def handler(request: HttpRequest) -> HttpResponse:
        if request.path == "/slow":
            entered.set()
            await release.wait()
        return HttpResponse(200, request.path.encode())

    return handler


async def test_stop_waits_for_in_flight_request_and_refuses_new_connections() -> None:
    entered, release = asyncio.Event(), asyncio.Event()
    server = HttpServer(slow_handler(entered, release), "127.0.0.1", 0)
    await server.start()
    idle = await Client.connect(server.port)
    idle.send(get("/quick"))
    assert (await idle.reply()).status == 200
    busy = await Client.connect(server.port)
    busy.send(get("/slow"))
    await entered.wait()

    stopping = asyncio.create_task(server.stop(grace=TIMEOUT))
    assert await idle.closed_by_server()  # idle keep-alive connection closed at once...
    with pytest.raises(OSError):  # ...after the listener closed
        await Client.connect(server.port)
    assert not stopping.done()

    release.set()
    reply = await busy.reply()
    assert reply.status == 200 and reply.body == b"/slow"
    assert reply.headers["connection"] == "close"
    assert await busy.closed_by_server()
    await asyncio.wait_for(stopping, TIMEOUT)


async def test_stop_answers_requests_already_queued_on_a_busy_connection() -> None:
    entered, release = asyncio.Event(), asyncio.Event()
    server = HttpServer(slow_handler(entered, release), "127.0.0.1", 0)
    await server.start()
    idle = await Client.connect(server.port)
    busy = await Client.connect(server.port)
    busy.send(get("/slow") + get("/queued"))
    await entered.wait()
    stopping = asyncio.create_task(server.stop(grace=TIMEOUT))
    assert await idle.closed_by_server()  # the drain has begun
    release.set()
    first, second = await busy.reply(), await busy.reply()
    assert (first.body, second.body) == (b"/slow", b"/queued")
    assert "connection" not in first.headers and second.headers["connection"] == "close"
    assert await busy.closed_by_server()
    await asyncio.wait_for(stopping, TIMEOUT)


async def test_stop_cancels_handlers_still_running_after_the_grace() -> None:
    entered = asyncio.Event()
    cancelled = asyncio.Event()

    async def stuck(request: HttpRequest) -> HttpResponse:
        entered.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        raise AssertionError("unreachable")

    server = HttpServer(stuck, "127.0.0.1", 0)
    await server.start()
    client = await Client.connect(server.port)
    client.send(get())
    await entered.wait()
    await asyncio.wait_for(server.stop(grace=0.05), TIMEOUT)
    assert cancelled.is_set()
    assert await client.closed_by_server()  # no answer, just closed


async def test_stop_after_client_went_away_mid_request_waits_for_the_handler() -> None:
    entered, release = asyncio.Event(), asyncio.Event()
    finished = asyncio.Event()

    async def handler(request: HttpRequest) -> HttpResponse:
        entered.set()
        await release.wait()
        finished.set()
        return HttpResponse(200)

    server = HttpServer(handler, "127.0.0.1", 0)
    await server.start()
    idle = await Client.connect(server.port)
    client = await Client.connect(server.port)
    client.send(get())
    await entered.wait()
    await client.close()  # the handler keeps running: it may be half-way through a replicated change
    stopping = asyncio.create_task(server.stop(grace=TIMEOUT))
    assert await idle.closed_by_server()  # the drain has begun
    assert not stopping.done()
    release.set()
    await asyncio.wait_for(stopping, TIMEOUT)
    assert finished.is_set()


async def test_stop_cancels_a_stuck_handler_whose_client_went_away() -> None:
    entered, cancelled = asyncio.Event(), asyncio.Event()

    async def stuck(request: HttpRequest) -> HttpResponse:
        entered.set()
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()
        raise AssertionError("unreachable")

    server = HttpServer(stuck, "127.0.0.1", 0)
    await server.start()
    client = await Client.connect(server.port)
    client.send(get())
    await entered.wait()
    await client.close()
    await asyncio.wait_for(server.stop(grace=0.05), TIMEOUT)
    assert cancelled.is_set()


async def test_stop_twice_and_before_start_are_harmless() -> None:
    server = HttpServer(echo, "127.0.0.1", 0)
    await server.stop(grace=1.0)
    await server.start()
    with pytest.raises(RuntimeError):
        await server.start()
    await server.stop(grace=1.0)
    await server.stop(grace=1.0)


# -- idle connections --------------------------------------------------------------------------------------------


async def test_idle_connections_are_closed_busy_ones_kept() -> None:
    entered, release = asyncio.Event(), asyncio.Event()
    async with serving(slow_handler(entered, release), idle_timeout=0.02) as server:
        busy = await Client.connect(server.port)
        busy.send(get("/slow"))
        await entered.wait()
        idle = await Client.connect(server.port)
        idle.send(get("/quick"))
        assert (await idle.reply()).status == 200
        silent = await Client.connect(server.port)
        silent.send(b"GET / HTTP/1.1\r\nHost:")  # a request that never completes
        assert await idle.closed_by_server()
        assert await silent.closed_by_server()
        # The busy connection went through at least as many sweeps without a byte, but a request was running.
        release.set()
        reply = await busy.reply()
        assert reply.status == 200 and "connection" not in reply.headers
        await busy.close()


# -- the same scenarios on uvloop -------------------------------------------------------------------------------------

# The app runs on uvloop, whose transports differ in details (they do not even subclass asyncio.Transport).
# pytest-asyncio only selects loops through a conftest hook, so the fixture-free scenarios run here on uvloop.
UVLOOP_SCENARIOS = [f for name, f in sorted(globals().items())
                    if name.startswith("test_") and asyncio.iscoroutinefunction(f) and f.__code__.co_argcount == 0]


@pytest.mark.parametrize("scenario", UVLOOP_SCENARIOS, ids=lambda f: f.__name__)
def test_on_uvloop(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(scenario())
