"""Shard iterators: opaque, tamper-proof tokens naming a stream, a shard, a position and the time of issue.

The token is base64 of ``stream id | shard index | next counter | issued ms | account NUL name`` followed by a
16-byte HMAC-SHA256 under the iterator key, which is replicated state, so any node can check any node's iterators.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import struct
from dataclasses import dataclass
from datetime import UTC, datetime
from hashlib import sha256

from broker.model.kinesis_errors import ExpiredIteratorException, InvalidArgumentException

_HEAD = struct.Struct(">QIQQ")
_MAC_LEN = 16


@dataclass(frozen=True, slots=True)
class Position:
    stream_id: int
    shard_index: int
    counter: int  # the next record to read
    issued_ms: int
    account: str
    name: str


def encode_iterator(key: bytes, pos: Position) -> str:
    payload = _HEAD.pack(pos.stream_id, pos.shard_index, pos.counter, pos.issued_ms) + (
        f"{pos.account}\x00{pos.name}".encode())
    mac = hmac.new(key, payload, sha256).digest()[:_MAC_LEN]
    return base64.b64encode(payload + mac).decode("ascii")


def decode_iterator(key: bytes | None, token: str) -> Position:
    """The position a token names; InvalidArgumentException for anything we did not issue."""
    try:
        raw = base64.b64decode(token, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidArgumentException("Invalid ShardIterator.") from None
    payload, mac = raw[:-_MAC_LEN], raw[-_MAC_LEN:]
    if key is None or len(payload) < _HEAD.size + 1 or not hmac.compare_digest(
            mac, hmac.new(key, payload, sha256).digest()[:_MAC_LEN]):
        raise InvalidArgumentException("Invalid ShardIterator.")
    stream_id, index, counter, issued = _HEAD.unpack_from(payload)
    account, _, name = payload[_HEAD.size:].decode().partition("\x00")
    return Position(stream_id, index, counter, issued, account, name)


def _java_date(ms: int) -> str:
    """java.util.Date#toString in UTC, the form AWS's expired-iterator message uses."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%a %b %d %H:%M:%S UTC %Y")


def check_fresh(pos: Position, now_ms: int, ttl_ms: int) -> None:
    if now_ms - pos.issued_ms > ttl_ms:
        raise ExpiredIteratorException(
            f"Iterator expired. The iterator was created at time {_java_date(pos.issued_ms)} while right now it is "
            f"{_java_date(now_ms)} which is further in the future than the tolerated delay of {ttl_ms} milliseconds.")
