"""Raft messages to and from their protobuf form (proto/cluster/v1/transport.proto), field by field.

Entries keep the checksum they were created with, so a receiver verifies what the leader computed rather than
recomputing it over possibly corrupted bytes.
"""

from __future__ import annotations

from cluster.core.messages import Message, MsgType, SnapshotChunk
from cluster.core.types import ConfState, Entry, EntryType, SnapshotMeta
from proto.cluster.v1 import transport_pb2 as pb


def encode_message(m: Message, out: pb.RaftMessage) -> None:
    """Fill ``out`` (usually a fresh ``frame.messages.add()``) from ``m``."""
    out.type = int(m.type)
    out.frm = m.frm
    out.to = m.to
    out.term = m.term
    out.group_id = m.group_id
    out.cluster_id = m.cluster_id
    out.log_term = m.log_term
    out.index = m.index
    out.commit = m.commit
    out.reject = m.reject
    out.reject_hint = m.reject_hint
    out.context = m.context
    if m.entries:
        add = out.entries.add
        for e in m.entries:
            add(index=e.index, term=e.term, type=int(e.type), data=e.data, ts=e.ts, crc=e.crc)
    c = m.snapshot
    if c is not None:
        s = out.snapshot
        s.index = c.meta.index
        s.term = c.meta.term
        s.voters.extend(sorted(c.meta.conf_state.voters))
        s.learners.extend(sorted(c.meta.conf_state.learners))
        s.offset = c.offset
        s.data = c.data
        s.done = c.done


def decode_message(p: pb.RaftMessage) -> Message:
    entries = tuple(Entry(e.index, e.term, EntryType(e.type), e.data, e.ts, e.crc) for e in p.entries)
    snapshot = None
    if p.HasField("snapshot"):
        s = p.snapshot
        meta = SnapshotMeta(s.index, s.term, ConfState(frozenset(s.voters), frozenset(s.learners)))
        snapshot = SnapshotChunk(meta, s.offset, s.data, s.done)
    return Message(MsgType(p.type), p.frm, p.to, p.term, p.group_id, p.cluster_id, p.log_term, p.index, entries,
                   p.commit, p.reject, p.reject_hint, p.context, snapshot)


def encode_frame(messages: list[Message]) -> pb.Frame:
    frame = pb.Frame()
    add = frame.messages.add
    for m in messages:
        encode_message(m, add())
    return frame
