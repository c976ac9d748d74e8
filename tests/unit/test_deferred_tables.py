"""DeferredTables: state rows held between checkpoints read exactly as LMDB will hold them, and rows created and
removed between two checkpoints never reach the disk."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from storage.changes import ChangeSet
from storage.deferred import DeferredTables
from storage.lmdb_store import LmdbStore


class CountingEncoder:
    """A ``Lazy`` row encoder that counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, value: Any) -> bytes:
        self.calls += 1
        return repr(value).encode()


def _batch(*ops: tuple[str, str, bytes | None]) -> ChangeSet:
    changes = ChangeSet()
    for kind, key, value in ops:
        if kind == "create":
            assert value is not None
            changes.create("t", key.encode(), value)
        elif kind == "put":
            assert value is not None
            changes.put("t", key.encode(), value)
        else:
            changes.delete("t", key.encode())
    return changes


def test_a_row_created_and_deleted_between_checkpoints_never_reaches_the_disk(tmp_path: Path) -> None:
    store = LmdbStore(str(tmp_path))
    tables = DeferredTables(store)
    tables.absorb(_batch(("create", "m1", b"body"), ("create", "m2", b"body2"), ("put", "q", b"1")), now=0.0)
    tables.absorb(_batch(("delete", "m1", None), ("put", "q", b"2")), now=0.1)
    assert tables.get("t", b"m1") is None
    assert tables.get("t", b"m2") == b"body2"
    ops = tables.take()
    assert sorted(ops) == [("t", b"m2", b"body2"), ("t", b"q", b"2")]  # no write, not even a delete, of m1
    assert tables.get("t", b"m2") == b"body2"  # readable while the checkpoint is written
    store.write(ops)
    tables.written()
    # After the checkpoint m2 is on disk: deleting it now must be written as a delete.
    tables.absorb(_batch(("delete", "m2", None)), now=0.2)
    assert tables.take() == [("t", b"m2", None)]


def test_lazy_rows_are_encoded_only_when_read_or_written(tmp_path: Path) -> None:
    encode = CountingEncoder()
    store = LmdbStore(str(tmp_path))
    tables = DeferredTables(store)
    changes = ChangeSet()
    changes.create("t", b"gone", (encode, ("never", 1)))
    changes.create("t", b"kept", (encode, ("kept", 2)))
    tables.absorb(changes, now=0.0)
    tables.absorb(_batch(("delete", "gone", None)), now=0.0)
    assert encode.calls == 0
    assert tables.get("t", b"kept") == repr(("kept", 2)).encode()
    ops = tables.take()
    assert [(table, key) for table, key, _ in ops] == [("t", b"kept")]
    assert encode.calls == 1  # the read; take leaves encoding to the store's writer thread
    store.write(ops)
    assert store.get("t", b"kept") == repr(("kept", 2)).encode()
    assert encode.calls == 2  # ... and the deleted row never


def test_a_checkpoint_is_due_by_rows_it_would_write_or_by_age(tmp_path: Path) -> None:
    tables = DeferredTables(LmdbStore(str(tmp_path)), max_rows=3, max_seconds=1.0)
    assert not tables.due(100.0)  # nothing pending
    tables.absorb(_batch(("put", "a", b"1")), now=10.0)
    assert not tables.due(10.5)
    assert tables.due(11.0)
    tables.take()
    # Rows created and deleted again would not be written: they do not count.
    tables.absorb(_batch(("create", "m1", b"x"), ("create", "m2", b"x"), ("put", "a", b"2")), now=20.0)
    tables.absorb(_batch(("delete", "m1", None), ("create", "m3", b"x"), ("delete", "m3", None)), now=20.0)
    assert tables.live_rows == 2  # a and m2: m1 and m3 left at once
    assert not tables.due(20.0)
    tables.absorb(_batch(("put", "b", b"1")), now=20.0)
    assert tables.due(20.0)  # a, b and m2
    assert sorted(key for _, key, _ in tables.take()) == [b"a", b"b", b"m2"]
    assert tables.live_rows == 0
    # Rows that die within the window take no memory, however many: only age makes such a window due.
    for i in range(24):
        tables.absorb(_batch(("create", f"n{i}", b"x"), ("delete", f"n{i}", None)), now=30.0)
    tables.absorb(_batch(("create", "n0", b"again"), ("delete", "n0", None), ("create", "n0", b"kept")), now=30.0)
    assert tables.live_rows == 1 and not tables.due(30.5) and tables.due(31.0)
    assert tables.get("t", b"n0") == b"kept"  # created again after its delete in one batch: it lives


