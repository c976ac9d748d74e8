"""The protobuf codec of Raft messages, and state-table snapshots (dump, parse, install)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cluster.core.messages import Message, MsgType, SnapshotChunk
from cluster.core.types import ConfState, Entry, EntryType, SnapshotMeta
from cluster.lmdb_log import APPLIED_KEY, STATE_TABLE
from cluster.state_snapshot import SnapshotFormatError, dump, header, install_ops, parse, state_tables
from cluster.wire import decode_message, encode_frame
from proto.cluster.v1 import transport_pb2 as pb
from storage import keys
from storage.lmdb_store import META_TABLE, LmdbStore

MESSAGES = [
    Message(MsgType.APP, "n1", "n2", 7, 3, "c1", log_term=6, index=41, commit=40,
            entries=(Entry(42, 7, EntryType.NORMAL, b"\x00data", ts=1_700_000_000_123),
                     Entry(43, 7, EntryType.CONF_CHANGE, b"0|n4|n1,n2|n4", ts=1_700_000_000_124),
                     Entry(44, 7, EntryType.EMPTY, b"", ts=5))),
    Message(MsgType.APP_RESP, "n2", "n1", 7, 3, "c1", log_term=5, index=41, reject=True, reject_hint=30),
    Message(MsgType.VOTE, "n3", "n1", 8, 0, "c1", log_term=7, index=44, context=b"transfer"),
    Message(MsgType.HEARTBEAT, "n1", "n3", 7, 0, "c1", commit=40, context=b"17"),
    Message(MsgType.SNAP, "n1", "n4", 7, 0, "c1",
            snapshot=SnapshotChunk(SnapshotMeta(100, 6, ConfState(frozenset({"n1", "n2"}), frozenset({"n4"}))),
                                   1 << 20, b"chunk", done=True)),
]


@pytest.mark.parametrize("msg", MESSAGES, ids=lambda m: m.type.name)
def test_every_message_shape_round_trips(msg: Message) -> None:
    frame = pb.Frame.FromString(encode_frame([msg]).SerializeToString())
    assert [decode_message(p) for p in frame.messages] == [msg]


def test_the_sender_checksum_travels_so_corruption_is_detected() -> None:
    msg = MESSAGES[0]
    frame = encode_frame([msg])
    frame.messages[0].entries[0].data = b"\x00dat4"  # flipped in transit
    decoded = decode_message(frame.messages[0])
    assert not decoded.entries[0].valid()
    assert decoded.entries[1].valid()


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
