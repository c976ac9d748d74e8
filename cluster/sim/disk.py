"""A simulated disk: writes land in a page cache and survive a crash only once synced; the last write may tear.

The node's live ``MemoryStorage`` is what the Raft core reads; ``durable`` is what a restart finds. Writes are
recorded as operations and replayed on ``durable`` at ``sync``; a crash drops unsynced operations, or (torn)
keeps a prefix of them whose last appended entry has corrupted bytes, which recovery detects by checksum.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

from cluster.core.storage import MemoryStorage
from cluster.core.types import ConfState, Entry, HardState, Snapshot


@dataclass(frozen=True, slots=True)
class _Op:
    kind: str  # "snap" | "append" | "hard"
    snap: Snapshot | None = None
    entries: tuple[Entry, ...] = ()
    hard: HardState | None = None


class SimDisk:
    def __init__(self, conf_state: ConfState) -> None:
        self.durable = MemoryStorage(conf_state)
        self.live = self.durable.clone()
        self._pending: list[_Op] = []
        self.torn_writes = 0

    def write_snapshot(self, snap: Snapshot) -> None:
        self.live.apply_snapshot(snap)
        self._pending.append(_Op("snap", snap=snap))

    def write_entries(self, entries: list[Entry]) -> None:
        if entries:
            self.live.append(entries)
            self._pending.append(_Op("append", entries=tuple(entries)))

    def write_hard_state(self, hs: HardState) -> None:
        self.live.set_hard_state(hs)
        self._pending.append(_Op("hard", hard=hs))

    def sync(self) -> None:
        for op in self._pending:
            self._replay(op)
        self._pending = []

    def _replay(self, op: _Op) -> None:
        if op.kind == "snap" and op.snap is not None:
            self.durable.apply_snapshot(op.snap)
        elif op.kind == "append":
            self.durable.append(list(op.entries))
        elif op.hard is not None:
            self.durable.set_hard_state(op.hard)

    def compact(self, index: int, conf_state: ConfState, data: bytes, keep: int) -> None:
        """Snapshot at applied ``index`` and drop older entries, synchronously on both images (runtime does it
        between Readies, when nothing is pending)."""
        if self._pending:
            raise AssertionError("compaction with unsynced writes")
        for s in (self.live, self.durable):
            s.create_snapshot(index, conf_state, data)
            s.compact(max(s.first_index() - 1, index - keep))

    def crash(self, rng: random.Random, tear: bool) -> None:
        """Lose unsynced writes; with ``tear``, a prefix survives and its last entry write is torn."""
        if tear and self._pending:
            cut = rng.randrange(len(self._pending))
            for op in self._pending[:cut]:
                self._replay(op)
            op = self._pending[cut]
            if op.kind == "append" and op.entries:
                n = rng.randrange(len(op.entries))
                torn = op.entries[n]
                garbled = replace(torn, data=torn.data + b"\x00torn")  # same crc: the checksum will not match
                self.durable.append([*op.entries[:n], garbled])
                self.torn_writes += 1
        self._pending = []
        self.live = MemoryStorage()  # the process is gone

    def restart(self) -> MemoryStorage:
        """Recovery: drop a torn tail (detected by checksum), then hand out a fresh live image."""
        self.durable.truncate_invalid_tail()
        self.live = self.durable.clone()
        return self.live
