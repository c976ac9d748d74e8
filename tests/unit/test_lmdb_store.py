"""LmdbStore: durable batched writes, range deletes, reads, and growth when the map is full."""

from __future__ import annotations

from pathlib import Path

from storage import keys
from storage.changes import ChangeSet
from storage.lmdb_store import LmdbStore


def test_write_then_read_back_in_key_order(tmp_path: Path) -> None:
    store = LmdbStore(str(tmp_path))
    changes = ChangeSet()
    for i in (3, 1, 2):
        changes.put("t", keys.u64(i), f"v{i}".encode())
    changes.put("other", b"k", b"x")
    store.write(changes)
    assert list(store.scan("t")) == [(keys.u64(1), b"v1"), (keys.u64(2), b"v2"), (keys.u64(3), b"v3")]
    assert store.get("other", b"k") == b"x"
    assert store.get("missing-table", b"k") is None
    assert list(store.scan("missing-table")) == []


def test_delete_and_delete_range_in_one_transaction(tmp_path: Path) -> None:
    store = LmdbStore(str(tmp_path))
    store.write(("t", keys.u64(i), b"x") for i in range(10))
    store.write([("t", keys.u64(9), None)], delete_ranges=[("t", keys.u64(2), keys.u64(5))])
    assert [keys.u64_from(k) for k, _ in store.scan("t")] == [0, 1, 5, 6, 7, 8]
    assert store.first_key("t") == keys.u64(0)
    assert store.last_key("t") == keys.u64(8)


def test_scan_prefix_stops_at_prefix_end(tmp_path: Path) -> None:
    store = LmdbStore(str(tmp_path))
    store.write([("t", keys.text("a", "1"), b"1"), ("t", keys.text("a", "2"), b"2"), ("t", keys.text("b", "1"), b"3")])
    assert [v for _, v in store.scan("t", keys.text("a", ""))] == [b"1", b"2"]


def test_survives_reopen(tmp_path: Path) -> None:
    store = LmdbStore(str(tmp_path))
    store.write([("t", b"k", b"v")])
    store.close()
    assert LmdbStore(str(tmp_path)).get("t", b"k") == b"v"


def test_map_grows_instead_of_failing(tmp_path: Path) -> None:
    store = LmdbStore(str(tmp_path), map_size=1 << 20)
    big = b"x" * 100_000
    store.write(("t", keys.u64(i), big) for i in range(40))  # ~4 MB into a 1 MiB map
    assert sum(1 for _ in store.scan("t")) == 40
    assert store.env.info()["map_size"] > 1 << 20


def test_key_codecs_preserve_order() -> None:
    values = [0, 1, 255, 256, 2**32, 2**63]
    assert sorted(keys.u64(v) for v in values) == [keys.u64(v) for v in values]
    assert keys.u64_pair_from(keys.u64_pair(7, 9)) == (7, 9)
    assert keys.text_from(keys.text("acct", "queue")) == ["acct", "queue"]
