"""``HttpServer`` with abuse limits: per-service body caps, header and connection limits, slow-client and idle
timeouts (``broker.http.limits``).

A subclass rather than a change to ``HttpServer`` only because that file has another owner: the limits live in
``ServerState`` and its connections (``broker.http.protocol``); this class only hands them over, and turns off the
base server's coarser idle sweep, which ``HttpLimits.idle_timeout`` replaces.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping

from broker.http.limits import HttpLimits
from broker.http.protocol import ServerState
from broker.http.server import HttpServer
from broker.http.types import HttpHandler


class LimitedHttpServer(HttpServer):
    """An HTTP/1.1 server enforcing ``limits``; start and stop exactly as ``HttpServer``."""

    def __init__(self, handler: HttpHandler, host: str, port: int, *, limits: HttpLimits | None = None,
                 routes: Mapping[tuple[str, str], HttpHandler] | None = None,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        limits = limits if limits is not None else HttpLimits()
        super().__init__(handler, host, port, max_body_bytes=limits.largest_body, routes=routes, idle_timeout=None,
                         ssl_context=ssl_context)
        self._state = ServerState(handler, routes, limits.largest_body, limits)
        self.limits = limits
