"""LmdbLogStorage behaves exactly like the core's MemoryStorage, survives reopen, and never returns corrupted entries.

Every behavioural case runs against both implementations; the LMDB variant is additionally reopened from disk after
each case and must show the same log.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cluster.core.storage import CompactedError, LogStorage, MemoryStorage, SnapshotOutOfDateError, UnavailableError
from cluster.core.types import ChecksumError, ConfState, Entry, EntryType, HardState, Snapshot, SnapshotMeta
from cluster.lmdb_log import ENTRIES_TABLE, LegacyDataDirError, LmdbLogStorage
from storage import keys
from storage.lmdb_store import LmdbStore

CONF = ConfState(frozenset({"a", "b", "c"}))


def ents(lo: int, hi: int, term: int = 1, size: int = 4) -> list[Entry]:
    return [Entry(i, term, EntryType.NORMAL, bytes([i % 256]) * size, ts=1000 + i) for i in range(lo, hi)]


class Both:
    """A storage under test plus, for LMDB, a way to commit and reopen it."""

    def __init__(self, kind: str, tmp: Path) -> None:
        self.kind = kind
        self.tmp = tmp
        self.store: LmdbStore | None = None
        self.s: LogStorage = self._open()

    def _open(self) -> LogStorage:
        if self.kind == "memory":
            return MemoryStorage(CONF)
        self.store = LmdbStore(str(self.tmp / "db"))
        return LmdbLogStorage(self.store, CONF)

    def commit(self) -> None:
        if isinstance(self.s, LmdbLogStorage):
            self.s.commit()

    def reopened(self) -> LogStorage:
        """The storage as a restarted node sees it (the same object for memory)."""
        if not isinstance(self.s, LmdbLogStorage):
            return self.s
        self.s.commit()
        assert self.store is not None
        self.store.close()
        self.s = self._open()
        return self.s

    def close(self) -> None:
        if self.store is not None:
            self.store.close()


@pytest.fixture(params=["memory", "lmdb"])
def both(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Both]:
    b = Both(request.param, tmp_path)
    yield b
    b.close()


def view(s: LogStorage) -> tuple[object, ...]:
    first, last = s.first_index(), s.last_index()
    return (s.initial_state(), first, last, s.term(first - 1), s.entries(first, last + 1), s.snapshot())


def test_empty_storage_has_bootstrap_membership(both: Both) -> None:
    s = both.s
    assert s.initial_state() == (HardState(), CONF)
    assert (s.first_index(), s.last_index(), s.term(0)) == (1, 0, 0)
    assert s.entries(1, 1) == []
    with pytest.raises(UnavailableError):
        s.term(1)
    assert view(both.reopened()) == view(MemoryStorage(CONF))


def test_append_then_read_ranges_and_terms(both: Both) -> None:
    s = both.s
    s.append(ents(1, 6, term=1) + ents(6, 9, term=2))
    assert (s.first_index(), s.last_index()) == (1, 8)
    assert [e.index for e in s.entries(2, 5)] == [2, 3, 4]
    assert [s.term(i) for i in range(0, 9)] == [0, 1, 1, 1, 1, 1, 2, 2, 2]
    with pytest.raises(UnavailableError):
        s.entries(5, 10)
    expected = view(s)
    assert view(both.reopened()) == expected


def test_max_bytes_returns_at_least_one_entry(both: Both) -> None:
    s = both.s
    s.append(ents(1, 11, size=100))  # each entry is 132 bytes by Entry.size()
    assert len(s.entries(1, 11, max_bytes=10)) == 1
    assert len(s.entries(1, 11, max_bytes=300)) == 2
    assert len(s.entries(1, 11, max_bytes=10_000)) == 10
    both.reopened()
    assert len(both.s.entries(1, 11, max_bytes=300)) == 2


def test_conflicting_append_replaces_the_suffix(both: Both) -> None:
    s = both.s
    s.append(ents(1, 8, term=1))
    both.commit()
    s.append(ents(4, 6, term=3))  # shorter replacement: 6 and 7 must disappear
    assert s.last_index() == 5
    assert [s.term(i) for i in range(1, 6)] == [1, 1, 1, 3, 3]
    expected = view(s)
    assert view(both.reopened()) == expected
    with pytest.raises(UnavailableError):
        both.s.term(6)


def test_append_with_a_gap_is_refused(both: Both) -> None:
    both.s.append(ents(1, 3))
    with pytest.raises(UnavailableError):
        both.s.append(ents(5, 6))


def test_hard_state_round_trips(both: Both) -> None:
    both.s.append(ents(1, 4))
    both.s.set_hard_state(HardState(7, "b", 3))
    assert both.reopened().initial_state() == (HardState(7, "b", 3), CONF)


def test_snapshot_compact_and_compacted_errors(both: Both) -> None:
    s = both.s
    s.append(ents(1, 11, term=2))
    conf = ConfState(frozenset({"a", "b"}), frozenset({"d"}))
    snap = s.create_snapshot(6, conf, b"state@6")
    assert snap.meta == SnapshotMeta(6, 2, conf)
    with pytest.raises(SnapshotOutOfDateError):
        s.create_snapshot(6, conf, b"again")
    with pytest.raises(UnavailableError):
        s.compact(8)  # beyond the snapshot
    s.compact(4)
    assert (s.first_index(), s.last_index(), s.term(4)) == (5, 10, 2)
    with pytest.raises(CompactedError):
        s.entries(4, 6)
    with pytest.raises(CompactedError):
        s.term(3)
    s.compact(2)  # already compacted: no-op
    s.append(ents(11, 13, term=3))  # appends after compaction land in the same transaction
    expected = view(s)
    r = both.reopened()
    assert view(r) == expected
    assert r.snapshot() == Snapshot(SnapshotMeta(6, 2, conf), b"state@6")
    assert r.initial_state()[1] == conf


def test_apply_snapshot_replaces_the_log_and_following_appends_survive(both: Both) -> None:
    s = both.s
    s.append(ents(1, 9, term=1))
    both.commit()
    conf = ConfState(frozenset({"a", "b", "c", "d"}))
    s.apply_snapshot(Snapshot(SnapshotMeta(5, 3, conf), b"leader state"))
    s.append(ents(6, 8, term=3))  # the same Ready may carry entries after the snapshot
    assert (s.first_index(), s.last_index(), s.term(5), s.term(7)) == (6, 7, 3, 3)
    with pytest.raises(SnapshotOutOfDateError):
        s.apply_snapshot(Snapshot(SnapshotMeta(5, 3, conf), b"old"))
    expected = view(s)
    r = both.reopened()
    assert view(r) == expected
    assert r.initial_state()[1] == conf
    assert r.snapshot().data == b"leader state"


def test_lmdb_reads_old_entries_from_disk_beyond_the_cache(tmp_path: Path) -> None:
    store = LmdbStore(str(tmp_path / "db"))
    s = LmdbLogStorage(store, CONF, cache_bytes=1000)
    s.append(ents(1, 101, size=100))
    assert s.cached_entries == 100  # nothing durable yet: everything stays in memory
    s.commit()
    assert s.cached_entries < 10
    assert s.entries(1, 101) == ents(1, 101, size=100)
    assert len(s.entries(1, 101, max_bytes=500)) == 3
    s.append(ents(50, 52, term=2))  # a conflict below the cache restarts it at the conflict
    assert s.entries(48, 52) == ents(48, 50, size=100) + ents(50, 52, term=2)
    s.commit()
    store.close()


def test_lmdb_detects_a_corrupted_entry_on_read(tmp_path: Path) -> None:
    store = LmdbStore(str(tmp_path / "db"))
    s = LmdbLogStorage(store, CONF, cache_bytes=0)
    s.append(ents(1, 4))
    s.commit()
    raw = store.get(ENTRIES_TABLE, keys.u64(2))
    assert raw is not None
    store.write([(ENTRIES_TABLE, keys.u64(2), raw[:-1] + b"X")])
    with pytest.raises(ChecksumError):
        s.entries(1, 4)
    store.close()
    with pytest.raises(ChecksumError):
        LmdbLogStorage(LmdbStore(str(tmp_path / "db")), CONF)


def test_lmdb_queues_writes_until_taken(tmp_path: Path) -> None:
    store = LmdbStore(str(tmp_path / "db"))
    s = LmdbLogStorage(store, CONF)
    s.append(ents(1, 3))
    s.set_hard_state(HardState(1, "a", 2))
    s.set_applied(2, 1002)
    ops, ranges, last = s.take_writes()
    assert last == 2 and ranges == []
    assert {table for table, _, _ in ops} == {"raft_entries", "raft_state"}
    assert store.first_key(ENTRIES_TABLE) is None  # nothing reached the disk on its own
    store.write(ops, ranges)
    s.on_durable(last)
    assert s.take_writes() == ([], [], 2)
    store.close()
    reopened = LmdbLogStorage(LmdbStore(str(tmp_path / "db")), CONF)
    assert (reopened.applied, reopened.applied_ts) == (2, 1002)
    assert reopened.initial_state()[0] == HardState(1, "a", 2)


def test_lmdb_refuses_a_one_node_data_dir(tmp_path: Path) -> None:
    store = LmdbStore(str(tmp_path / "db"))
    store.write([("raft_log", keys.u64(1), b"x")])
    with pytest.raises(LegacyDataDirError):
        LmdbLogStorage(store, CONF)
    store.close()


