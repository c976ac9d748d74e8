"""Per-shard throughput limits as AWS enforces them, kept on the node that serves the call (not replicated).

One-second fixed windows per shard: writes up to 1 MiB and 1,000 records, reads up to 5 GetRecords calls and
2 MiB. A window resets when the second changes; the limits are checked before anything is proposed or read.
"""

from __future__ import annotations

from collections.abc import Hashable

WRITE_BYTES = 1 << 20
WRITE_RECORDS = 1000
READ_CALLS = 5
READ_BYTES = 2 << 20


class _Window:
    __slots__ = ("bytes", "count", "second")

    def __init__(self, second: int) -> None:
        self.second = second
        self.count = 0
        self.bytes = 0


class ShardThrottle:
    """Admission decisions for writes and reads per shard key; ``enabled`` False admits everything."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._writes: dict[Hashable, _Window] = {}
        self._reads: dict[Hashable, _Window] = {}

    @staticmethod
    def _window(table: dict[Hashable, _Window], key: Hashable, now_ms: int) -> _Window:
        second = now_ms // 1000
        window = table.get(key)
        if window is None or window.second != second:
            if len(table) > 100_000:
                table.clear()  # bound memory: stale windows of vanished shards
            window = table[key] = _Window(second)
        return window

    def admit_write(self, key: Hashable, size: int, now_ms: int) -> bool:
        """Account one record of ``size`` bytes; False (and nothing accounted) when the shard is over its limit."""
        if not self.enabled:
            return True
        window = self._window(self._writes, key, now_ms)
        if window.count + 1 > WRITE_RECORDS or window.bytes + size > WRITE_BYTES:
            return False
        window.count += 1
        window.bytes += size
        return True

    def admit_read(self, key: Hashable, now_ms: int) -> bool:
        """Account one GetRecords call; False when the shard had 5 calls or 2 MiB in this second."""
        if not self.enabled:
            return True
        window = self._window(self._reads, key, now_ms)
        if window.count + 1 > READ_CALLS or window.bytes >= READ_BYTES:
            return False
        window.count += 1
        return True

    def note_read_bytes(self, key: Hashable, size: int, now_ms: int) -> None:
        if self.enabled:
            self._window(self._reads, key, now_ms).bytes += size
