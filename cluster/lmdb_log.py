"""The Raft log on LMDB: ``cluster.core.storage.LogStorage`` whose writes become ops of the runtime's one transaction.

The core only reads storage; the runtime mutates it after each ``Ready`` (``append``, ``set_hard_state``,
``apply_snapshot``) and when it compacts. Here every mutation updates the in-memory view at once (so the core sees
a consistent log) and queues the matching LMDB puts/deletes; the runtime drains them with ``take_writes`` and commits
them in ONE fsynced transaction together with the state-machine changes of the entries applied in the same Ready and
``last_applied``. Recent entries and every term since the snapshot stay in memory, so the hot path never reads LMDB;
older entries (for a lagging follower) are read back and their checksums verified.

Tables (all prefixed ``raft_`` so they are never mistaken for state-machine tables):
``raft_entries`` u64(index) -> term, type, ts, crc, data; ``raft_state`` hard state, snapshot meta, last applied;
``raft_snapshot`` the latest snapshot's data.
"""

from __future__ import annotations

import struct

from cluster.core.storage import CompactedError, SnapshotOutOfDateError, UnavailableError
from cluster.core.types import (
    EMPTY_HARD_STATE,
    ConfState,
    Entry,
    EntryType,
    HardState,
    Snapshot,
    SnapshotMeta,
)
from storage import keys
from storage.lmdb_store import LmdbStore

ENTRIES_TABLE = "raft_entries"
STATE_TABLE = "raft_state"
SNAPSHOT_TABLE = "raft_snapshot"
LEGACY_LOCAL_LOG = "raft_log"  # cluster.local's one-node log: a different format, never mixed with this one

_HARD = b"hard"
_SNAP_META = b"snap_meta"
_SNAP_DATA = b"data"
APPLIED_KEY = b"applied"  # u64 pair: last applied index, its entry's ts
_OFFSET = b"offset"  # (index, term) of the last compacted entry: the log starts right after it
_ENTRY = struct.Struct(">QBqI")  # term, type, ts, crc; data follows
_HARD_FMT = struct.Struct(">QQ")  # term, commit; vote follows
_SNAP_FMT = struct.Struct(">QQ")  # index, term; "voters|learners" follows

Op = tuple[str, bytes, bytes | None]
Range = tuple[str, bytes, bytes]


def encode_entry(e: Entry) -> bytes:
    return _ENTRY.pack(e.term, int(e.type), e.ts, e.crc) + e.data


def decode_entry(index: int, raw: bytes) -> Entry:
    """Rebuild an entry with its stored checksum and verify it (ChecksumError on corruption)."""
    term, type_, ts, crc = _ENTRY.unpack_from(raw)
    return Entry(index, term, EntryType(type_), raw[_ENTRY.size:], ts, crc).verify()


def _encode_hard(hs: HardState) -> bytes:
    return _HARD_FMT.pack(hs.term, hs.commit) + hs.vote.encode()


def _decode_hard(raw: bytes) -> HardState:
    term, commit = _HARD_FMT.unpack_from(raw)
    return HardState(term, raw[_HARD_FMT.size:].decode(), commit)


def _encode_meta(m: SnapshotMeta) -> bytes:
    conf = ",".join(sorted(m.conf_state.voters)) + "|" + ",".join(sorted(m.conf_state.learners))
    return _SNAP_FMT.pack(m.index, m.term) + conf.encode()


def _decode_meta(raw: bytes) -> SnapshotMeta:
    index, term = _SNAP_FMT.unpack_from(raw)
    voters, learners = raw[_SNAP_FMT.size:].decode().split("|")
    conf = ConfState(frozenset(v for v in voters.split(",") if v), frozenset(v for v in learners.split(",") if v))
    return SnapshotMeta(index, term, conf)


class LegacyDataDirError(Exception):
    """The data directory holds a one-node (cluster.local) log; it cannot be reused as a Raft member as is."""


