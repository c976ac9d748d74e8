"""Protocols through which the pure model writes and reads its persistent tables.

The model never touches LMDB: ``apply`` records what it changes into a ``ChangeSink``; the runtime absorbs those
changes and writes them at its next checkpoint together with ``last_applied`` (``storage.deferred``). At start-up
the model rebuilds its in-memory indexes from a ``TableReader``. ``ChangeSet`` and ``MemoryTables`` are the plain
in-memory implementations used by the runtime's batching and by tests.

A row's value is bytes, or a ``Lazy`` pair ``(encode, value)`` that is encoded only if the row is ever read back or
written: most queue messages are gone before the next checkpoint, and then encoding them was wasted work.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Protocol

Lazy = tuple[Callable[[Any], bytes], Any]
Row = bytes | Lazy
Key = tuple[str, bytes]  # (table, key)
Op = tuple[str, bytes, bytes | None]
RowOp = tuple[str, bytes, Row | None]  # an op whose value may still be Lazy: LmdbStore.write encodes it


def encoded(row: Row) -> bytes:
    """The bytes of a row value (encoding a ``Lazy`` one now)."""
    if isinstance(row, tuple):
        return row[0](row[1])
    return row


class ChangeSink(Protocol):
    def put(self, table: str, key: bytes, value: Row) -> None: ...

    def create(self, table: str, key: bytes, value: Row) -> None:
        """``put`` of a row the model knows never existed (a new message): if it is removed before the next
        checkpoint, neither write reaches the disk (``storage.deferred``)."""
        ...

    def delete(self, table: str, key: bytes) -> None: ...

    def put_payload(self, table: str, key: bytes, value: bytes) -> None:
        """Write a row that ``restore`` never reads back (Kinesis record data). It goes to the disk with the batch
        instead of waiting for a checkpoint: replaying the log after a crash rewrites it identically, so being
        ahead of the checkpoint is harmless, and big write-once data then never makes a checkpoint slow."""
        ...

    def delete_payload(self, table: str, key: bytes) -> None: ...


class TableReader(Protocol):
    def get(self, table: str, key: bytes) -> bytes | None: ...

    def scan(self, table: str, prefix: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        """Yield (key, value) in key order."""
        ...


class ChangeSet:
    """The last change of each row (``None``: deleted), keyed by (table, key); ``created`` holds the rows that
    ``create`` wrote. A dict rather than a list of ops, so that absorbing a batch is one ``dict.update``.
    ``payload`` holds the payload rows' changes in order, for the batch's own write."""

    __slots__ = ("created", "deleted", "payload", "rows")

    def __init__(self) -> None:
        self.rows: dict[Key, Row | None] = {}
        self.created: set[Key] = set()
        self.deleted: set[Key] = set()
        self.payload: list[Op] = []

    def put(self, table: str, key: bytes, value: Row) -> None:
        self.rows[table, key] = value

    def create(self, table: str, key: bytes, value: Row) -> None:
        row = (table, key)
        self.rows[row] = value
        self.created.add(row)

    def delete(self, table: str, key: bytes) -> None:
        row = (table, key)
        self.rows[row] = None
        self.deleted.add(row)

    def put_payload(self, table: str, key: bytes, value: bytes) -> None:
        self.payload.append((table, key, value))

    def delete_payload(self, table: str, key: bytes) -> None:
        self.payload.append((table, key, None))

    @property
    def ops(self) -> list[Op]:
        """The changes as (table, key, bytes or None) for ``LmdbStore.write``, rows created and deleted again
        left out."""
        created = self.created
        return self.payload + [(table, key, None if value is None else encoded(value))
                               for (table, key), value in self.rows.items()
                               if value is not None or (table, key) not in created]

    def __len__(self) -> int:
        return len(self.rows) + len(self.payload)


class MemoryTables:
    """Dict-backed tables: a ChangeSink and a TableReader at once, for tests and tools."""

    def __init__(self) -> None:
        self.tables: dict[str, dict[bytes, bytes]] = {}

    def put(self, table: str, key: bytes, value: Row) -> None:
        self.tables.setdefault(table, {})[key] = encoded(value)

    create = put
    put_payload = put

    def delete(self, table: str, key: bytes) -> None:
        self.tables.get(table, {}).pop(key, None)

    delete_payload = delete

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
