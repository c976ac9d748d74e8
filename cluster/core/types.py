"""The data the Raft core reads and writes: entries, hard state, membership, snapshots.

Everything here is a frozen, slotted dataclass so it can be shared between the core, the storage and the
runtime without defensive copies.
"""

from __future__ import annotations

import enum
import struct
import zlib
from dataclasses import dataclass, field

NodeId = str


class ChecksumError(Exception):
    """An entry's bytes do not match its checksum: storage or network corruption, never silently accepted."""


class EntryType(enum.IntEnum):
    NORMAL = 0  # an opaque command for the state machine
    CONF_CHANGE = 1  # a membership change (data is an encoded ConfChange)
    EMPTY = 2  # the no-op a new leader appends to commit an entry of its own term


_CRC_HEADER = struct.Struct(">QQBq")


def entry_checksum(term: int, index: int, type_: int, ts: int, data: bytes) -> int:
    """crc32 over every field that the state machine depends on (term/index/type/ts/data)."""
    return zlib.crc32(data, zlib.crc32(_CRC_HEADER.pack(term, index, type_, ts)))


@dataclass(frozen=True, slots=True)
class Entry:
    """One log entry. ``ts`` is the leader's clock in ms at append time; ``crc`` guards the rest."""

    index: int
    term: int
    type: EntryType = EntryType.NORMAL
    data: bytes = b""
    ts: int = 0
    crc: int = -1  # -1: compute on construction

    def __post_init__(self) -> None:
        if self.crc == -1:
            object.__setattr__(self, "crc", entry_checksum(self.term, self.index, self.type, self.ts, self.data))

    def valid(self) -> bool:
        return self.crc == entry_checksum(self.term, self.index, self.type, self.ts, self.data)

    def verify(self) -> Entry:
        """Return self, or raise ChecksumError when the content was altered."""
        if not self.valid():
            raise ChecksumError(f"entry {self.index}/{self.term} fails its checksum")
        return self

    def size(self) -> int:
        """Approximate wire size, used for message and in-flight byte limits."""
        return len(self.data) + 32


@dataclass(frozen=True, slots=True)
class HardState:
    """What must be on disk before any message produced in the same Ready is sent."""

    term: int = 0
    vote: NodeId = ""
    commit: int = 0


EMPTY_HARD_STATE = HardState()


@dataclass(frozen=True, slots=True)
class ConfState:
    """The membership: voters decide elections and commits, learners only receive the log."""

    voters: frozenset[NodeId] = frozenset()
    learners: frozenset[NodeId] = frozenset()

    def members(self) -> frozenset[NodeId]:
        return self.voters | self.learners


class ConfChangeOp(enum.IntEnum):
    ADD_LEARNER = 0
    PROMOTE = 1  # learner -> voter, allowed only once the learner has caught up
    REMOVE = 2
    ADD_VOTER = 3  # direct add; prefer ADD_LEARNER then PROMOTE


@dataclass(frozen=True, slots=True)
class ConfChange:
    """One single-server membership change. The resulting membership is carried in full so that a node that
    joins late (and never saw the bootstrap configuration) learns the whole configuration from this entry."""

    op: ConfChangeOp
    node_id: NodeId
    result: ConfState = field(default_factory=ConfState)

    def __str__(self) -> str:
        r = self.result
        return (f"{self.op.name.lower().replace('_', '-')} {self.node_id} -> voters={','.join(sorted(r.voters)) or '-'}"
                f" learners={','.join(sorted(r.learners)) or '-'}")

    def encode(self) -> bytes:
        parts = [str(int(self.op)), self.node_id, ",".join(sorted(self.result.voters)),
                 ",".join(sorted(self.result.learners))]
        return "|".join(parts).encode()

    @staticmethod
    def decode(data: bytes) -> ConfChange:
        op, node, voters, learners = data.decode().split("|")
        return ConfChange(
            ConfChangeOp(int(op)),
            node,
            ConfState(frozenset(v for v in voters.split(",") if v), frozenset(v for v in learners.split(",") if v)),
        )


@dataclass(frozen=True, slots=True)
class SnapshotMeta:
    index: int = 0
    term: int = 0
    conf_state: ConfState = field(default_factory=ConfState)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The state machine at ``meta.index`` (opaque ``data``) plus the membership at that point."""

    meta: SnapshotMeta = field(default_factory=SnapshotMeta)
    data: bytes = b""

    def is_empty(self) -> bool:
        return self.meta.index == 0


EMPTY_SNAPSHOT = Snapshot()


class Role(enum.Enum):
    FOLLOWER = "follower"
    PRE_CANDIDATE = "pre-candidate"
    CANDIDATE = "candidate"
    LEADER = "leader"


@dataclass(frozen=True, slots=True)
class SoftState:
    """Volatile state the runtime may want to observe (who leads, what we are); never persisted."""

    leader: NodeId = ""
    role: Role = Role.FOLLOWER


@dataclass(frozen=True, slots=True)
class ReadState:
    """A confirmed ReadIndex: once ``index`` is applied, a read for request ``ctx`` is linearizable."""

    index: int
    ctx: bytes
