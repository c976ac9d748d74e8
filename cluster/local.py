"""A one-node replicator: the local log with group commit, behind the same ``Replicator`` seam Raft implements.

Every proposal of one event-loop turn (and all that arrive while the previous batch is being fsynced) becomes one
batch: each entry is stamped with the node's monotonic wall clock, applied to the in-memory state machine, and then
the log entries, the state changes and ``last_applied`` are written in ONE LMDB transaction with fsync, in a single
writer thread so the loop never blocks on the disk. Replies are released only after that commit. Reads call
``read_barrier`` so they never observe a batch that is applied in memory but not yet durable.
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
from storage.changes import ChangeSet
from storage.lmdb_store import META_TABLE, LmdbStore

log = logging.getLogger(__name__)

LOG_TABLE = "raft_log"
_ENTRY_HEADER = struct.Struct(">QQ")  # term, ts
_LAST_APPLIED = b"last_applied"
_LAST_TS = b"last_ts"
TERM = 1  # a one-node cluster never holds an election


class ReplicatorClosed(Exception):
    """The replicator is stopping; the proposal was not accepted."""


class LocalReplicator:
    """Single-node ``cluster.api.Replicator`` with group commit.

    ``keep_log_entries`` bounds the log: entries older than that many before ``last_applied`` are deleted in the
    same transaction (the state tables hold everything they produced). 0 writes no log at all: one node recovers
    from its state tables, which the same transaction updates, so the log only serves inspection (``read_log``).
    """

    def __init__(self, store: LmdbStore, state_machine: StateMachine, *, keep_log_entries: int = 10_000,
                 clock: Callable[[], float] = time.time,
                 on_commit: Callable[[int, float], None] | None = None) -> None:
        self._store = store
        self._sm = state_machine
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
        raw = store.get(META_TABLE, _LAST_APPLIED)
        self.last_applied = keys.u64_from(raw) if raw else 0
        raw = store.get(META_TABLE, _LAST_TS)
        self._last_ts = keys.u64_from(raw) if raw else 0
        first = store.first_key(LOG_TABLE)
        self._first_index = keys.u64_from(first) if first else self.last_applied + 1
        self._log_written = first is not None  # with keep_log_entries=0 a log left from before is deleted once

    def start(self) -> None:
        """Rebuild the state machine from the tables and start the commit loop."""
        self._sm.restore(self._store)
        self._task = asyncio.get_running_loop().create_task(self._run(), name="local-replicator")

    async def stop(self) -> None:
        """Commit what was already proposed, then refuse new proposals and stop the writer."""
        self._closed = True
        self._wakeup.set()
        if self._task is not None:
            await self._task
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
                replies, ops, ranges = self._apply(batch)
                started = time.perf_counter()
                await loop.run_in_executor(self._writer, self._store.write, ops, ranges)
                if self._on_commit is not None:
                    self._on_commit(len(batch), time.perf_counter() - started)
            except BaseException as exc:  # the disk failed (or we were cancelled): memory is ahead of disk
                if not isinstance(exc, asyncio.CancelledError):
                    log.critical("durable commit failed; stopping the replicator", exc_info=exc)
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

    def _apply(self, batch: list[tuple[bytes, asyncio.Future[object]]]
               ) -> tuple[list[object], ChangeSet, list[tuple[str, bytes, bytes]]]:
        changes = ChangeSet()
        replies: list[object] = []
        index = self.last_applied
        ts = self.now_ms()
        pack_entry = _ENTRY_HEADER.pack
        keep = self._keep
        for data, _ in batch:
            index += 1
            if keep:
                changes.put(LOG_TABLE, keys.u64_pack(index), pack_entry(TERM, ts) + data)
            try:
                reply: object = self._sm.apply(EntryMeta(index, TERM, ts), data, changes)
            except Exception as exc:  # a bug in apply: deterministic, so every replay fails the same way
                log.exception("apply failed at index %d", index)
                reply = exc
            replies.append(reply)
        self.last_applied = index
        self._last_ts = ts
        changes.put(META_TABLE, _LAST_APPLIED, keys.u64_pack(index))
        changes.put(META_TABLE, _LAST_TS, keys.u64_pack(ts))
        ranges: list[tuple[str, bytes, bytes]] = []
        horizon = index - keep + 1
        if horizon > self._first_index and (keep or self._log_written):
            ranges.append((LOG_TABLE, keys.u64_pack(self._first_index), keys.u64_pack(horizon)))
            self._log_written = bool(keep)
            self._first_index = horizon
        return replies, changes, ranges


def read_log(store: LmdbStore) -> list[tuple[int, EntryMeta, bytes]]:
    """Every retained log entry as (index, meta, data): for tools and tests."""
    out = []
    for key, value in store.scan(LOG_TABLE):
        index = keys.u64_from(key)
        term, ts = _ENTRY_HEADER.unpack_from(value)
        out.append((index, EntryMeta(index, term, ts), value[_ENTRY_HEADER.size:]))
    return out
