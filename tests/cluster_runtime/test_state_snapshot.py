"""State-table snapshots: dump at one applied position, parse, install over other tables."""

from __future__ import annotations

from pathlib import Path

import pytest

from cluster.lmdb_log import APPLIED_KEY, STATE_TABLE
from cluster.state_snapshot import SnapshotFormatError, dump, header, install_ops, parse, state_tables
from storage import keys
from storage.lmdb_store import META_TABLE, LmdbStore


def fill(store: LmdbStore) -> None:
    store.write([("queues", b"q1", b"v1"), ("queues", b"q2", b"v2"), ("messages", keys.u64(1), b"m" * 3000),
                 (META_TABLE, b"x", b"local only"), ("raft_entries", keys.u64(1), b"log"),
                 (STATE_TABLE, APPLIED_KEY, keys.u64_pair(42, 1234))])


def test_dump_holds_state_tables_only_with_the_applied_position(tmp_path: Path) -> None:
    store = LmdbStore(str(tmp_path / "a"))
    fill(store)
    assert state_tables(store) == ["messages", "queues"]
    index, ts, data = dump(store, (STATE_TABLE, APPLIED_KEY))
    assert (index, ts) == (42, 1234) == header(data)
    _, _, rows = parse(data)
    assert rows == [("messages", keys.u64(1), b"m" * 3000), ("queues", b"q1", b"v1"), ("queues", b"q2", b"v2")]
    store.close()


def test_install_replaces_every_state_table_and_leaves_raft_and_meta_alone(tmp_path: Path) -> None:
    source = LmdbStore(str(tmp_path / "a"))
    fill(source)
    _, _, data = dump(source, (STATE_TABLE, APPLIED_KEY))
    target = LmdbStore(str(tmp_path / "b"))
    target.write([("queues", b"q1", b"old"), ("queues", b"q9", b"stale"), ("stale_table", b"k", b"v"),
                  (META_TABLE, b"mine", b"kept"), ("raft_entries", keys.u64(7), b"kept")])
    target.write(install_ops(target, data))
    assert list(target.scan("queues")) == [(b"q1", b"v1"), (b"q2", b"v2")]
    assert list(target.scan("stale_table")) == []
    assert list(target.scan("messages")) == [(keys.u64(1), b"m" * 3000)]
    assert target.get(META_TABLE, b"mine") == b"kept"
    assert target.get("raft_entries", keys.u64(7)) == b"kept"
    source.close()
    target.close()


def test_garbage_is_not_a_snapshot() -> None:
    with pytest.raises(SnapshotFormatError):
        parse(b"hello")
    good_head = b"RMQSNAP1" + bytes(16)
    with pytest.raises(SnapshotFormatError):
        parse(good_head + b"Z")


def test_a_truncated_snapshot_is_refused(tmp_path: Path) -> None:
    store = LmdbStore(str(tmp_path / "a"))
    fill(store)
    _, _, data = dump(store, (STATE_TABLE, APPLIED_KEY))
    store.close()
    for cut in (len(data) - 1, len(data) - 2999, 30):
        with pytest.raises(SnapshotFormatError):
            parse(data[:cut])
