"""The one value encoding of persisted records and log commands: CBOR (cbor2's C extension).

CBOR is stable across Python versions (unlike marshal/pickle), keeps bytes and str apart, and costs ~2 us for a
typical message record. Sequences decode as lists.
"""

from __future__ import annotations

from typing import Any

import cbor2


def pack(value: Any) -> bytes:
    return cbor2.dumps(value)


def unpack(data: bytes) -> Any:
    return cbor2.loads(data)
