"""The HTTP/1.1 front door: binds a listening socket, hands connections to ``HttpProtocol``, stops gracefully.

Shutdown follows the order that loses no answered work: stop accepting, close idle keep-alive connections at once,
let requests already received finish until the grace deadline, then cancel the handlers still running and drop
their sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Mapping

from broker.http.limits import HttpLimits
from broker.http.protocol import HttpProtocol, ServerState
from broker.http.types import HttpHandler

logger = logging.getLogger(__name__)

CANCEL_WAIT_SECONDS = 1.0  # how long stop() waits for cancelled handlers to unwind before giving up on them
# As nginx: longer than SDK pools keep idle sockets, short enough that vanished clients do not pile up.
DEFAULT_IDLE_TIMEOUT = 75.0
TLS_HANDSHAKE_TIMEOUT = 10.0  # a client that opens a TLS connection and stalls the handshake is dropped
# Closing a TLS connection waits for the client's close_notify; an SDK's idle pooled connection never sends one, so
# without a bound every idle keep-alive connection would hold a graceful stop for its whole grace period.
TLS_SHUTDOWN_TIMEOUT = 0.5


class HttpServer:
    """An HTTP/1.1 server for one handler, with exact ``(method, path)`` routes taking precedence over it."""

    def __init__(self, handler: HttpHandler, host: str, port: int, *, max_body_bytes: int = 2_200_000,
                 routes: Mapping[tuple[str, str], HttpHandler] | None = None,
                 idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT,
                 ssl_context: ssl.SSLContext | None = None, limits: HttpLimits | None = None) -> None:
        """``idle_timeout``: a connection silent (no request running, no bytes) this long is closed within twice
        this long; ``None`` keeps idle connections forever. ``ssl_context``: serve HTTPS (broker/tls.py).
        ``limits``: abuse limits (broker/http/limits.py: per-service body caps, header and connection limits,
        slow-client and idle timeouts); they replace ``max_body_bytes`` and this coarser idle sweep."""
        if limits is not None:
            max_body_bytes, idle_timeout = limits.largest_body, None
        self._state = ServerState(handler, routes, max_body_bytes, limits)
        self.limits = limits
        self._host = host
        self._port = port
        self._idle_timeout = idle_timeout
        self._ssl = ssl_context
        self._server: asyncio.Server | None = None
        self._sweeper: asyncio.Task[None] | None = None

    @property
    def host(self) -> str:
        """The bound address (after ``start``), e.g. ``127.0.0.1``."""
        return self._host

    @property
    def scheme(self) -> str:
        """``https`` when serving TLS, else ``http``."""
        return "https" if self._ssl is not None else "http"

    @property
    def port(self) -> int:
        """The bound port (after ``start``); the real one when 0 was asked for."""
        return self._port

    async def start(self) -> None:
        """Bind and start accepting connections."""
        if self._server is not None:
            raise RuntimeError("HttpServer already started")
        loop = asyncio.get_running_loop()
        state = self._state
        tls = self._ssl is not None  # the TLS timeouts may only be given with ssl
        self._server = await loop.create_server(lambda: HttpProtocol(state), self._host, self._port,
                                                reuse_address=True, backlog=1024, ssl=self._ssl,
                                                ssl_handshake_timeout=TLS_HANDSHAKE_TIMEOUT if tls else None,
                                                ssl_shutdown_timeout=TLS_SHUTDOWN_TIMEOUT if tls else None)
        # With a host name resolving to several addresses and port 0, each socket gets its own port: we report the
        # first. Bind to a literal address when the port matters.
        sockname = self._server.sockets[0].getsockname()
        self._host, self._port = str(sockname[0]), int(sockname[1])
        if self._idle_timeout is not None:
            self._sweeper = loop.create_task(self._sweep_idle(self._idle_timeout))
        logger.info("HTTP server listening on %s:%d", self._host, self._port)

    async def _sweep_idle(self, period: float) -> None:
        while True:
            await asyncio.sleep(period)
            closed = self._state.close_idle()
            if closed:
                logger.debug("closed %d idle connection(s)", closed)

    async def stop(self, grace: float) -> None:
        """Stop accepting; finish in-flight requests until ``grace`` seconds pass; then cancel the rest and close."""
        server = self._server
        if server is None:
            return
        self._server = None
        server.close()
        state = self._state
        state.begin_drain()
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        try:
            if not state.drained.is_set():
                await asyncio.wait_for(state.drained.wait(), timeout=max(grace, 0.0))
        except TimeoutError:
            tasks = state.abort_all()
            logger.warning("HTTP server stop: grace of %.1fs over, cancelled %d running request(s)",
                           grace, len(tasks))
            if tasks:
                _, pending = await asyncio.wait(tasks, timeout=CANCEL_WAIT_SECONDS)
                if pending:
                    logger.error("HTTP server stop: %d handler(s) ignored cancellation", len(pending))
        await server.wait_closed()
        logger.info("HTTP server on %s:%d stopped", self._host, self._port)
