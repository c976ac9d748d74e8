"""MemoryStorage: the read contract the core relies on (compaction and bounds errors, size limits, checksums)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from cluster.core.storage import CompactedError, MemoryStorage, SnapshotOutOfDateError, UnavailableError
from cluster.core.types import ChecksumError, ConfState, Entry, HardState, Snapshot, SnapshotMeta

CONF = ConfState(frozenset({"n1", "n2", "n3"}))


def filled(n: int) -> MemoryStorage:
    s = MemoryStorage(CONF)
    s.append([Entry(i, 1 + i // 4, data=b"x" * 10) for i in range(1, n + 1)])
    return s


def test_initial_state_is_the_bootstrap_membership() -> None:
    hs, conf = MemoryStorage(CONF).initial_state()
    assert hs == HardState() and conf == CONF


def test_bounds() -> None:
    s = filled(10)
    assert (s.first_index(), s.last_index()) == (1, 10)
    assert s.term(0) == 0 and s.term(10) == 3
    with pytest.raises(UnavailableError):
        s.term(11)
    with pytest.raises(UnavailableError):
        s.entries(5, 12)
    assert [e.index for e in s.entries(3, 6)] == [3, 4, 5]


def test_max_bytes_limits_but_returns_at_least_one() -> None:
    s = filled(10)
    assert len(s.entries(1, 11, max_bytes=1)) == 1
    assert len(s.entries(1, 11, max_bytes=3 * 42)) == 3  # each entry counts 10 data bytes + 32


def test_append_replaces_a_conflicting_suffix() -> None:
    s = filled(10)
    s.append([Entry(6, 9, data=b"new"), Entry(7, 9)])
    assert s.last_index() == 7 and s.term(6) == 9
    with pytest.raises(UnavailableError):
        s.append([Entry(9, 9)])  # a gap


def test_snapshot_compact_and_compacted_errors() -> None:
    s = filled(10)
    snap = s.create_snapshot(6, CONF, b"state")
    assert snap.meta == SnapshotMeta(6, s.term(6), CONF)
    s.compact(4)
    assert s.first_index() == 5 and s.term(4) == 2
    with pytest.raises(CompactedError):
        s.entries(4, 6)
    with pytest.raises(CompactedError):
        s.term(3)
    with pytest.raises(UnavailableError):
        s.compact(8)  # beyond the snapshot: the entries would be lost
    with pytest.raises(SnapshotOutOfDateError):
        s.create_snapshot(5, CONF, b"")
    assert s.initial_state()[1] == CONF


def test_apply_snapshot_replaces_the_log() -> None:
    s = filled(5)
    s.apply_snapshot(Snapshot(SnapshotMeta(20, 4, CONF), b"d"))
    assert (s.first_index(), s.last_index(), s.term(20)) == (21, 20, 4)
    with pytest.raises(SnapshotOutOfDateError):
        s.apply_snapshot(Snapshot(SnapshotMeta(10, 4, CONF), b"d"))


def test_reading_a_corrupted_entry_raises() -> None:
    s = filled(3)
    e = s.entries(3, 4)[0]
    s.append([replace(e, data=b"flipped")])  # same checksum, different bytes
    with pytest.raises(ChecksumError):
        s.entries(1, 4)


def test_recovery_truncates_a_torn_tail() -> None:
    s = filled(5)
    e = s.entries(4, 5)[0]
    s.append([replace(e, data=e.data + b"\0")])  # index 4 torn; 5 is gone with it
    assert s.truncate_invalid_tail() == 1
    assert s.last_index() == 3
