"""A minimal HTTP/1.1 keep-alive client on ``asyncio.Protocol`` + httptools.

Why not aiohttp/httpx/boto3: the load generator shares two cores with the server, so every microsecond it spends
per call is taken from the thing being measured. This client does one request at a time per connection (no
pipelining, like botocore's urllib3 pool), reuses the connection while the server allows it and reconnects on the
next request otherwise. Callers pass a fully built request (head and body bytes), so static headers are built once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import httptools


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    headers: dict[str, str]  # names lower-cased; a repeated header keeps its last value
    body: bytes


class HttpConnectionError(ConnectionError):
    """The connection failed or closed before a full response arrived."""


def build_head(method: str, path: str, headers: Sequence[tuple[str, str]]) -> bytes:
    """Request line and headers, ending with the blank line; add ``Content-Length`` yourself."""
    lines = [f"{method} {path} HTTP/1.1"]
    lines.extend(f"{name}: {value}" for name, value in headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class _ResponseProtocol(asyncio.Protocol):
    """Feeds bytes to httptools and resolves one waiter per response."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.keep_alive = True
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[HttpResponse] | None = None
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []

    def expect(self, waiter: asyncio.Future[HttpResponse]) -> None:
        self._waiter = waiter
        self._headers = {}
        self._body = []

    # asyncio callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass it

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(HttpConnectionError(f"bad HTTP response: {exc}"))
            if self.transport is not None:
                self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(HttpConnectionError(f"connection closed: {exc}" if exc else "connection closed by server"))

    def _fail(self, exc: Exception) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        self.keep_alive = self._parser.should_keep_alive()
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(HttpResponse(self._parser.get_status_code(), self._headers, b"".join(self._body)))


class HttpConnection:
    """One keep-alive connection to ``host:port``; ``request`` is not re-entrant (await each call)."""

    def __init__(self, host: str, port: int, timeout: float = 30.0) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.connects = 0
        self._protocol: _ResponseProtocol | None = None

    async def _connect(self) -> _ResponseProtocol:
        loop = asyncio.get_running_loop()
        try:
            _, protocol = await asyncio.wait_for(
                loop.create_connection(_ResponseProtocol, self.host, self.port), self.timeout)
        except (OSError, TimeoutError) as exc:
            raise HttpConnectionError(f"cannot connect to {self.host}:{self.port}: {exc}") from exc
        self.connects += 1
        return protocol

    async def request(self, head: bytes, body: bytes = b"") -> HttpResponse:
        """Send one request and wait for its response; raises ``HttpConnectionError`` or ``TimeoutError``."""
        protocol = self._protocol
        if protocol is None or protocol.closed or not protocol.keep_alive:
            self.close()
            protocol = self._protocol = await self._connect()
        transport = protocol.transport
        assert transport is not None
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[HttpResponse] = loop.create_future()
        protocol.expect(waiter)
        transport.write(head + body if len(body) < 65536 else head)
        if len(body) >= 65536:
            transport.write(body)
        timer = loop.call_later(self.timeout, self._expire, waiter)
        try:
            return await waiter
        except BaseException:
            self.close()  # a half-read response would poison the next one
            raise
        finally:
            timer.cancel()

    def _expire(self, waiter: asyncio.Future[HttpResponse]) -> None:
        if not waiter.done():
            waiter.set_exception(TimeoutError(f"no response within {self.timeout} s"))

    def close(self) -> None:
        protocol, self._protocol = self._protocol, None
        if protocol is not None and protocol.transport is not None and not protocol.closed:
            protocol.transport.close()
