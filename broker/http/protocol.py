"""One HTTP/1.1 connection: an ``asyncio.Protocol`` fed by httptools, answering requests strictly in order.

Why a raw protocol: aiohttp costs ~44 us per request here; this costs ~10 us of Python per request (plus the
kernel's recv/send). The hot path is parser callbacks that fill one headers dict and a body list, one task per
request (handlers await replication), one ``transport.write`` per response. Requests of one connection run one at a
time: pipelined requests are queued, never run concurrently, so a client that pipelines send-then-receive sees them
applied in that order.

A connection's life::

    reading ──(Connection: close, HTTP/1.0, client EOF, server stop)──> closing: answer what is queued (and a request
       │                                                                half-received at stop), then close
       ├──(malformed, too large)──> the error is queued after earlier answers, then a lingering close (write EOF,
       │                            discard input for a moment so the client reads the error instead of a reset)
       ├──(nothing running, no byte for an idle period)──> closed by the server's idle sweep
       └──(head or body too slow, idle keep-alive: HttpLimits)──> 408 and a lingering close / closed silently

Abuse limits (``HttpLimits``): body caps per service checked on the head (Content-Length) and as chunks arrive,
never after buffering; header count and size (431); a connection cap (503 and close); and timeouts checked by one
sweep over all connections per ``sweep_period``. The request path only copies a coarse clock the sweep refreshes
(no timer, no clock call per request), so timeouts are exact to one period. They run only while the server waits
for the client, never while a handler runs or answers are owed.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import NoReturn, cast

import httptools

from broker.http.limits import HttpLimits, limit_response
from broker.http.types import HttpHandler, HttpRequest, HttpResponse
from broker.http.wire import (
    CONNECTION_CLOSE,
    CONNECTION_KEEP_ALIVE,
    CONTINUE,
    LAST_CHUNK,
    encode_chunk,
    encode_response,
    encode_stream_head,
    error_response,
    new_request_id,
)
from broker.metrics import HTTP_CONNECTIONS, HTTP_IDLE_CLOSED, count_rejected

logger = logging.getLogger(__name__)
access_logger = logging.getLogger("broker.http.access")

MAX_PIPELINE = 16  # parsed, unanswered requests per connection before we stop reading from it
LINGER_SECONDS = 1.0
MAX_CACHED_HEADER_NAMES = 512

# Header names as sent (b"X-Amz-Target") to their lower-cased str: SDKs send the same few names on every request,
# so decoding and lower-casing them once saves a third of the header callback. Bounded against junk names.
_header_names: dict[bytes, str] = {}
_methods = {m.encode(): m for m in ("GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH")}

_Item = tuple[HttpRequest | HttpResponse, bytes]  # a request and its Connection header, or a final error


class _Reject(Exception):
    """Raised inside a parser callback to stop parsing and answer with ``response``."""

    def __init__(self, response: HttpResponse) -> None:
        super().__init__(response.status)
        self.response = response


class _Stop(Exception):
    """Raised inside a parser callback when no further request on this connection will be read."""


class ServerState:
    """What every connection of one server shares: the handlers, the limits and the set of live connections."""

    __slots__ = ("_sweep", "clock", "connections", "default_handler", "drained", "draining", "limits",
                 "max_body_bytes", "now", "routes")

    def __init__(self, handler: HttpHandler, routes: Mapping[tuple[str, str], HttpHandler] | None,
                 max_body_bytes: int, limits: HttpLimits | None = None,
                 clock: Callable[[], float] | None = None) -> None:
        """``limits``: None keeps the one ``max_body_bytes`` cap and no timers (``HttpLimits.legacy``).
        ``clock``: monotonic seconds for the timeouts (``time.monotonic`` unless a test gives its own)."""
        self.default_handler = handler
        self.routes = dict(routes) if routes else None
        self.limits = limits if limits is not None else HttpLimits.legacy(max_body_bytes)
        self.max_body_bytes = self.limits.largest_body
        self.connections: set[HttpProtocol] = set()
        self.draining = False
        self.drained = asyncio.Event()
        self._sweep: asyncio.TimerHandle | None = None
        self.clock = clock if clock is not None else time.monotonic
        # A coarse clock for the connections' timestamps, refreshed by each sweep and each new connection: reading
        # it costs an attribute, not a clock call per request. Timeouts are therefore exact to one sweep period.
        self.now = self.clock()

    def admit(self, conn: HttpProtocol) -> bool:
        """Count a new connection in; False when the connection cap is reached (the caller refuses it)."""
        cap = self.limits.max_connections
        if cap is not None and len(self.connections) >= cap:
            count_rejected("connection_limit")
            return False
        self.connections.add(conn)
        self.now = self.clock()
        HTTP_CONNECTIONS.inc()
        if self._sweep is None and self.limits.timed:
            self._schedule_sweep()
        return True

    def release(self, conn: HttpProtocol) -> None:
        """Forget a connection whose socket is gone and whose handler (if any) has finished."""
        if conn in self.connections:
            self.connections.discard(conn)
            HTTP_CONNECTIONS.dec()
        if not self.connections and self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        if self.draining and not self.connections:
            self.drained.set()

    def _schedule_sweep(self) -> None:
        loop = asyncio.get_running_loop()
        self._sweep = loop.call_later(self.limits.sweep_period, self.sweep_timeouts)

    def sweep_timeouts(self, now: float | None = None) -> int:
        """Apply the timeouts to every connection (runs every ``sweep_period`` while any is open); returns how many
        connections it closed."""
        self._sweep = None
        if now is None:
            now = self.clock()
        self.now = now
        closed = 0
        for conn in list(self.connections):
            reason = conn.check_timeouts(now)
            if reason is not None:
                closed += 1
                if reason == "idle_timeout":
                    HTTP_IDLE_CLOSED.inc()
                else:
                    count_rejected(reason)
        if self.connections and self.limits.timed:
            self._schedule_sweep()
        return closed

    def begin_drain(self) -> None:
        """Stop taking requests: idle connections close now, busy ones after the requests they already hold."""
        self.draining = True
        for conn in list(self.connections):
            conn.shutdown()
        if not self.connections:
            self.drained.set()

    def close_idle(self) -> int:
        """Close connections with no request running or queued and no bytes received since the previous call.

        Called every idle-timeout period, so a silent connection (a vanished client, a half-sent request) is closed
        after one to two periods, at the cost of one integer increment per read on the hot path.
        """
        closed = 0
        for conn in list(self.connections):
            closed += conn.close_if_idle()
        return closed

    def abort_all(self) -> list[asyncio.Task[None]]:
        """Cancel every running handler and drop every socket; returns the cancelled tasks to wait for."""
        tasks = []
        for conn in list(self.connections):
            task = conn.abort()
            if task is not None:
                tasks.append(task)
        return tasks


class HttpProtocol(asyncio.Protocol):
    """Parses requests, queues them, runs one handler at a time and writes each answer in one piece."""

    def __init__(self, state: ServerState) -> None:
        self._state = state
        self._loop = asyncio.get_running_loop()
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._client_host = ""
        # The request being parsed.
        self._url = b""
        self._headers: dict[str, str] = {}
        self._head_bytes = 0
        self._body: list[bytes] = []
        self._body_bytes = 0
        self._expect_continue = False
        self._in_message = False  # between the first byte of a request and its end
        # Parsed requests waiting for their turn, and the one being handled.
        self._queue: deque[_Item] = deque()
        self._task: asyncio.Task[None] | None = None
        self._parsing = True  # False once no further request will be read from this connection
        self._closing = False  # close once everything queued is answered
        self._done = False  # the socket is closing or gone: write nothing more, start nothing more
        self._lost = False  # connection_lost has been called
        self._eof = False  # the client has half-closed: nothing more will come
        self._writable = True
        self._read_paused = False
        self._linger: asyncio.TimerHandle | None = None
        self._reads = 0  # data_received calls, for the idle sweep
        self._reads_seen = -1  # _reads at the previous idle sweep
        # Abuse limits: this request's body cap and header count, and coarse-clock times for the timeouts.
        self._body_cap = state.max_body_bytes
        # Read per header line: kept here, one attribute away (no limit: the largest int).
        self._max_head_bytes = state.limits.max_header_bytes
        self._max_headers = state.limits.max_headers if state.limits.max_headers is not None else sys.maxsize
        self._header_count = 0
        self._requests = 0  # requests begun on this connection
        self._free_since = state.clock()  # when the server last started waiting for the client
        self._begun_at = 0.0  # first byte of the current request
        self._head_done_at = 0.0  # end of the current request's head; 0.0 while it is incomplete

    # -- asyncio.Protocol -------------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self._transport = transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple):
            self._client_host = str(peer[0])
        if self._state.draining:  # accepted in the same loop turn the listener closed
            self._done = True
            transport.close()
            return
        if not self._state.admit(self):
            self._refuse()

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self._done = True
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None
        if self._task is None:
            self._state.release(self)
        # Otherwise the running handler finishes (its answer is dropped) and releases the connection.

    def data_received(self, data: bytes) -> None:
        self._reads += 1
        if not self._parsing:
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # on_message_complete queued the request; we answer it over HTTP/1.1 and do not switch protocols.
            self._parsing = False
            self._closing = True
            self._next()
        except httptools.HttpParserError as exc:
            if not self._parsing:  # bytes after the last request we accept (e.g. after Connection: close)
                return
            cause = exc.__context__ if isinstance(exc, httptools.HttpParserCallbackError) else None
            if isinstance(cause, _Reject):
                self._fail(cause.response)
            elif cause is not None:
                logger.error("HTTP parser callback failed", exc_info=cause)
                self._fail(error_response(400, "BadRequest", "Malformed HTTP request."))
            else:
                self._fail(error_response(400, "BadRequest", f"Malformed HTTP request: {exc}"))

    def eof_received(self) -> bool:
        self._eof = True
        self._in_message = False  # a partial request will never complete
        self._parsing = False
        self._closing = True
        # Keep the socket half-open only while answers are still owed.
        return self._task is not None or bool(self._queue)

    def pause_writing(self) -> None:
        self._writable = False

    def resume_writing(self) -> None:
        self._writable = True
        self._next()

    # -- httptools callbacks ----------------------------------------------------------------------------------

    def on_message_begin(self) -> None:
        if not self._parsing:
            raise _Stop
        self._in_message = True
        self._url = b""
        self._headers = {}
        self._head_bytes = 0
        self._header_count = 0
        self._body = []
        self._body_bytes = 0
        self._expect_continue = False
        self._requests += 1
        self._begun_at = self._state.now
        self._head_done_at = 0.0

    def on_url(self, url: bytes) -> None:
        self._url += url
        if len(self._url) > self._state.limits.max_url_bytes:
            count_rejected("url_too_long")
            raise _Reject(self._limit_error(414, "RequestURITooLong", "Request URI too long."))

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_bytes += len(name) + len(value)
        self._header_count += 1
        if self._head_bytes > self._max_head_bytes or self._header_count > self._max_headers:
            self._headers_over_limit()
        key = _header_names.get(name)
        if key is None:
            # latin-1 never fails and round-trips the exact bytes (signature checks need them).
            key = name.decode("latin-1").lower()
            if len(_header_names) < MAX_CACHED_HEADER_NAMES:
                _header_names[name] = key
        text = value.decode("latin-1")
        previous = self._headers.get(key)
        self._headers[key] = text if previous is None else previous + ", " + text

    def on_headers_complete(self) -> None:
        headers = self._headers
        self._head_done_at = self._state.now
        self._body_cap = self._state.limits.body_cap(headers)
        length = headers.get("content-length")
        if length is not None:
            try:
                size = int(length)
            except ValueError:
                raise _Reject(error_response(400, "BadRequest", "Invalid Content-Length.")) from None
            if size > self._body_cap:
                raise _Reject(self._too_large())
        if self._parser.should_upgrade() and ((length is not None and length != "0")
                                              or "transfer-encoding" in headers):
            raise _Reject(error_response(400, "BadRequest", "Protocol upgrade with a body is not supported."))
        expect = headers.get("expect")
        if expect is not None and expect.lower() == "100-continue" and self._parser.get_http_version() == "1.1":
            if self._task is None and not self._queue:
                self._write(CONTINUE)
            else:  # earlier answers first; _next sends it when they are out
                self._expect_continue = True

    def on_body(self, body: bytes) -> None:
        self._body_bytes += len(body)
        if self._body_bytes > self._body_cap:
            raise _Reject(self._too_large())
        self._body.append(body)

    def on_message_complete(self) -> None:
        parser = self._parser
        url = self._url
        if not url.startswith(b"/"):  # absolute form (proxy style): keep only the path and query
            scheme_end = url.find(b"://")
            if scheme_end >= 0:
                path_start = url.find(b"/", scheme_end + 3)
                url = url[path_start:] if path_start >= 0 else b"/"
        path, _, query = url.partition(b"?")
        raw_method = parser.get_method()
        method = _methods.get(raw_method) or raw_method.decode("ascii")
        headers = self._headers
        request = HttpRequest(method, path.decode("latin-1"), query.decode("latin-1"), headers, b"".join(self._body),
                              self._client_host, new_request_id())
        self._expect_continue = False
        self._in_message = False
        if parser.should_keep_alive() and not self._closing:
            # HTTP/1.1 keeps alive by default; HTTP/1.0 only when asked, and then expects the header back.
            keep_alive_10 = "connection" in headers and parser.get_http_version() == "1.0"
            connection = CONNECTION_KEEP_ALIVE if keep_alive_10 else b""
        else:  # the client's wish, or a stop that waited for this request to arrive
            connection = CONNECTION_CLOSE
            self._parsing = False
            self._closing = True
        self._queue.append((request, connection))
        if len(self._queue) >= MAX_PIPELINE and not self._read_paused and self._transport is not None:
            self._read_paused = True
            self._transport.pause_reading()
        if self._task is None:
            self._next()

    # -- answering --------------------------------------------------------------------------------------------

    def _next(self) -> None:
        """Start the next queued request, or close / send a deferred 100 Continue when nothing is owed."""
        if self._task is not None or self._done or not self._writable:
            return
        if not self._queue:
            if self._closing and not self._in_message:
                self._close()
            elif self._expect_continue:
                self._expect_continue = False
                self._write(CONTINUE)
            return
        item, connection = self._queue.popleft()
        if self._read_paused and len(self._queue) <= MAX_PIPELINE // 2 and self._transport is not None:
            self._read_paused = False
            self._transport.resume_reading()
        if isinstance(item, HttpResponse):
            self._write(encode_response(item, new_request_id(), CONNECTION_CLOSE, head=False))
            self._linger_close()
            return
        routes = self._state.routes
        handler = self._state.default_handler
        if routes is not None:
            handler = routes.get((item.method, item.path), handler)
        self._task = self._loop.create_task(self._serve(handler, item, connection))

    async def _serve(self, handler: HttpHandler, request: HttpRequest, connection: bytes) -> None:
        started = time.perf_counter()
        try:
            try:
                response = await handler(request)
                if self._closing and not self._queue:
                    connection = CONNECTION_CLOSE
                if response.stream is not None:
                    await self._stream(response, request, connection)
                    return
                data = encode_response(response, request.request_id, connection, request.method == "HEAD")
            except Exception as exc:
                logger.error("request %s %s %s failed", request.request_id, request.method, request.path,
                             exc_info=exc)
                response = error_response(500, "InternalFailure",
                                          f"Internal error; request id {request.request_id}.", request.request_id)
                if self._closing and not self._queue:
                    connection = CONNECTION_CLOSE
                data = encode_response(response, request.request_id, connection, request.method == "HEAD")
            self._write(data)
            if access_logger.isEnabledFor(logging.DEBUG):
                access_logger.debug("%s %s %s %d %dus", request.request_id, request.method, request.path,
                                    response.status, (time.perf_counter() - started) * 1e6)
        finally:
            self._task = None
            self._free_since = self._state.now
            if self._lost:
                self._state.release(self)
            else:
                self._next()

    async def _stream(self, response: HttpResponse, request: HttpRequest, connection: bytes) -> None:
        """Send a streamed response: the head, then each item as the handler's iterator yields it, then the last
        chunk. Stops reading the iterator once the connection is gone; always closes it."""
        stream = response.stream
        assert stream is not None
        try:
            self._write(encode_stream_head(response, request.request_id, connection))
            async for item in stream:
                if self._done:
                    break
                if item:
                    self._write(encode_chunk(item))
            self._write(LAST_CHUNK)
        except Exception as exc:  # the head is out: all we can say is that the body is cut short
            logger.error("stream of request %s failed", request.request_id, exc_info=exc)
            self._close()
        finally:
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                await aclose()

    def _write(self, data: bytes) -> None:
        if not self._done and self._transport is not None:
            self._transport.write(data)

    def _headers_over_limit(self) -> NoReturn:
        if self._head_bytes > self._max_head_bytes:
            count_rejected("headers_too_large")
            raise _Reject(self._limit_error(431, "RequestHeaderFieldsTooLarge", "Request header fields too large."))
        count_rejected("too_many_headers")
        raise _Reject(self._limit_error(431, "RequestHeaderFieldsTooLarge",
                                        f"More than {self._max_headers} request header fields."))

    def _too_large(self) -> HttpResponse:
        count_rejected("body_too_large")
        return self._limit_error(413, "RequestEntityTooLarge", f"Request body larger than {self._body_cap} bytes.")

    def _limit_error(self, status: int, code: str, message: str) -> HttpResponse:
        """A refusal worded in the protocol of the request (as far as its head has arrived)."""
        url = self._url
        query = url.partition(b"?")[2].decode("latin-1") if b"?" in url else ""
        method = self._parser.get_method().decode("latin-1") if self._in_message else ""
        return limit_response(status, code, message, self._headers, query, method)

    def _refuse(self) -> None:
        """Over the connection cap: answer 503 at once (retryable for SDKs) and close without reading a request."""
        self._parsing = False
        self._closing = True
        response = limit_response(503, "ServiceUnavailable", "Too many connections; retry later.", {})
        self._write(encode_response(response, "", CONNECTION_CLOSE, head=False))
        self._linger_close()

    def check_timeouts(self, now: float) -> str | None:
        """Close the connection if the client has kept the server waiting too long; returns the reason."""
        if self._done or self._task is not None or self._queue or self._read_paused:
            return None  # busy (a long poll, a stream) or owed answers: nothing is expected from the client
        limits = self._state.limits
        if self._in_message:
            if self._head_done_at == 0.0:
                timeout = limits.header_timeout
                start = self._free_since if self._requests == 1 else max(self._begun_at, self._free_since)
                if timeout is not None and now - start > timeout:
                    self._fail(self._limit_error(408, "RequestTimeout", "Request header not received in time."))
                    return "header_timeout"
            else:
                timeout = limits.body_timeout
                start = max(self._head_done_at, self._free_since)
                if timeout is not None and now - start > timeout + self._body_bytes / limits.min_body_rate:
                    self._fail(self._limit_error(408, "RequestTimeout", "Request body not received in time."))
                    return "body_timeout"
            return None
        if self._requests == 0:
            timeout, reason = limits.header_timeout, "header_timeout"  # connected, and never said a word
        else:
            timeout, reason = limits.idle_timeout, "idle_timeout"
        if timeout is not None and now - self._free_since > timeout:
            self._close()
            return reason
        return None

    def _fail(self, response: HttpResponse) -> None:
        """Queue a final error after the answers already owed; nothing more is read from this connection."""
        self._parsing = False
        self._closing = True
        self._expect_continue = False
        self._in_message = False
        self._queue.append((response, CONNECTION_CLOSE))
        self._next()

    def _close(self) -> None:
        self._done = True
        self._parsing = False
        if self._transport is not None:
            self._transport.close()

    def _linger_close(self) -> None:
        """Half-close after an error and discard input briefly, so the client reads the error, not a reset."""
        transport = self._transport
        if transport is None or self._done:
            return
        if self._eof:  # the client sends nothing more: no reset to fear
            self._close()
            return
        if self._read_paused:
            self._read_paused = False
            transport.resume_reading()
        if transport.can_write_eof():
            transport.write_eof()
        self._done = True
        self._linger = self._loop.call_later(LINGER_SECONDS, transport.close)

    # -- server control ---------------------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Graceful stop: answer what is queued and a request half-received, then close (at once when idle)."""
        self._closing = True
        if self._in_message and self._parsing:
            return  # on_message_complete stops reading after this request; its answer closes the connection
        self._parsing = False
        self._expect_continue = False
        if self._task is None:
            if self._linger is not None:  # its error is answered; stop waiting for the client to hang up
                self._linger.cancel()
                self._linger = None
                self._close()
            else:
                self._next()

    def close_if_idle(self) -> bool:
        """Close the connection if nothing happened on it since the previous call; True when closed."""
        idle = self._task is None and not self._queue and self._reads == self._reads_seen and not self._done
        self._reads_seen = self._reads
        if idle:
            self._close()
        return idle

    def abort(self) -> asyncio.Task[None] | None:
        """Hard stop at the end of the grace period: cancel the handler, drop the socket."""
        self._done = True
        task = self._task
        if task is not None:
            task.cancel()
        self._close_now()
        return task

    def _close_now(self) -> None:
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None
        if self._transport is not None:
            self._transport.abort()
