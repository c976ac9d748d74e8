"""Wake-ups for long pollers: the state machine notifies a key (e.g. a queue) after a durable change."""

from __future__ import annotations

import asyncio
from collections.abc import Hashable


class Notifier:
    """Per-key events; ``wait`` returns True when notified, False on timeout or shutdown."""

    def __init__(self) -> None:
        self._waiters: dict[Hashable, set[asyncio.Future[bool]]] = {}
        self._closed = False

    def notify(self, key: Hashable) -> None:
        waiters = self._waiters.pop(key, None)
        if waiters:
            for fut in waiters:
                if not fut.done():
                    fut.set_result(True)

    async def wait(self, key: Hashable, timeout: float) -> bool:
        if self._closed or timeout <= 0:
            return False
        fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(key, set()).add(fut)
        try:
            return await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            return False
        finally:
            waiters = self._waiters.get(key)
            if waiters is not None:
                waiters.discard(fut)
                if not waiters:
                    del self._waiters[key]

    def close(self) -> None:
        """End every long poll now (shutdown): waiters return False."""
        self._closed = True
        for waiters in self._waiters.values():
            for fut in waiters:
                if not fut.done():
                    fut.set_result(False)
        self._waiters.clear()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def waiting(self) -> int:
        return sum(len(w) for w in self._waiters.values())