def test_when_created_rows_outlive_the_window_the_next_one_is_shorter(tmp_path: Path) -> None:
    tables = DeferredTables(LmdbStore(str(tmp_path)), max_rows=8, max_seconds=60.0)
    # A backlog filling: every created row survives the window.
    tables.absorb(_batch(*(("create", f"a{i}", b"x") for i in range(8))), now=0.0)
    assert tables.due(0.0)
    tables.take()
    tables.absorb(_batch(*(("create", f"b{i}", b"x") for i in range(2))), now=1.0)
    assert tables.due(1.0)  # a quarter of max_rows now
    tables.take()  # b0 and b1 outlived this window too
    # Messages cycling: most created rows die within the window, so the window grows back.
    tables.absorb(_batch(*(("create", f"c{i}", b"x") for i in range(2))), now=2.0)
    tables.absorb(_batch(("delete", "c0", None), ("delete", "c1", None), ("create", "c2", b"x"),
                         ("put", "q", b"1")), now=2.0)
    assert tables.live_rows == 2 and tables.due(2.0)  # c2 and q: still a quarter
    tables.take()  # of c0..c2 only c2 outlived it
    tables.absorb(_batch(*(("create", f"d{i}", b"x") for i in range(4))), now=3.0)
    assert not tables.due(3.0)


def test_discard_forgets_pending_rows(tmp_path: Path) -> None:
    store = LmdbStore(str(tmp_path))
    store.write([("t", b"a", b"disk")])
    tables = DeferredTables(store)
    tables.absorb(_batch(("put", "a", b"memory"), ("create", "b", b"new")), now=0.0)
    tables.discard()
    assert tables.get("t", b"a") == b"disk"
    assert tables.get("t", b"b") is None
    assert tables.since is None and tables.take() == []


def test_payload_rows_are_kept_apart_for_the_batch_write() -> None:
    changes = ChangeSet()
    changes.put_payload("records", b"1", b"data")
    changes.put("shards", b"s", b"state")
    changes.delete_payload("records", b"0")
    assert changes.payload == [("records", b"1", b"data"), ("records", b"0", None)]
    assert ("records", b"1") not in changes.rows
    assert changes.ops[:2] == changes.payload


# -- the overlay against a reference model ------------------------------------------------------------------------

KEYS = [f"k{i}".encode() for i in range(6)]
step = st.one_of(
    st.tuples(st.just("put"), st.sampled_from(KEYS), st.binary(min_size=1, max_size=4)),
    st.tuples(st.just("delete"), st.sampled_from(KEYS), st.none()),
    st.tuples(st.just("create"), st.none(), st.binary(min_size=1, max_size=4)),
    st.tuples(st.just("checkpoint"), st.none(), st.none()),
)


@settings(max_examples=150, deadline=None)
@given(steps=st.lists(st.lists(step, max_size=6), max_size=12), prefix=st.sampled_from([b"", b"k", b"k1", b"n"]))
def test_the_overlay_reads_as_the_reference_and_checkpoints_reach_it(tmp_path_factory: Any,
                                                                      steps: list[list[tuple[str, Any, Any]]],
                                                                      prefix: bytes) -> None:
    store = LmdbStore(str(tmp_path_factory.mktemp("deferred")))
    store.write([("t", b"k0", b"old"), ("t", b"k3", b"old"), ("other", b"k1", b"x")])
    reference: dict[bytes, bytes] = {b"k0": b"old", b"k3": b"old"}
    tables = DeferredTables(store)
    fresh = (f"n{i}".encode() for i in itertools.count())  # created keys never existed before
    created: list[bytes] = []
    for batch in steps:
        changes = ChangeSet()
        for kind, key, value in batch:
            if kind == "put":
                changes.put("t", key, value)
                reference[key] = value
            elif kind == "delete":
                changes.delete("t", key)
                reference.pop(key, None)
            elif kind == "create":
                new = next(fresh)
                changes.create("t", new, value)
                reference[new] = value
                created.append(new)
            else:
                store.write(tables.take())
                tables.written()
        tables.absorb(changes, now=0.0)
        # Deleting some created rows again in a later batch: the case that must leave no trace on disk.
        if created and batch and batch[0][0] == "delete":
            gone = created.pop()
            later = ChangeSet()
            later.delete("t", gone)
            reference.pop(gone, None)
            tables.absorb(later, now=0.0)
        for key in [*KEYS, *reference]:
            assert tables.get("t", key) == reference.get(key)
        assert list(tables.scan("t", prefix)) == sorted((k, v) for k, v in reference.items() if k.startswith(prefix))
    store.write(tables.take())
    tables.written()
    assert dict(store.scan("t")) == reference
    assert dict(store.scan("other")) == {b"k1": b"x"}
