"""A minimal asyncio HTTP/1.1 client for SNS deliveries: one POST per connection, status code back.

SNS needs nothing more (no redirects, no keep-alive, no response body), so no client library is added. A response
is read with httptools' parser until its headers are complete.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from urllib.parse import urlsplit

import httptools

DEFAULT_TIMEOUT_S = 15.0  # AWS waits 15 s for an HTTP(S) endpoint to answer


class _Status:
    def __init__(self) -> None:
        self.done = False

    def on_headers_complete(self) -> None:
        self.done = True


async def post(url: str, body: bytes, headers: dict[str, str], timeout: float = DEFAULT_TIMEOUT_S) -> int:
    """POST ``body`` to ``url``; the response's status code (raises OSError/TimeoutError on transport failure)."""
    return await asyncio.wait_for(_post(url, body, headers), timeout)


async def _post(url: str, body: bytes, headers: dict[str, str]) -> int:
    parts = urlsplit(url)
    https = parts.scheme == "https"
    host = parts.hostname or ""
    port = parts.port or (443 if https else 80)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    context = ssl.create_default_context() if https else None
    reader, writer = await asyncio.open_connection(host, port, ssl=context)
    try:
        host_header = parts.netloc.rsplit("@", 1)[-1]
        head = [f"POST {path} HTTP/1.1", f"Host: {host_header}", f"Content-Length: {len(body)}",
                "Connection: close", *(f"{k}: {v}" for k, v in headers.items())]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
        await writer.drain()
        status = _Status()
        parser = httptools.HttpResponseParser(status)
        while not status.done:
            data = await reader.read(65536)
            if not data:
                raise ConnectionError("connection closed before the response headers")
            parser.feed_data(data)
        code: int = parser.get_status_code()
        return code
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
