"""The node's one LMDB environment: named tables, durable batched writes, and reads for start-up.

Writes happen in exactly one thread (the caller's writer thread); each ``write`` is one transaction committed with
fsync (``sync=True``), so a crash leaves the last committed batch intact and nothing half-written. The map grows by
doubling when full instead of failing the node.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable, Iterator
from typing import Any

import lmdb

from storage.changes import ChangeSet, RowOp, encoded

log = logging.getLogger(__name__)

DEFAULT_MAP_SIZE = 4 << 30  # grows on demand; address space only, the file grows with the data
META_TABLE = "meta"


class LmdbStore:
    """One LMDB environment with lazily created named tables; a TableReader, and a batch writer."""

    def __init__(self, path: str, *, map_size: int = DEFAULT_MAP_SIZE) -> None:
        os.makedirs(path, exist_ok=True)
        self.path = path
        self.env = lmdb.open(path, map_size=map_size, max_dbs=256, subdir=True, sync=True, metasync=True,
                             readahead=False, meminit=False, max_readers=256)
        self._dbs: dict[str, Any] = {}
        self._lock = threading.Lock()  # guards _dbs creation (writer thread vs. start-up readers)

    def _db(self, name: str, txn: lmdb.Transaction | None = None) -> Any:
        db = self._dbs.get(name)
        if db is None:
            with self._lock:
                db = self._dbs.get(name)
                if db is None:
                    db = self.env.open_db(name.encode(), txn=txn, create=True)
                    self._dbs[name] = db
        return db

    # -- writes (writer thread only) ---------------------------------------------------------------------------

    def write(self, changes: ChangeSet | Iterable[RowOp],
              delete_ranges: Iterable[tuple[str, bytes, bytes]] = ()) -> None:
        """Apply puts/deletes (and deletes of key ranges [lo, hi)) in one durable transaction (fsync on return);
        ``Lazy`` values are encoded here."""
        ops: list[RowOp] = list(changes.ops if isinstance(changes, ChangeSet) else changes)
        ranges = list(delete_ranges)
        while True:
            try:
                self._write_once(ops, ranges)
                return
            except lmdb.MapFullError:
                new_size = self.env.info()["map_size"] * 2
                log.warning("LMDB map full; growing to %d bytes", new_size)
                self.env.set_mapsize(new_size)

    def _write_once(self, ops: list[RowOp], ranges: list[tuple[str, bytes, bytes]]) -> None:
        # Tables are created outside the batch transaction so a failed batch leaves no half-registered handle.
        for name in ({table for table, _, _ in ops} | {table for table, _, _ in ranges}) - self._dbs.keys():
            with self.env.begin(write=True) as txn:
                self._db(name, txn)
        with self.env.begin(write=True) as txn:
            # Runs of puts into one table go to LMDB in one ``putmulti`` (a C loop); order is kept.
            dbs = self._dbs
            run: list[tuple[bytes, bytes]] = []
            run_table = ""
            for table, key, value in ops:
                if value is None:
                    if run:
                        txn.cursor(db=dbs[run_table]).putmulti(run)
                        run = []
                    txn.delete(key, db=dbs[table])
                    continue
                if table != run_table and run:
                    txn.cursor(db=dbs[run_table]).putmulti(run)
                    run = []
                run_table = table
                run.append((key, value if value.__class__ is bytes else encoded(value)))
            if run:
                txn.cursor(db=dbs[run_table]).putmulti(run)
            for table, lo, hi in ranges:
                cursor = txn.cursor(db=self._dbs[table])
                if cursor.set_range(lo):
                    while cursor.key() < hi and cursor.delete():
                        pass

    # -- reads -------------------------------------------------------------------------------------------------

    def _existing_db(self, name: str) -> Any | None:
        db = self._dbs.get(name)
        if db is not None:
            return db
        with self.env.begin() as txn:
            if txn.get(name.encode()) is None:
                return None
        return self._db(name)

    def get(self, table: str, key: bytes) -> bytes | None:
        db = self._existing_db(table)
        if db is None:
            return None
        with self.env.begin(db=db) as txn:
            value = txn.get(key)
            return bytes(value) if value is not None else None

    def scan(self, table: str, prefix: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        db = self._existing_db(table)
        if db is None:
            return
        with self.env.begin(db=db) as txn:
            cursor = txn.cursor()
            if not cursor.set_range(prefix):
                return
            for key, value in cursor:
                if not key.startswith(prefix):
                    break
                yield bytes(key), bytes(value)

    def first_key(self, table: str) -> bytes | None:
        db = self._existing_db(table)
        if db is None:
            return None
        with self.env.begin(db=db) as txn:
            cursor = txn.cursor()
            return bytes(cursor.key()) if cursor.first() else None

    def last_key(self, table: str) -> bytes | None:
        db = self._existing_db(table)
        if db is None:
            return None
        with self.env.begin(db=db) as txn:
            cursor = txn.cursor()
            return bytes(cursor.key()) if cursor.last() else None

    def close(self) -> None:
        self.env.close()
