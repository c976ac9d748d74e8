"""Bytes on the wire for responses: status lines, the cached Date header, request ids, one buffer per response.

Kept apart from the connection logic so the cost of a response is visible in one place: every response is built by
one ``bytes.join`` and leaves in one ``transport.write``.
"""

from __future__ import annotations

import time
from email.utils import formatdate
from http import HTTPStatus

import orjson

from broker.http.types import HttpResponse
from broker.ids import random_uuid

CONNECTION_CLOSE = b"Connection: close\r\n"
CONNECTION_KEEP_ALIVE = b"Connection: keep-alive\r\n"
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"

# Framing is the server's job: a handler's values for these would contradict what we send.
_RESERVED = frozenset({"content-length", "transfer-encoding", "connection", "date"})
_NO_BODY = frozenset({204, 304})

_status_lines: dict[int, bytes] = {}


def status_line(status: int) -> bytes:
    """``HTTP/1.1 <status> <reason>\\r\\n``, built once per status code."""
    line = _status_lines.get(status)
    if line is None:
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = "Unknown"
        line = f"HTTP/1.1 {status} {reason}\r\n".encode("ascii")
        _status_lines[status] = line
    return line


class DateCache:
    """The ``Date`` header line, formatted at most once per second (formatting costs more than a request)."""

    __slots__ = ("_line", "_second")

    def __init__(self) -> None:
        self._second = -1
        self._line = b""

    def line(self) -> bytes:
        now = int(time.time())
        if now != self._second:
            self._second = now
            self._line = b"Date: " + formatdate(now, usegmt=True).encode("ascii") + b"\r\n"
        return self._line


DATES = DateCache()


def new_request_id() -> str:
    """A UUID-formatted random id, as AWS request ids look."""
    return random_uuid()

_content_type_lines: dict[str, bytes] = {}


def _content_type_line(content_type: str) -> bytes:
    line = _content_type_lines.get(content_type)
    if line is None:
        if "\r" in content_type or "\n" in content_type:
            raise ValueError(f"invalid content type {content_type!r}")
        line = f"Content-Type: {content_type}\r\n".encode("latin-1")
        if len(_content_type_lines) < 64:
            _content_type_lines[content_type] = line
    return line


def _append_headers(parts: list[bytes], headers: list[tuple[str, str]]) -> bool:
    """Append a handler's headers; True when it set its own request id."""
    has_id = False
    for name, value in headers:
        lower = name.lower()
        if lower in _RESERVED:
            continue
        if lower == "x-amzn-requestid":
            has_id = True
        if "\r" in value or "\n" in value or "\r" in name or "\n" in name or ":" in name:
            raise ValueError(f"invalid response header {name!r}")
        parts.append(f"{name}: {value}\r\n".encode("latin-1"))
    return has_id


LAST_CHUNK = b"0\r\n\r\n"


def encode_stream_head(response: HttpResponse, request_id: str, connection: bytes) -> bytes:
    """Status line and headers of a streamed response (``Transfer-Encoding: chunked``, no length)."""
    parts = [status_line(response.status), DATES.line(), _content_type_line(response.content_type)]
    has_id = _append_headers(parts, response.headers) if response.headers else False
    if connection:
        parts.append(connection)
    if not has_id:
        parts.append(f"x-amzn-RequestId: {request_id}\r\n".encode("latin-1"))
    parts.append(b"Transfer-Encoding: chunked\r\n\r\n")
    return b"".join(parts)


def encode_chunk(data: bytes) -> bytes:
    """One chunk of a chunked body (never empty: an empty chunk would end the body)."""
    return b"%x\r\n%b\r\n" % (len(data), data)


def encode_response(response: HttpResponse, request_id: str, connection: bytes, head: bool) -> bytes:
    """The whole response as one buffer.

    ``connection`` is the ``Connection`` header line to add (or ``b""``); ``head`` drops the body of a HEAD answer
    while keeping its length. Raises ``ValueError`` when a handler header would split the response (CR/LF).
    """
    status = response.status
    body = response.body
    parts = [status_line(status), DATES.line(), _content_type_line(response.content_type)]
    has_id = _append_headers(parts, response.headers) if response.headers else False
    if connection:
        parts.append(connection)
    if status < 200 or status in _NO_BODY:
        tail = "\r\n" if has_id else f"x-amzn-RequestId: {request_id}\r\n\r\n"
        parts.append(tail.encode("latin-1"))
    else:
        if has_id:
            tail = f"Content-Length: {len(body)}\r\n\r\n"
        else:
            tail = f"x-amzn-RequestId: {request_id}\r\nContent-Length: {len(body)}\r\n\r\n"
        parts.append(tail.encode("latin-1"))
        if not head:
            parts.append(body)
    return b"".join(parts)


def error_response(status: int, code: str, message: str, request_id: str = "") -> HttpResponse:
    """A JSON error in the AWS JSON-protocol shape, for failures the server answers itself (400, 413, 431, 500)."""
    doc: dict[str, str] = {"__type": code, "message": message}
    if request_id:
        doc["RequestId"] = request_id
    return HttpResponse(status, orjson.dumps(doc), content_type="application/x-amz-json-1.0")
