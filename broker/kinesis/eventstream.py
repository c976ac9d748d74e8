"""AWS event-stream framing (``application/vnd.amazon.eventstream``), the encoding of SubscribeToShard responses.

A message is: total length (u32), headers length (u32), CRC32 of those 8 bytes, headers, payload, CRC32 of all
that precedes it. Each header is name length (u8), name, value type (7 = string), value length (u16), value.
"""

from __future__ import annotations

import struct
import zlib

CONTENT_TYPE = "application/vnd.amazon.eventstream"
_STRING = 7
_PRELUDE = struct.Struct(">II")
_CRC = struct.Struct(">I")


def _headers(headers: list[tuple[str, str]]) -> bytes:
    out = bytearray()
    for name, value in headers:
        raw_name, raw_value = name.encode(), value.encode()
        out += struct.pack(">B", len(raw_name)) + raw_name + struct.pack(">BH", _STRING, len(raw_value)) + raw_value
    return bytes(out)


def message(headers: list[tuple[str, str]], payload: bytes) -> bytes:
    encoded = _headers(headers)
    total = _PRELUDE.size + _CRC.size + len(encoded) + len(payload) + _CRC.size
    prelude = _PRELUDE.pack(total, len(encoded))
    head = prelude + _CRC.pack(zlib.crc32(prelude)) + encoded + payload
    return head + _CRC.pack(zlib.crc32(head))


def event(event_type: str, content_type: str, payload: bytes) -> bytes:
    return message([(":message-type", "event"), (":event-type", event_type), (":content-type", content_type)],
                   payload)


def exception(code: str, content_type: str, payload: bytes) -> bytes:
    return message([(":message-type", "exception"), (":exception-type", code), (":content-type", content_type)],
                   payload)
