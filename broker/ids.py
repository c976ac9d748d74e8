"""Random ids in UUID version-4 form (request ids, message ids), far cheaper than ``str(uuid.uuid4())``.

Ids come from a pool filled by ``os.urandom(4096)`` (one system call per 256 ids); a forked child starts a new pool
so it never hands out its parent's ids.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

_VARIANT = "89ab"


def _uuid4s() -> Iterator[str]:
    while True:
        pool = os.urandom(4096).hex()
        for i in range(0, len(pool), 32):
            h = pool[i:i + 32]
            yield f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


_ids = _uuid4s()


def random_uuid() -> str:
    """A random RFC 4122 version-4 UUID string."""
    return next(_ids)


def _reset_after_fork() -> None:
    global _ids
    _ids = _uuid4s()


os.register_at_fork(after_in_child=_reset_after_fork)
