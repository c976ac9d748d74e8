"""Order-preserving key codecs: every LMDB key in RaftMQ is built here, so byte order equals logical order."""

from __future__ import annotations

import struct

_U64 = struct.Struct(">Q")
_U64_PAIR = struct.Struct(">QQ")

u64_pack = _U64.pack
u64_pair_pack = _U64_PAIR.pack


def u64(value: int) -> bytes:
    """An unsigned 64-bit integer, big-endian: sorts numerically."""
    return _U64.pack(value)


def u64_from(key: bytes) -> int:
    value: int = _U64.unpack_from(key)[0]
    return value


def u64_pair(high: int, low: int) -> bytes:
    return _U64_PAIR.pack(high, low)


def u64_pair_from(key: bytes) -> tuple[int, int]:
    high, low = _U64_PAIR.unpack_from(key)
    return high, low


def text(*parts: str) -> bytes:
    """Strings joined by NUL: sorts by the first part, then the next (names never contain NUL)."""
    return "\x00".join(parts).encode()


def text_from(key: bytes) -> list[str]:
    return key.decode().split("\x00")
