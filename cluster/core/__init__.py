"""A sans-IO Raft consensus engine in the style of etcd-io/raft (see ``rawnode`` for the driving contract)."""

from cluster.core.errors import ProposalDropped
from cluster.core.messages import Message, MsgType, SnapshotChunk
from cluster.core.raft import Config
from cluster.core.rawnode import PeerStatus, RawNode, Ready, Status
from cluster.core.storage import CompactedError, LogStorage, MemoryStorage, UnavailableError
from cluster.core.types import (
    ChecksumError,
    ConfChange,
    ConfChangeOp,
    ConfState,
    Entry,
    EntryType,
    HardState,
    ReadState,
    Role,
    Snapshot,
    SnapshotMeta,
    SoftState,
)

__all__ = [
    "ChecksumError",
    "CompactedError",
    "ConfChange",
    "ConfChangeOp",
    "ConfState",
    "Config",
    "Entry",
    "EntryType",
    "HardState",
    "LogStorage",
    "MemoryStorage",
    "Message",
    "MsgType",
    "PeerStatus",
    "ProposalDropped",
    "RawNode",
    "ReadState",
    "Ready",
    "Role",
    "Snapshot",
    "SnapshotChunk",
    "SnapshotMeta",
    "SoftState",
    "Status",
    "UnavailableError",
]
