"""Response encoding: the bytes a handler's HttpResponse turns into."""

from __future__ import annotations

import re

import pytest

from broker.http.types import HttpResponse
from broker.http.wire import (
    CONNECTION_CLOSE,
    DateCache,
    encode_response,
    error_response,
    new_request_id,
    status_line,
)


def test_request_ids_are_uuid_shaped_and_distinct() -> None:
    ids = {new_request_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", i) for i in ids)


def test_status_lines_including_unknown_codes() -> None:
    assert status_line(200) == b"HTTP/1.1 200 OK\r\n"
    assert status_line(413) == b"HTTP/1.1 413 Request Entity Too Large\r\n"
    assert status_line(599) == b"HTTP/1.1 599 Unknown\r\n"


def test_date_is_formatted_once_per_second(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1_700_000_000.2]
    monkeypatch.setattr("broker.http.wire.time.time", lambda: now[0])
    cache = DateCache()
    first = cache.line()
    assert first == b"Date: Tue, 14 Nov 2023 22:13:20 GMT\r\n"
    now[0] += 0.5
    assert cache.line() is first  # same second: the cached bytes
    now[0] += 1
    assert cache.line() == b"Date: Tue, 14 Nov 2023 22:13:21 GMT\r\n"


def test_encoding_is_one_well_formed_buffer() -> None:
    data = encode_response(HttpResponse(200, b"{}", [("X-A", "1")]), "rid", CONNECTION_CLOSE, head=False)
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"HTTP/1.1 200 OK"
    assert set(lines[1:]) >= {b"Content-Type: application/json", b"X-A: 1", b"x-amzn-RequestId: rid",
                              b"Connection: close", b"Content-Length: 2"}
    assert body == b"{}"


def test_reserved_headers_from_handlers_are_dropped() -> None:
    data = encode_response(HttpResponse(200, b"abc", [("content-length", "1"), ("Transfer-Encoding", "chunked"),
                                                      ("Connection", "keep-alive")]), "r", b"", head=False)
    assert data.count(b"Content-Length") == 1 and b"Content-Length: 3\r\n" in data
    assert b"chunked" not in data and b"keep-alive" not in data


@pytest.mark.parametrize("header", [("X-Bad", "a\nb"), ("X-Bad", "a\rb"), ("X:Bad", "v"), ("X\nBad", "v")])
def test_headers_that_would_split_the_response_are_refused(header: tuple[str, str]) -> None:
    with pytest.raises(ValueError):
        encode_response(HttpResponse(200, headers=[header]), "r", b"", head=False)


def test_error_response_names_the_request_id() -> None:
    response = error_response(500, "InternalFailure", "boom", "rid-1")
    assert response.status == 500
    assert response.body == b'{"__type":"InternalFailure","message":"boom","RequestId":"rid-1"}'


def test_request_ids_are_version_4_uuids() -> None:
    import uuid

    for _ in range(300):  # more than one pool of 256
        parsed = uuid.UUID(new_request_id())
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