class LmdbLogStorage:
    """``LogStorage`` on an ``LmdbStore``; mutations are queued as ops for the runtime's durable transaction.

    ``bootstrap`` is the membership of a brand-new cluster (recorded as the snapshot at index 0 on first open); a
    node that joins an existing cluster passes an empty ``ConfState`` and learns the membership from the leader.
    ``cache_bytes`` bounds the entries kept in memory (entries not yet durable are always kept).
    """

    def __init__(self, store: LmdbStore, bootstrap: ConfState | None = None, *, cache_bytes: int = 64 << 20) -> None:
        if store.first_key(LEGACY_LOCAL_LOG) is not None:
            raise LegacyDataDirError(f"{store.path} holds a one-node log ({LEGACY_LOCAL_LOG}); start it without "
                                     "--peers or use a fresh data directory")
        self._store = store
        self._cache_bytes = cache_bytes
        self._ops: list[Op] = []
        self._ranges: list[Range] = []
        raw = store.get(STATE_TABLE, _HARD)
        self._hard = _decode_hard(raw) if raw else EMPTY_HARD_STATE
        raw = store.get(STATE_TABLE, _SNAP_META)
        if raw is None:
            meta = SnapshotMeta(0, 0, bootstrap or ConfState())
            self._ops.append((STATE_TABLE, _SNAP_META, _encode_meta(meta)))
            self._snap = Snapshot(meta, b"")
        else:
            self._snap = Snapshot(_decode_meta(raw), store.get(SNAPSHOT_TABLE, _SNAP_DATA) or b"")
        raw = store.get(STATE_TABLE, APPLIED_KEY)
        self._applied, self._applied_ts = keys.u64_pair_from(raw) if raw else (0, 0)
        raw = store.get(STATE_TABLE, _OFFSET)
        offset, offset_term = keys.u64_pair_from(raw) if raw else (self._snap.meta.index, self._snap.meta.term)
        self._offset = offset  # entries start at _offset + 1 (at or before the snapshot's index)
        self._terms: list[int] = [offset_term]  # _terms[i] is the term of index _offset + i
        self._cache: list[Entry] = []  # entries [_cache_lo, last_index]
        self._cache_size = 0
        expected = self._offset + 1
        for key, value in store.scan(ENTRIES_TABLE):
            index = keys.u64_from(key)
            if index <= self._offset:
                continue  # compacted in the same transaction that took the snapshot; never happens, but harmless
            if index != expected:
                raise AssertionError(f"raft log has a gap: expected index {expected}, found {index}")
            e = decode_entry(index, value)
            self._terms.append(e.term)
            self._cache.append(e)
            self._cache_size += e.size()
            expected += 1
        self._cache_lo = self._offset + 1
        self._durable_last = self.last_index()
        self._trim_cache()

    # -- read side (LogStorage) --------------------------------------------------------------------------------
    def initial_state(self) -> tuple[HardState, ConfState]:
        return self._hard, self._snap.meta.conf_state

    def entries(self, lo: int, hi: int, max_bytes: int | None = None) -> list[Entry]:
        if lo <= self._offset:
            raise CompactedError(lo)
        if hi > self.last_index() + 1:
            raise UnavailableError(hi)
        if lo >= hi:
            return []
        if lo >= self._cache_lo:  # the hot path: recent entries, all in memory
            out = self._cache[lo - self._cache_lo : hi - self._cache_lo]
            if max_bytes is not None:
                size = 0
                for n, e in enumerate(out):
                    size += e.size()
                    if size > max_bytes and n > 0:
                        return out[:n]
            return out
        out = []
        size = 0
        index = lo
        while index < hi:
            e = self._cache[index - self._cache_lo] if index >= self._cache_lo else self._read(index)
            size += e.size()
            if max_bytes is not None and size > max_bytes and out:
                break
            out.append(e)
            index += 1
        return out

    def _read(self, index: int) -> Entry:
        """An entry below the cache, from LMDB (durable: only durable entries leave the cache), checksum verified."""
        raw = self._store.get(ENTRIES_TABLE, keys.u64_pack(index))
        if raw is None:
            raise AssertionError(f"raft log entry {index} missing on disk")
        return decode_entry(index, raw)

    def term(self, index: int) -> int:
        if index < self._offset:
            raise CompactedError(index)
        if index > self.last_index():
            raise UnavailableError(index)
        return self._terms[index - self._offset]

    def first_index(self) -> int:
        return self._offset + 1

    def last_index(self) -> int:
        return self._offset + len(self._terms) - 1

    def snapshot(self) -> Snapshot:
        return self._snap

    def hard_state(self) -> HardState:
        return self._hard

    @property
    def applied(self) -> int:
        """``last_applied`` as of the last open plus every ``set_applied`` since."""
        return self._applied

    @property
    def applied_ts(self) -> int:
        """The leader timestamp of the entry at ``applied``: keeps ``now_ms`` monotonic across restarts."""
        return self._applied_ts

    # -- write side (LogStorage) -------------------------------------------------------------------------------
    def append(self, entries: list[Entry]) -> None:
        if not entries:
            return
        first = entries[0].index
        if first + len(entries) - 1 <= self._offset:
            return
        if first <= self._offset:
            entries = entries[self._offset + 1 - first :]
            first = entries[0].index
        last = self.last_index()
        if first > last + 1:
            raise UnavailableError(f"gap: appending {first} after {last}")
        new_last = entries[-1].index
        ops = self._ops
        for e in entries:
            ops.append((ENTRIES_TABLE, keys.u64_pack(e.index), encode_entry(e)))
        for index in range(new_last + 1, last + 1):  # a shorter replacement: drop the stale tail
            ops.append((ENTRIES_TABLE, keys.u64_pack(index), None))
        del self._terms[first - self._offset :]
        self._terms.extend(e.term for e in entries)
        if first < self._cache_lo:
            # Replacing entries below the cache (rare: a deep conflict): restart the cache at ``first``.
            self._cache, self._cache_size, self._cache_lo = [], 0, first
        else:
            cut = first - self._cache_lo
            self._cache_size -= sum(e.size() for e in self._cache[cut:])
            del self._cache[cut:]
        self._cache.extend(entries)
        self._cache_size += sum(e.size() for e in entries)
        self._durable_last = min(self._durable_last, first - 1)

    def set_hard_state(self, hs: HardState) -> None:
        self._hard = hs
        self._ops.append((STATE_TABLE, _HARD, _encode_hard(hs)))

    def set_applied(self, index: int, ts: int) -> None:
        """Record ``last_applied`` (and its entry's ts) in the transaction of the state changes up to it."""
        self._applied, self._applied_ts = index, ts
        self._ops.append((STATE_TABLE, APPLIED_KEY, keys.u64_pair(index, ts)))

    def apply_snapshot(self, snap: Snapshot) -> None:
        if snap.meta.index <= self._snap.meta.index:
            raise SnapshotOutOfDateError(snap.meta.index)
        last = self.last_index()
        keep_below = min(last, snap.meta.index) + 1
        if keep_below > self.first_index():
            self._ranges.append((ENTRIES_TABLE, keys.u64(self.first_index()), keys.u64(keep_below)))
        for index in range(max(keep_below, self.first_index()), last + 1):
            # Individual deletes, ordered before any append in the same transaction (ranges run last).
            self._ops.append((ENTRIES_TABLE, keys.u64_pack(index), None))
        self._store_snapshot(snap)
        self._ops.append((STATE_TABLE, _OFFSET, keys.u64_pair(snap.meta.index, snap.meta.term)))
        self._offset = snap.meta.index
        self._terms = [snap.meta.term]
        self._cache, self._cache_size, self._cache_lo = [], 0, snap.meta.index + 1
        self._durable_last = snap.meta.index

    def create_snapshot(self, index: int, conf_state: ConfState, data: bytes) -> Snapshot:
        if index <= self._snap.meta.index:
            raise SnapshotOutOfDateError(index)
        if index > self.last_index():
            raise UnavailableError(index)
        snap = Snapshot(SnapshotMeta(index, self.term(index), conf_state), data)
        self._store_snapshot(snap)
        return snap

    def _store_snapshot(self, snap: Snapshot) -> None:
        self._snap = snap
        self._ops.append((STATE_TABLE, _SNAP_META, _encode_meta(snap.meta)))
        self._ops.append((SNAPSHOT_TABLE, _SNAP_DATA, snap.data))

    def compact(self, index: int) -> None:
        if index <= self._offset:
            return
        if index > self._snap.meta.index:
            raise UnavailableError(f"compact {index} beyond snapshot {self._snap.meta.index}")
        # Safe as a range: every entry put in the same transaction has a larger index.
        self._ranges.append((ENTRIES_TABLE, keys.u64(self._offset + 1), keys.u64(index + 1)))
        self._ops.append((STATE_TABLE, _OFFSET, keys.u64_pair(index, self.term(index))))
        del self._terms[: index - self._offset]
        if index >= self._cache_lo:
            cut = index + 1 - self._cache_lo
            self._cache_size -= sum(e.size() for e in self._cache[:cut])
            del self._cache[:cut]
            self._cache_lo = index + 1
        self._offset = index

    # -- the runtime's transaction -----------------------------------------------------------------------------
    def take_writes(self) -> tuple[list[Op], list[Range], int]:
        """The queued ops and range deletes, and the last index they make durable; the queue is emptied."""
        ops, ranges = self._ops, self._ranges
        self._ops, self._ranges = [], []
        return ops, ranges, self.last_index()

    def on_durable(self, last: int) -> None:
        """The transaction from ``take_writes`` is committed: entries up to ``last`` may leave the cache."""
        self._durable_last = max(self._durable_last, min(last, self.last_index()))
        self._trim_cache()

    def commit(self) -> None:
        """Write every queued op now, in one transaction (tests and tools; the runtime batches instead)."""
        ops, ranges, last = self.take_writes()
        self._store.write(ops, ranges)
        self.on_durable(last)

    def _trim_cache(self) -> None:
        n = 0
        size = self._cache_size
        limit = self._durable_last - self._cache_lo + 1
        while size > self._cache_bytes and n < limit and n < len(self._cache):
            size -= self._cache[n].size()
            n += 1
        if n:
            del self._cache[:n]
            self._cache_size = size
            self._cache_lo += n

    @property
    def cached_entries(self) -> int:
        return len(self._cache)
