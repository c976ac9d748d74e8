"""The Raft log as the core sees it: stable entries in ``LogStorage`` plus an unstable tail not yet persisted.

The unstable part (entries, and a snapshot received from the leader) is what ``Ready`` hands to the runtime to
persist; ``stable_to``/``stable_snap_to`` drop it once the runtime confirms in ``advance``.
"""

from __future__ import annotations

from cluster.core.storage import CompactedError, LogStorage, UnavailableError
from cluster.core.types import Entry, Snapshot


class RaftLog:
    def __init__(self, storage: LogStorage, applied: int = 0) -> None:
        self.storage = storage
        self.unstable: list[Entry] = []
        self.unstable_offset = storage.last_index() + 1  # index of unstable[0]
        self.unstable_snapshot: Snapshot | None = None
        first = storage.first_index()
        self.committed = first - 1
        self.applied = max(first - 1, applied)

    # -- positions ---------------------------------------------------------------------------------------------
    def first_index(self) -> int:
        if self.unstable_snapshot is not None:
            return self.unstable_snapshot.meta.index + 1
        return self.storage.first_index()

    def last_index(self) -> int:
        if self.unstable:
            return self.unstable_offset + len(self.unstable) - 1
        if self.unstable_snapshot is not None:
            return self.unstable_snapshot.meta.index
        return self.storage.last_index()

    def term(self, index: int) -> int:
        """Term at ``index``; raises CompactedError / UnavailableError outside the known range."""
        if self.unstable and index >= self.unstable_offset:
            if index - self.unstable_offset >= len(self.unstable):
                raise UnavailableError(index)
            return self.unstable[index - self.unstable_offset].term
        snap = self.unstable_snapshot
        if snap is not None:
            if index == snap.meta.index:
                return snap.meta.term
            if index < snap.meta.index:
                raise CompactedError(index)
            raise UnavailableError(index)
        return self.storage.term(index)

    def term_or_zero(self, index: int) -> int:
        try:
            return self.term(index)
        except (CompactedError, UnavailableError):
            return 0

    def last_term(self) -> int:
        return self.term(self.last_index())

    def match_term(self, index: int, term: int) -> bool:
        try:
            return self.term(index) == term
        except (CompactedError, UnavailableError):
            return False

    def is_up_to_date(self, last_index: int, term: int) -> bool:
        """§5.4.1: a candidate's log is at least as up to date as ours."""
        lt = self.last_term()
        return term > lt or (term == lt and last_index >= self.last_index())

    # -- reading entries ---------------------------------------------------------------------------------------
    def slice(self, lo: int, hi: int, max_bytes: int | None = None) -> list[Entry]:
        """Entries in [lo, hi), limited to ``max_bytes`` (at least one). CompactedError below first_index."""
        if lo >= hi:
            return []
        if lo < self.first_index():
            raise CompactedError(lo)
        if hi > self.last_index() + 1:
            raise UnavailableError(hi)
        out: list[Entry] = []
        if lo < self.unstable_offset:
            out = self.storage.entries(lo, min(hi, self.unstable_offset), max_bytes)
            if len(out) < min(hi, self.unstable_offset) - lo:
                return out  # size-limited
        if hi > self.unstable_offset:
            start = max(lo, self.unstable_offset) - self.unstable_offset
            out = out + self.unstable[start : hi - self.unstable_offset]
        if max_bytes is not None:
            size = 0
            for n, e in enumerate(out):
                size += e.size()
                if size > max_bytes and n > 0:
                    return out[:n]
        return out

    def entries_from(self, index: int, max_bytes: int | None = None) -> list[Entry]:
        return self.slice(index, self.last_index() + 1, max_bytes)

    def last_entry_ts(self) -> int:
        """The ``ts`` of the last entry, so a new leader keeps timestamps monotonic."""
        last = self.last_index()
        if last < self.first_index():
            return 0
        return self.slice(last, last + 1)[0].ts

    # -- appending ---------------------------------------------------------------------------------------------
    def find_conflict(self, ents: list[Entry]) -> int:
        """Index of the first entry that is new or conflicts with ours, 0 if we hold all of them."""
        for e in ents:
            if not self.match_term(e.index, e.term):
                return e.index
        return 0

    def find_conflict_by_term(self, index: int, term: int) -> tuple[int, int]:
        """Fast back-off: the largest index <= ``index`` whose term is <= ``term`` (and that term)."""
        index = min(index, self.last_index())
        while index > 0:
            try:
                t = self.term(index)
            except (CompactedError, UnavailableError):
                return index, 0
            if t <= term:
                return index, t
            index -= 1
        return 0, 0

    def maybe_append(self, index: int, log_term: int, committed: int, ents: list[Entry]) -> int | None:
        """Append ``ents`` following (index, log_term) if that matches; return the new last index or None."""
        if not self.match_term(index, log_term):
            return None
        last_new = index + len(ents)
        ci = self.find_conflict(ents)
        if ci:
            if ci <= self.committed:
                raise AssertionError(f"entry {ci} conflicts with committed entry (committed {self.committed})")
            self.append(ents[ci - index - 1 :])
        self.commit_to(min(committed, last_new))
        return last_new

    def append(self, ents: list[Entry]) -> int:
        if not ents:
            return self.last_index()
        after = ents[0].index
        if after - 1 < self.committed:
            raise AssertionError(f"append at {after} would overwrite committed {self.committed}")
        if after == self.unstable_offset + len(self.unstable):
            self.unstable.extend(ents)
        elif after <= self.unstable_offset:
            self.unstable_offset = after
            self.unstable = list(ents)
        else:
            del self.unstable[after - self.unstable_offset :]
            self.unstable.extend(ents)
        return self.last_index()

    # -- commit / apply ----------------------------------------------------------------------------------------
    def commit_to(self, index: int) -> None:
        if index > self.committed:
            if index > self.last_index():
                raise AssertionError(f"commit {index} beyond last index {self.last_index()}")
            self.committed = index

    def maybe_commit(self, index: int, term: int) -> bool:
        """Commit up to ``index`` only if that entry is of ``term`` (the leader's current term, §5.4.2)."""
        if index > self.committed and self.term_or_zero(index) == term:
            self.commit_to(index)
            return True
        return False

    def has_next_committed(self) -> bool:
        return self.committed > self.applied and self.applied + 1 >= self.first_index()

    def next_committed(self, max_bytes: int | None = None) -> list[Entry]:
        lo = max(self.applied + 1, self.first_index())
        if self.committed + 1 > lo:
            return self.slice(lo, self.committed + 1, max_bytes)
        return []

    def applied_to(self, index: int) -> None:
        if index > self.applied:
            self.applied = index

    # -- persistence acknowledgements --------------------------------------------------------------------------
    def stable_to(self, index: int, term: int) -> None:
        """The runtime persisted entries up to (index, term): drop them from the unstable tail."""
        if not self.unstable or index < self.unstable_offset:
            return
        pos = index - self.unstable_offset
        if pos >= len(self.unstable) or self.unstable[pos].term != term:
            return  # replaced meanwhile; the newer entries are still to be persisted
        del self.unstable[: pos + 1]
        self.unstable_offset = index + 1

    def stable_snap_to(self, index: int) -> None:
        if self.unstable_snapshot is not None and self.unstable_snapshot.meta.index == index:
            self.unstable_snapshot = None

    def snapshot(self) -> Snapshot:
        if self.unstable_snapshot is not None:
            return self.unstable_snapshot
        return self.storage.snapshot()

    def restore(self, snap: Snapshot) -> None:
        """Replace the log by a snapshot received from the leader (persisted through the next Ready)."""
        self.committed = snap.meta.index
        self.unstable_snapshot = snap
        self.unstable = []
        self.unstable_offset = snap.meta.index + 1
