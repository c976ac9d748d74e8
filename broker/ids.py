"""Random ids in UUID version-4 form (request ids, message ids), far cheaper than ``str(uuid.uuid4())``.

Ids come from a pool of 256 made from one ``os.urandom(4096)`` call: the version and variant bits of all of them
are set with one big-integer mask, and each id is five slices of the pool's hex. A forked child starts a new pool
so it never hands out its parent's ids.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

_POOL_BYTES = 4096
# Per 16 bytes: clear the version nibble (byte 6, high) and the variant's top two bits (byte 8), then set them to
# version 4 and RFC 4122's variant 10xx.
_CLEAR = int.from_bytes(bytes.fromhex("ffffffffffff0fff3fffffffffffffff") * (_POOL_BYTES // 16), "big")
_SET = int.from_bytes(bytes.fromhex("00000000000040008000000000000000") * (_POOL_BYTES // 16), "big")


def _pool() -> list[str]:
    h = (int.from_bytes(os.urandom(_POOL_BYTES), "big") & _CLEAR | _SET).to_bytes(_POOL_BYTES, "big").hex()
    return [f"{h[i:i + 8]}-{h[i + 8:i + 12]}-{h[i + 12:i + 16]}-{h[i + 16:i + 20]}-{h[i + 20:i + 32]}"
            for i in range(0, 2 * _POOL_BYTES, 32)]


def _uuid4s() -> Iterator[str]:
    while True:
        yield from _pool()


_ids = _uuid4s()


def random_uuid() -> str:
    """A random RFC 4122 version-4 UUID string."""
    return next(_ids)


def _reset_after_fork() -> None:
    global _ids
    _ids = _uuid4s()


os.register_at_fork(after_in_child=_reset_after_fork)
