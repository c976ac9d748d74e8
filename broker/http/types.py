"""The request and response the HTTP server hands to an application and back: plain data, no I/O."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field


@dataclass(slots=True)
class HttpRequest:
    method: str
    path: str  # without the query string, percent-decoding NOT applied
    query: str  # raw query string without '?', '' when absent
    headers: dict[str, str]  # keys lower-cased; repeated headers joined with ', '
    body: bytes
    client_host: str = ""
    # Set by the server when the request is received; lets handlers log and return one id.
    request_id: str = ""


@dataclass(slots=True)
class HttpResponse:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    content_type: str = "application/json"
    # A body produced over time (e.g. an AWS event stream): sent with chunked transfer encoding, one chunk per item
    # as the iterator yields it; ``body`` is then ignored. The server closes the iterator when it stops reading it.
    stream: AsyncIterator[bytes] | None = None


HttpHandler = Callable[[HttpRequest], Awaitable[HttpResponse]]
