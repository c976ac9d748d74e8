"""Protocols through which the pure model writes and reads its persistent tables.

The model never touches LMDB: ``apply`` records what it changes into a ``ChangeSink``; the runtime writes those
changes in the same LMDB transaction as ``last_applied``. At start-up the model rebuilds its in-memory indexes from a
``TableReader``. ``ChangeSet`` and ``MemoryTables`` are the plain in-memory implementations used by the runtime's
batching and by tests.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol


class ChangeSink(Protocol):
    def put(self, table: str, key: bytes, value: bytes) -> None: ...

    def delete(self, table: str, key: bytes) -> None: ...


class TableReader(Protocol):
    def get(self, table: str, key: bytes) -> bytes | None: ...

    def scan(self, table: str, prefix: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        """Yield (key, value) in key order."""
        ...


class ChangeSet:
    """Changes collected in order; ``None`` as value means delete."""

    __slots__ = ("ops",)

    def __init__(self) -> None:
        self.ops: list[tuple[str, bytes, bytes | None]] = []

    def put(self, table: str, key: bytes, value: bytes) -> None:
        self.ops.append((table, key, value))

    def delete(self, table: str, key: bytes) -> None:
        self.ops.append((table, key, None))

    def __len__(self) -> int:
        return len(self.ops)


class MemoryTables:
    """Dict-backed tables: a ChangeSink and a TableReader at once, for tests and tools."""

    def __init__(self) -> None:
        self.tables: dict[str, dict[bytes, bytes]] = {}

    def put(self, table: str, key: bytes, value: bytes) -> None:
        self.tables.setdefault(table, {})[key] = value

    def delete(self, table: str, key: bytes) -> None:
        self.tables.get(table, {}).pop(key, None)

    def get(self, table: str, key: bytes) -> bytes | None:
        return self.tables.get(table, {}).get(key)

    def scan(self, table: str, prefix: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        rows = self.tables.get(table, {})
        for key in sorted(rows):
            if key.startswith(prefix):
                yield key, rows[key]

    def apply(self, changes: ChangeSet) -> None:
        for table, key, value in changes.ops:
            if value is None:
                self.delete(table, key)
            else:
                self.put(table, key, value)
