"""Snapshots of the state machine's persisted tables: dump them at one applied index, and replace them by a dump.

The state machine's state is every LMDB table that is neither the Raft log (``raft_*``) nor ``meta``. A dump is
taken inside ONE read transaction, which LMDB keeps consistent while the writer goes on, and records the applied
index and timestamp read in that same transaction: the snapshot's position is exact without pausing the Raft loop.

Format: ``MAGIC``, u64 applied index, u64 applied ts, then per table ``b"T"`` u16 name length + name, followed by
its rows ``b"R"`` u16 key length + u32 value length + key + value.
"""

from __future__ import annotations

import struct
from typing import Any

from storage import keys
from storage.lmdb_store import META_TABLE, LmdbStore

RAFT_PREFIX = "raft_"
MAGIC = b"RMQSNAP1"
_HEAD = struct.Struct(">QQ")
_TABLE = struct.Struct(">H")
_ROW = struct.Struct(">HI")

Op = tuple[str, bytes, bytes | None]


class SnapshotFormatError(Exception):
    """The snapshot bytes are not a state dump of this format."""


def is_state_table(name: str) -> bool:
    return name != META_TABLE and not name.startswith(RAFT_PREFIX)


def _db(store: LmdbStore, name: str) -> Any:
    # LmdbStore has no multi-table read transaction; its handle cache is the one place that opens named tables.
    return store._db(name)


def state_tables(store: LmdbStore) -> list[str]:
    """Names of the state machine's tables, in order."""
    with store.env.begin() as txn:
        return [name for name in (bytes(k).decode() for k, _ in txn.cursor()) if is_state_table(name)]


def dump(store: LmdbStore, applied_key: tuple[str, bytes]) -> tuple[int, int, bytes]:
    """Every state row plus the applied (index, ts) stored at ``applied_key``, from one read transaction."""
    tables = state_tables(store)
    handles = [(name, _db(store, name)) for name in tables]
    table_name, key = applied_key
    applied_db = _db(store, table_name)
    parts: list[bytes] = []
    with store.env.begin(buffers=False) as txn:
        raw = txn.get(key, db=applied_db)
        index, ts = keys.u64_pair_from(raw) if raw else (0, 0)
        parts.append(MAGIC + _HEAD.pack(index, ts))
        for name, db in handles:
            encoded = name.encode()
            parts.append(b"T" + _TABLE.pack(len(encoded)) + encoded)
            pack = _ROW.pack
            for k, v in txn.cursor(db=db):
                parts.append(b"R" + pack(len(k), len(v)) + k + v)
    return index, ts, b"".join(parts)


def header(data: bytes) -> tuple[int, int]:
    """(applied index, ts) of a dump."""
    if not data.startswith(MAGIC):
        raise SnapshotFormatError("not a RaftMQ state snapshot")
    index, ts = _HEAD.unpack_from(data, len(MAGIC))
    return index, ts


def parse(data: bytes) -> tuple[int, int, list[tuple[str, bytes, bytes]]]:
    """(applied index, ts, rows) of a dump."""
    index, ts = header(data)
    pos = len(MAGIC) + _HEAD.size
    try:
        rows = _rows(data, pos)
    except struct.error as exc:
        raise SnapshotFormatError("truncated snapshot") from exc
    return index, ts, rows


def _rows(data: bytes, pos: int) -> list[tuple[str, bytes, bytes]]:
    rows: list[tuple[str, bytes, bytes]] = []
    table = ""
    end = len(data)
    while pos < end:
        tag = data[pos : pos + 1]
        pos += 1
        if tag == b"T":
            (n,) = _TABLE.unpack_from(data, pos)
            pos += _TABLE.size
            table = data[pos : pos + n].decode()
            pos += n
        elif tag == b"R" and table:
            klen, vlen = _ROW.unpack_from(data, pos)
            pos += _ROW.size
            rows.append((table, data[pos : pos + klen], data[pos + klen : pos + klen + vlen]))
            pos += klen + vlen
        else:
            raise SnapshotFormatError(f"bad tag {tag!r} at {pos - 1}")
    if pos != end:
        raise SnapshotFormatError("truncated snapshot")
    return rows


def install_ops(store: LmdbStore, data: bytes) -> list[Op]:
    """Ops that replace every state table by the dump's rows (run in the writer thread, just before its write).

    Existing rows are deleted key by key rather than by range, because the store applies ranges after all ops
    and would delete the rows just installed.
    """
    _, _, rows = parse(data)
    ops: list[Op] = []
    for name in state_tables(store):
        ops.extend((name, k, None) for k, _ in store.scan(name))
    ops.extend(rows)
    return ops
