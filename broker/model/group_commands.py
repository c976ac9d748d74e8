"""Replicated consumer-group commands for streams (TYPE_IDs 300-349, append-only): frozen dataclasses as CBOR arrays.

    300 JoinGroup  301 GroupHeartbeat  302 Checkpoint  303 LeaveGroup  304 DeleteGroup  305 ExpireMembers

Every command that names a group carries (account, stream, group). Time is never a field: session expiry is
computed from the entry's timestamp (``meta.ts``), so every node expires the same members at the same entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from broker.model import commands
from broker.model.commands import PlainFields

SHARD_END = "SHARD_END"  # the checkpoint of a closed shard read to its end: its children may be assigned
TRIM_HORIZON = "TRIM_HORIZON"
LATEST = "LATEST"


@dataclass(frozen=True, slots=True)
class JoinGroup(PlainFields):
    """Add (or refresh) ``member``; creates the group with this configuration when it does not exist yet (an
    existing group keeps its own: the first join decides)."""

    TYPE_ID: ClassVar[int] = 300
    account: str
    stream: str
    group: str
    member: str
    session_timeout_ms: int = 10_000
    start: str = TRIM_HORIZON  # where a shard without a checkpoint is read from: TRIM_HORIZON | LATEST


@dataclass(frozen=True, slots=True)
class GroupHeartbeat(PlainFields):
    """Extend ``member``'s session; a member that had expired is added back (it then gets a fresh assignment)."""

    TYPE_ID: ClassVar[int] = 301
    account: str
    stream: str
    group: str
    member: str


@dataclass(frozen=True, slots=True)
class Checkpoint(PlainFields):
    """Record that ``shard`` was processed up to and including ``sequence_number`` (or ``SHARD_END``).

    ``member`` non-empty: refused unless that member owns the shard now (a member that lost the shard cannot
    overwrite its new owner's progress); it also extends that member's session. Empty: an administrative
    checkpoint without an owner check.
    """

    TYPE_ID: ClassVar[int] = 302
    account: str
    stream: str
    group: str
    member: str
    shard: str
    sequence_number: str


@dataclass(frozen=True, slots=True)
class LeaveGroup(PlainFields):
    """Remove ``member`` at once (its shards are reassigned without waiting for its session to expire)."""

    TYPE_ID: ClassVar[int] = 303
    account: str
    stream: str
    group: str
    member: str


@dataclass(frozen=True, slots=True)
class DeleteGroup(PlainFields):
    TYPE_ID: ClassVar[int] = 304
    account: str
    stream: str
    group: str


@dataclass(frozen=True, slots=True)
class ExpireMembers(PlainFields):
    """Sweep every group at the entry's time: drop expired members and groups of deleted streams, rebalance."""

    TYPE_ID: ClassVar[int] = 305


GROUP_COMMANDS = (JoinGroup, GroupHeartbeat, Checkpoint, LeaveGroup, DeleteGroup, ExpireMembers)
commands.register(*GROUP_COMMANDS)
