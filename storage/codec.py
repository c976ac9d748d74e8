"""The one value encoding of persisted records and log commands: JSON (orjson) where it can, CBOR where it must.

Both are stable across Python versions (unlike marshal/pickle). Nearly every record and command is lists, str, int
and None, which orjson encodes 10-30x faster than cbor2's encoder (a 10-message SendMessages command: ~1 us against
~33 us), and that encoding sat on the hot path of every message several times. Values JSON cannot carry (bytes,
integers beyond 64 bits, non-str map keys) are CBOR, which keeps bytes and str apart. A JSON value is marked by a
first byte that can never start a CBOR item (0x1c is reserved in CBOR's major type 0), so data written before this
encoding existed, all CBOR, still decodes. Sequences decode as lists either way.

Contract: values are None, bool, int, str, bytes, finite floats, lists/tuples and dicts. JSON has no infinity or
NaN (orjson writes them as null); nothing the broker stores holds one (request numbers are validated integers, and
JSON documents such as policies are kept as strings).
"""

from __future__ import annotations

from typing import Any

import cbor2
import orjson

_JSON = b"\x1c"
_JSON_BYTE = _JSON[0]
# Dataclasses, datetimes and str/int/list/dict subclasses would otherwise become JSON shapes CBOR would not
# produce; passed through, they go to ``_plain`` and from there to CBOR unless they are plain tuples underneath.
_OPTIONS = orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_SUBCLASS


def _plain(value: Any) -> Any:
    """NamedTuples (tuple subclasses, which orjson refuses) travel as arrays, as CBOR encodes them."""
    if isinstance(value, tuple):
        return tuple(value)
    raise TypeError


def pack(value: Any) -> bytes:
    try:
        return _JSON + orjson.dumps(value, default=_plain, option=_OPTIONS)
    except TypeError:  # orjson.JSONEncodeError is a TypeError: bytes, a big int, a non-str key...
        return cbor2.dumps(value)


def unpack(data: bytes) -> Any:
    if data[:1] == _JSON:
        return orjson.loads(memoryview(data)[1:])
    return cbor2.loads(data)
