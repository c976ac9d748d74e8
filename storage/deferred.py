"""State-table changes held in memory between checkpoints, readable as if they were already in LMDB.

The log is what makes a command durable; the state tables are only a checkpoint that spares replaying the whole log
at start-up. So the replicators do not write every applied batch's state changes to LMDB: they absorb them here
and write them all, with the applied index they reach, in one transaction every so often (a *checkpoint*). A row
written and removed between two checkpoints never reaches the disk at all, which is the common life of a queue
message (sent, received, deleted within milliseconds): at high rates most of LMDB's B-tree work disappears. A
crash loses nothing: the tables and their ``last_applied`` are consistent at the last checkpoint, and the log
entries after it are kept until a later checkpoint covers them, so they are replayed.

``DeferredTables`` is also the ``TableReader`` of everything that reads state rows back at run time (Kinesis
records): pending rows first, then the rows a checkpoint is writing, then LMDB.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator

from storage.changes import ChangeSet, ChangeSink, Key, Row, RowOp, encoded
from storage.lmdb_store import LmdbStore

# A checkpoint is due once this many pending rows would be written (rows created and removed again do not count),
# or this long after the oldest pending change: long enough for a message's whole life to fall inside one window at
# high rates, short enough to bound replay. The row bound keeps each checkpoint small when every row survives (a
# backlog being filled), as a checkpoint holds up the writes that follow it; it also bounds memory, as dead rows
# leave at once. When most rows created in a window outlived it, waiting gains nothing: the next window ends at a
# quarter of the rows, so a backlog fill writes small checkpoints often.
CHECKPOINT_ROWS = 16_384
CHECKPOINT_SECONDS = 2.0


class DeferredTables:
    """Pending state rows since the last checkpoint (``None`` = deleted), over an ``LmdbStore``."""

    def __init__(self, store: LmdbStore, *, max_rows: int = CHECKPOINT_ROWS,
                 max_seconds: float = CHECKPOINT_SECONDS) -> None:
        self.store = store
        self.max_rows = max_rows
        self.max_seconds = max_seconds
        self._pending: dict[Key, Row | None] = {}
        self._flushing: dict[Key, Row | None] = {}
        # Rows created since the last checkpoint and still there, so certainly absent from LMDB: deleting one drops
        # it from the pending rows at once, rather than leaving a delete for the checkpoint to skip.
        self._created: set[Key] = set()
        self._born = 0  # rows created since the last checkpoint, dead or alive (for the adaptive window)
        self._live_limit = max_rows  # live rows that make a checkpoint due (see CHECKPOINT_ROWS)
        self.since: float | None = None  # the caller's clock when the oldest pending change was absorbed

    # -- collecting ------------------------------------------------------------------------------------------
    def absorb(self, changes: ChangeSet, now: float) -> None:
        """Take the changes of an applied, durable batch (later batches replace earlier rows)."""
        if not changes.rows:
            return
        if self.since is None:
            self.since = now
        self._merge(changes)

    def _merge(self, changes: ChangeSet) -> None:
        pending = self._pending
        pending.update(changes.rows)
        created = self._created
        if changes.created:
            self._born += len(changes.created)
            created |= changes.created
        if changes.deleted and created:
            dead = changes.deleted & created  # set intersections run in C
            if dead:
                for row in dead:
                    if pending[row] is None:  # not created again after the delete, in the same batch
                        del pending[row]
                        created.discard(row)

    @property
    def live_rows(self) -> int:
        """Pending rows a checkpoint now would write (every pending row, since dead ones leave at once)."""
        return len(self._pending)

    def due(self, now: float, held: int = 0) -> bool:
        """Whether a checkpoint should be written now (``now`` on the same clock as ``absorb``'s). ``held``: rows
        the state machine holds back for the checkpoint itself (``take``'s ``flush``); they count as pending from
        the first call that reports them."""
        if held and self.since is None:
            self.since = now
        if self.since is None:
            return False
        return self.live_rows + held >= self._live_limit or now - self.since >= self.max_seconds

    def take(self, flush: Callable[[ChangeSink], int] | None = None) -> list[RowOp]:
        """The pending rows as ops for the checkpoint transaction; they stay readable until ``written``. Lazy
        values are left for ``LmdbStore.write`` to encode, in the writer thread rather than on the event loop.

        ``flush`` records the rows the state machine held back (as of the state this checkpoint covers) and
        returns how many rows came and went unwritten meanwhile (``cluster.api.StateMachine.flush_rows``)."""
        if flush is not None:
            held = ChangeSet()
            self._born += flush(held)
            self._merge(held)
        pending = self._pending
        born, outlived = self._born, len(self._created)  # rows created in this window, and those still there
        self._live_limit = max(1, self.max_rows // 4) if born and 2 * outlived >= born else self.max_rows
        ops = [(table, key, value) for (table, key), value in pending.items()]
        self._flushing = pending
        self._pending = {}
        self._created = set()
        self._born = 0
        self.since = None
        return ops

    def written(self) -> None:
        """The checkpoint transaction from ``take`` committed: LMDB now holds those rows."""
        self._flushing = {}

    def discard(self) -> None:
        """Forget every pending row (the state tables were just replaced by a snapshot)."""
        self._pending, self._flushing, self._created = {}, {}, set()
        self._born = 0
        self._live_limit = self.max_rows
        self.since = None

    # -- TableReader -----------------------------------------------------------------------------------------
    def get(self, table: str, key: bytes) -> bytes | None:
        row = (table, key)
        for layer in (self._pending, self._flushing):
            if row in layer:
                value = layer[row]
                return None if value is None else encoded(value)
        return self.store.get(table, key)

    def scan(self, table: str, prefix: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        """Rows of ``table`` whose key starts with ``prefix``, in key order, as LMDB will hold them."""
        overlay: dict[bytes, Row | None] = {}
        for layer in (self._flushing, self._pending):  # the newer layer last: it wins
            for (name, key), value in layer.items():
                if name == table and key.startswith(prefix):
                    overlay[key] = value
        if not overlay:
            yield from self.store.scan(table, prefix)
            return
        merged = heapq.merge(((k, 0, v) for k, v in self.store.scan(table, prefix)),
                             ((k, 1, None if v is None else encoded(v)) for k, v in sorted(overlay.items())))
        held_key: bytes | None = None
        held_value: bytes | None = None
        for key, _, value in merged:  # for equal keys the overlay (1) comes after the store (0) and replaces it
            if key != held_key and held_key is not None and held_value is not None:
                yield held_key, held_value
            held_key, held_value = key, value
        if held_key is not None and held_value is not None:
            yield held_key, held_value
