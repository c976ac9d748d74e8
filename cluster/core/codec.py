"""Protobuf wire form (proto/cluster/v1/raft.proto) of the core's messages, entries and hard state.

Entries keep the checksum they were created with, so a corruption anywhere between the leader's memory and the
follower's log is caught by ``Entry.valid()`` on receipt (the core drops such a message).
"""

from __future__ import annotations

from collections.abc import Iterable

from cluster.core.messages import Message, MsgType, SnapshotChunk
from cluster.core.types import ConfState, Entry, EntryType, HardState, SnapshotMeta
from proto.cluster.v1 import raft_pb2 as pb


class CodecError(Exception):
    """Bytes that are not a valid encoding (unparseable protobuf or an unknown enum value)."""


def _entry_to_pb(e: Entry, out: pb.Entry) -> None:
    out.index, out.term, out.data, out.ts, out.crc = e.index, e.term, e.data, e.ts, e.crc
    out.type = pb.EntryType.Value("ENTRY_" + e.type.name)


def _entry_from_pb(p: pb.Entry) -> Entry:
    return Entry(p.index, p.term, EntryType(p.type), p.data, p.ts, p.crc)


def _meta_to_pb(m: SnapshotMeta, out: pb.SnapshotMeta) -> None:
    out.index, out.term = m.index, m.term
    out.conf_state.voters.extend(sorted(m.conf_state.voters))
    out.conf_state.learners.extend(sorted(m.conf_state.learners))


def _meta_from_pb(p: pb.SnapshotMeta) -> SnapshotMeta:
    return SnapshotMeta(p.index, p.term, ConfState(frozenset(p.conf_state.voters), frozenset(p.conf_state.learners)))


def _msg_to_pb(m: Message, out: pb.Message) -> None:
    out.type = pb.MessageType.Value("MSG_" + m.type.name)
    out.from_id, out.to_id, out.term, out.group_id, out.cluster_id = m.frm, m.to, m.term, m.group_id, m.cluster_id
    out.log_term, out.index, out.commit, out.reject, out.reject_hint = (
        m.log_term, m.index, m.commit, m.reject, m.reject_hint)
    out.context = m.context
    for e in m.entries:
        _entry_to_pb(e, out.entries.add())
    if m.snapshot is not None:
        c = m.snapshot
        _meta_to_pb(c.meta, out.snapshot.meta)
        out.snapshot.offset, out.snapshot.data, out.snapshot.done = c.offset, c.data, c.done


def _msg_from_pb(p: pb.Message) -> Message:
    snap = None
    if p.HasField("snapshot"):
        s = p.snapshot
        snap = SnapshotChunk(_meta_from_pb(s.meta), s.offset, s.data, s.done)
    return Message(
        MsgType(p.type), p.from_id, p.to_id, p.term, p.group_id, p.cluster_id, p.log_term, p.index,
        tuple(_entry_from_pb(e) for e in p.entries), p.commit, p.reject, p.reject_hint, p.context, snap,
    )


def encode_message(m: Message) -> bytes:
    out = pb.Message()
    _msg_to_pb(m, out)
    return bytes(out.SerializeToString())


def decode_message(data: bytes) -> Message:
    try:
        p = pb.Message.FromString(data)
        return _msg_from_pb(p)
    except Exception as exc:  # DecodeError, or an enum value this version does not know
        raise CodecError(str(exc)) from exc


def encode_batch(msgs: Iterable[Message]) -> bytes:
    """All messages for one peer from one Ready, as one ``RaftBatch``."""
    out = pb.RaftBatch()
    for m in msgs:
        _msg_to_pb(m, out.messages.add())
    return bytes(out.SerializeToString())


def decode_batch(data: bytes) -> list[Message]:
    try:
        return [_msg_from_pb(p) for p in pb.RaftBatch.FromString(data).messages]
    except Exception as exc:
        raise CodecError(str(exc)) from exc


def encode_entry(e: Entry) -> bytes:
    """An entry as stored in a log (the LMDB log store may use this)."""
    out = pb.Entry()
    _entry_to_pb(e, out)
    return bytes(out.SerializeToString())


def decode_entry(data: bytes) -> Entry:
    """Decode a stored entry; the caller verifies it (``Entry.verify``) before use."""
    try:
        return _entry_from_pb(pb.Entry.FromString(data))
    except Exception as exc:
        raise CodecError(str(exc)) from exc


def encode_hard_state(hs: HardState) -> bytes:
    return bytes(pb.HardState(term=hs.term, vote=hs.vote, commit=hs.commit).SerializeToString())


def decode_hard_state(data: bytes) -> HardState:
    try:
        p = pb.HardState.FromString(data)
    except Exception as exc:
        raise CodecError(str(exc)) from exc
    return HardState(p.term, p.vote, p.commit)
