"""Messages exchanged between Raft nodes (and the local-only inputs that share the same path).

One frozen, slotted ``Message`` with a ``type`` keeps the wire form (proto/cluster/v1/raft.proto) and the codec
simple; fields that a type does not use keep their defaults.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from cluster.core.types import ConfChange, Entry, EntryType, NodeId, SnapshotMeta


class MsgType(enum.IntEnum):
    APP = 0  # append entries (also probes)
    APP_RESP = 1
    VOTE = 2
    VOTE_RESP = 3
    PRE_VOTE = 4
    PRE_VOTE_RESP = 5
    HEARTBEAT = 6
    HEARTBEAT_RESP = 7
    SNAP = 8  # one chunk of InstallSnapshot
    TIMEOUT_NOW = 9  # leadership transfer: campaign now, ignoring the lease
    READ_INDEX = 10  # follower -> leader: confirm a read index for ctx
    READ_INDEX_RESP = 11


@dataclass(frozen=True, slots=True)
class SnapshotChunk:
    """One piece of an InstallSnapshot transfer; the receiver assembles pieces in offset order."""

    meta: SnapshotMeta
    offset: int
    data: bytes
    done: bool


@dataclass(frozen=True, slots=True)
class Message:
    type: MsgType
    frm: NodeId
    to: NodeId
    term: int = 0
    group_id: int = 0
    cluster_id: str = ""
    log_term: int = 0  # APP: term of the entry at ``index``; VOTE: last log term; rejects: hint term
    index: int = 0  # APP: index preceding ``entries``; VOTE: last log index; APP_RESP: match or rejected index
    entries: tuple[Entry, ...] = ()
    commit: int = 0
    reject: bool = False
    reject_hint: int = 0  # APP_RESP reject: the follower's best guess of where logs may match
    context: bytes = b""  # READ_INDEX ctx, heartbeat read round id, b"transfer" on a transfer campaign
    snapshot: SnapshotChunk | None = None

    def brief(self) -> str:
        """A compact, stable rendering used by scenario tests and simulation traces."""
        s = f"{self.frm}->{self.to} {self.type.name} term={self.term}"
        if self.type in (MsgType.APP, MsgType.VOTE, MsgType.PRE_VOTE):
            s += f" log={self.log_term}/{self.index}"
        if self.type in (MsgType.APP_RESP,):
            s += f" index={self.index}"
        if self.type in (MsgType.APP, MsgType.HEARTBEAT):
            s += f" commit={self.commit}"
        if self.entries:
            s += " entries=[" + " ".join(f"{e.term}/{e.index}{_entry_suffix(e)}" for e in self.entries) + "]"
        if self.reject:
            s += " rejected" + (f" (hint: {self.log_term}/{self.reject_hint})" if self.type == MsgType.APP_RESP else "")
        if self.context:
            s += f" ctx={self.context.decode(errors='replace')}"
        if self.type == MsgType.READ_INDEX_RESP:
            s += f" index={self.index}"
        if self.snapshot is not None:
            c = self.snapshot
            s += f" snap={c.meta.term}/{c.meta.index} off={c.offset} len={len(c.data)}{' done' if c.done else ''}"
        return s


def _entry_suffix(e: Entry) -> str:
    if e.type == EntryType.CONF_CHANGE:
        return f" conf({ConfChange.decode(e.data)})"
    if e.type == EntryType.EMPTY:
        return " empty"
    return " " + e.data.decode(errors="replace") if e.data else ""
