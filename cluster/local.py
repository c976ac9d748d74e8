"""A one-node replicator: the local log with group commit, behind the same ``Replicator`` seam Raft implements.

Every proposal of one event-loop turn (and all that arrive while the previous batch is being fsynced) becomes one
batch: each entry is stamped with the node's monotonic wall clock, applied to the in-memory state machine, and then
the log entries are written in ONE LMDB transaction with fsync, in a single writer thread so the loop never blocks
on the disk. Replies are released only after that commit. Reads call ``read_barrier`` so they never observe a batch
that is applied in memory but not yet durable.

The state changes of durable batches wait in ``storage.deferred.DeferredTables`` and reach LMDB at checkpoints: one
of the batch transactions also carries every pending row, ``last_applied`` and the deletion of the log entries the
checkpoint covers. At start-up the node restores the checkpointed tables and replays the log after them.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from cluster.api import EntryMeta, StateMachine
from storage import keys
from storage.changes import ChangeSet, RowOp
from storage.deferred import DeferredTables
from storage.lmdb_store import META_TABLE, LmdbStore

log = logging.getLogger(__name__)

LOG_TABLE = "raft_log"
_ENTRY_HEADER = struct.Struct(">QQ")  # term, ts
_LAST_APPLIED = b"last_applied"
_LAST_TS = b"last_ts"
TERM = 1  # a one-node cluster never holds an election


Range = tuple[str, bytes, bytes]


class ReplicatorClosed(Exception):
    """The replicator is stopping; the proposal was not accepted."""


class LocalReplicator:
    """Single-node ``cluster.api.Replicator`` with group commit.

    ``keep_log_entries`` is how many entries a checkpoint leaves in the log behind the ``last_applied`` it
    records, for inspection (``read_log``); the entries after the checkpoint are always kept, as they are what a
    restart replays.
    """

    def __init__(self, store: LmdbStore, state_machine: StateMachine, *, keep_log_entries: int = 0,
                 clock: Callable[[], float] = time.time,
                 on_commit: Callable[[int, float], None] | None = None,
                 tables: DeferredTables | None = None) -> None:
        self._store = store
        self._sm = state_machine
        self.tables = tables if tables is not None else DeferredTables(store)
        self._keep = keep_log_entries
        self._clock = clock
        self._on_commit = on_commit
        self._pending: list[tuple[bytes, asyncio.Future[object]]] = []
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lmdb-writer")
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._failed = False
        raw = store.get(META_TABLE, _LAST_APPLIED)
        self.last_applied = keys.u64_from(raw) if raw else 0
        self._checkpointed = self.last_applied  # what the state tables reflect
        raw = store.get(META_TABLE, _LAST_TS)
        self._last_ts = keys.u64_from(raw) if raw else 0
        first = store.first_key(LOG_TABLE)
        self._first_index = keys.u64_from(first) if first else self.last_applied + 1

    def start(self) -> None:
        """Rebuild the state machine from the tables, replay the log after them, start the commit loop."""
        self._sm.restore(self._store)
        self._replay()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="local-replicator")

    def _replay(self) -> None:
        changes = ChangeSet()
        replayed = 0
        for key, value in self._store.scan(LOG_TABLE):  # at most keep_log_entries before the checkpoint
            index = keys.u64_from(key)
            if index <= self._checkpointed:
                continue
            if index != self.last_applied + 1:
                raise AssertionError(f"one-node log has a gap: expected index {self.last_applied + 1}, found {index}")
            term, ts = _ENTRY_HEADER.unpack_from(value)
            try:
                self._sm.apply(EntryMeta(index, term, ts, False), value[_ENTRY_HEADER.size:], changes)
            except Exception:  # as it failed when first applied: deterministic
                log.exception("apply failed at index %d", index)
            self.last_applied = index
            self._last_ts = max(self._last_ts, ts)
            replayed += 1
        # Payload rows need no write: each batch wrote its own in the transaction of its log entries.
        self.tables.absorb(changes, time.monotonic())
        if replayed:
            self._sm.after_durable()
            log.info("replayed %d log entries after the checkpoint at %d", replayed, self._checkpointed)

    async def stop(self) -> None:
        """Commit what was already proposed, then refuse new proposals, write a checkpoint and stop the writer."""
        self._closed = True
        self._wakeup.set()
        if self._task is not None:
            await self._task
        if (self.tables.since is not None or self._sm.dirty_rows()) and not self._failed:  # restart replays none
            ops, ranges = self._checkpoint()
            await asyncio.get_running_loop().run_in_executor(self._writer, self._store.write, ops, ranges)
            self.tables.written()
        self._writer.shutdown(wait=True)

    def now_ms(self) -> int:
        return max(int(self._clock() * 1000), self._last_ts)

    async def propose_and_wait(self, data: bytes) -> object:
        if self._closed:
            raise ReplicatorClosed()
        fut: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        self._pending.append((data, fut))
        self._wakeup.set()
        return await fut

    @property
    def committing(self) -> bool:
        """True while a batch is applied in memory and its durable write is in flight."""
        return not self._idle.is_set()

    async def read_barrier(self) -> None:
        # State applied in memory becomes visible to readers only once its batch is durable.
        if not self._idle.is_set():
            await self._idle.wait()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._pending:
                if self._closed:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            batch, self._pending = self._pending, []
            self._idle.clear()
            try:
                now = time.monotonic()
                checkpoint = self.tables.due(now, self._sm.dirty_rows())
                ops, ranges = self._checkpoint() if checkpoint else ([], [])  # of the state before this batch
                replies, changes = self._apply(batch, ops)
                ops.extend(changes.payload)
                started = time.perf_counter()
                await loop.run_in_executor(self._writer, self._store.write, ops, ranges)
                if self._on_commit is not None:
                    self._on_commit(len(batch), time.perf_counter() - started)
                if checkpoint:
                    self.tables.written()
                self.tables.absorb(changes, now)
            except BaseException as exc:  # the disk failed (or we were cancelled): memory is ahead of disk
                if not isinstance(exc, asyncio.CancelledError):
                    log.critical("durable commit failed; stopping the replicator", exc_info=exc)
                self._failed = True
                self._closed = True
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(ReplicatorClosed("commit failed"))
                for _, fut in self._pending:
                    fut.set_exception(ReplicatorClosed("commit failed"))
                self._pending = []
                self._idle.set()
                raise
            self._idle.set()
            self._sm.after_durable()
            for (_, fut), reply in zip(batch, replies, strict=True):
                if not fut.done():
                    fut.set_result(reply)

    def _apply(self, batch: list[tuple[bytes, asyncio.Future[object]]], log_ops: list[RowOp]
               ) -> tuple[list[object], ChangeSet]:
        """Apply the batch in memory; append its log entries to ``log_ops``; return the replies and state changes."""
        changes = ChangeSet()
        replies: list[object] = []
        index = self.last_applied
        ts = self.now_ms()
        head = _ENTRY_HEADER.pack(TERM, ts)
        u64 = keys.u64_pack
        for data, _ in batch:
            index += 1
            log_ops.append((LOG_TABLE, u64(index), head + data))
            try:
                reply: object = self._sm.apply(EntryMeta(index, TERM, ts), data, changes)
            except Exception as exc:  # a bug in apply: deterministic, so every replay fails the same way
                log.exception("apply failed at index %d", index)
                reply = exc
            replies.append(reply)
        self.last_applied = index
        self._last_ts = ts
        return replies, changes

    def _checkpoint(self) -> tuple[list[RowOp], list[Range]]:
        """Every pending state row with the ``last_applied`` they reach (the batches applied so far), and the
        deletion of the log entries that checkpoint covers beyond ``keep_log_entries``."""
        index, ts = self.last_applied, self._last_ts
        ops = self.tables.take(self._sm.flush_rows)
        ops.append((META_TABLE, _LAST_APPLIED, keys.u64_pack(index)))
        ops.append((META_TABLE, _LAST_TS, keys.u64_pack(ts)))
        self._checkpointed = index
        ranges: list[Range] = []
        horizon = index - self._keep + 1
        if horizon > self._first_index:
            ranges.append((LOG_TABLE, keys.u64_pack(self._first_index), keys.u64_pack(horizon)))
            self._first_index = horizon
        return ops, ranges


def read_log(store: LmdbStore) -> list[tuple[int, EntryMeta, bytes]]:
    """Every retained log entry as (index, meta, data): for tools and tests."""
    out = []
    for key, value in store.scan(LOG_TABLE):
        index = keys.u64_from(key)
        term, ts = _ENTRY_HEADER.unpack_from(value)
        out.append((index, EntryMeta(index, term, ts), value[_ENTRY_HEADER.size:]))
    return out
