"""The storage seam of the Raft core, and an in-memory implementation for tests and the simulation.

The core only reads storage (``LogStorage``'s read side, like etcd's ``Storage``); the runtime writes to it after
each ``Ready`` (``append``, ``set_hard_state``, ``apply_snapshot``) and when it compacts (``create_snapshot``,
``compact``). Reads verify entry checksums so corruption on disk is never replicated or applied.
"""

from __future__ import annotations

from typing import Protocol

from cluster.core.types import (
    EMPTY_HARD_STATE,
    ConfState,
    Entry,
    HardState,
    Snapshot,
    SnapshotMeta,
)


class CompactedError(Exception):
    """The requested index is covered by the snapshot: the caller must use the snapshot instead."""


class UnavailableError(Exception):
    """The requested index is beyond the last stored entry."""


class SnapshotOutOfDateError(Exception):
    """The snapshot offered is older than the one already stored."""


class LogStorage(Protocol):
    def initial_state(self) -> tuple[HardState, ConfState]:
        """The persisted hard state and the membership as of the snapshot (or bootstrap)."""
        ...

    def entries(self, lo: int, hi: int, max_bytes: int | None = None) -> list[Entry]:
        """Entries in [lo, hi); at least one if any, then up to ``max_bytes``. CompactedError if lo is compacted."""
        ...

    def term(self, index: int) -> int:
        """Term of the entry at ``index``; valid for first_index()-1 .. last_index()."""
        ...

    def first_index(self) -> int:
        ...

    def last_index(self) -> int:
        ...

    def snapshot(self) -> Snapshot:
        """The most recent snapshot (may be empty: index 0)."""
        ...

    def append(self, entries: list[Entry]) -> None:
        """Persist ``entries``, replacing any stored entries from ``entries[0].index`` on."""
        ...

    def set_hard_state(self, hs: HardState) -> None:
        ...

    def apply_snapshot(self, snap: Snapshot) -> None:
        """Replace the whole log by ``snap`` (received from the leader)."""
        ...

    def create_snapshot(self, index: int, conf_state: ConfState, data: bytes) -> Snapshot:
        """Record a snapshot of the local state machine at applied ``index``."""
        ...

    def compact(self, index: int) -> None:
        """Discard entries up to and including ``index`` (which must be covered by a snapshot)."""
        ...


class MemoryStorage:
    """``LogStorage`` kept in lists. ``_ents[0]`` is the position of the snapshot (index/term of its last entry)."""

    def __init__(self, conf_state: ConfState | None = None) -> None:
        self._hard = EMPTY_HARD_STATE
        self._snap = Snapshot(SnapshotMeta(0, 0, conf_state or ConfState()))
        self._ents: list[Entry] = []  # entries after the snapshot
        self._offset = 0  # snapshot index: _ents[i] has index _offset + 1 + i
        self._offset_term = 0

    # -- read side ---------------------------------------------------------------------------------------------
    def initial_state(self) -> tuple[HardState, ConfState]:
        return self._hard, self._snap.meta.conf_state

    def entries(self, lo: int, hi: int, max_bytes: int | None = None) -> list[Entry]:
        if lo <= self._offset:
            raise CompactedError(lo)
        if hi > self.last_index() + 1:
            raise UnavailableError(hi)
        out = self._ents[lo - self._offset - 1 : hi - self._offset - 1]
        if max_bytes is not None and out:
            size = 0
            for n, e in enumerate(out):
                size += e.size()
                if size > max_bytes and n > 0:
                    out = out[:n]
                    break
        for e in out:
            e.verify()
        return out

    def term(self, index: int) -> int:
        if index < self._offset:
            raise CompactedError(index)
        if index == self._offset:
            return self._offset_term
        if index > self.last_index():
            raise UnavailableError(index)
        return self._ents[index - self._offset - 1].term

    def first_index(self) -> int:
        return self._offset + 1

    def last_index(self) -> int:
        return self._offset + len(self._ents)

    def snapshot(self) -> Snapshot:
        return self._snap

    def hard_state(self) -> HardState:
        return self._hard

    # -- write side --------------------------------------------------------------------------------------------
    def append(self, entries: list[Entry]) -> None:
        if not entries:
            return
        first = entries[0].index
        if first + len(entries) - 1 <= self._offset:
            return  # all already compacted
        if first <= self._offset:
            entries = entries[self._offset + 1 - first :]
            first = entries[0].index
        if first > self.last_index() + 1:
            raise UnavailableError(f"gap: appending {first} after {self.last_index()}")
        del self._ents[first - self._offset - 1 :]
        self._ents.extend(entries)

    def set_hard_state(self, hs: HardState) -> None:
        self._hard = hs

    def apply_snapshot(self, snap: Snapshot) -> None:
        if snap.meta.index <= self._snap.meta.index:
            raise SnapshotOutOfDateError(snap.meta.index)
        self._snap = snap
        self._ents = []
        self._offset = snap.meta.index
        self._offset_term = snap.meta.term

    def create_snapshot(self, index: int, conf_state: ConfState, data: bytes) -> Snapshot:
        if index <= self._snap.meta.index:
            raise SnapshotOutOfDateError(index)
        if index > self.last_index():
            raise UnavailableError(index)
        self._snap = Snapshot(SnapshotMeta(index, self.term(index), conf_state), data)
        return self._snap

    def compact(self, index: int) -> None:
        if index <= self._offset:
            return
        if index > self._snap.meta.index:
            raise UnavailableError(f"compact {index} beyond snapshot {self._snap.meta.index}")
        self._offset_term = self.term(index)
        del self._ents[: index - self._offset]
        self._offset = index

    # -- crash recovery (used by the simulated disk) ----------------------------------------------------------
    def truncate_invalid_tail(self) -> int:
        """Drop the first entry that fails its checksum (a torn write) and everything after; return how many."""
        for n, e in enumerate(self._ents):
            if not e.valid():
                dropped = len(self._ents) - n
                del self._ents[n:]
                return dropped
        return 0

    def clone(self) -> MemoryStorage:
        """An independent copy (the simulated disk keeps the durable image apart from the live one)."""
        c = MemoryStorage()
        c._hard, c._snap, c._ents = self._hard, self._snap, list(self._ents)
        c._offset, c._offset_term = self._offset, self._offset_term
        return c
