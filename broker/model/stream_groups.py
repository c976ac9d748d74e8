"""Consumer groups for streams, the replicated model part: members, sessions, shard assignment and checkpoints.

What KCL keeps in a DynamoDB lease table lives here, in the Raft-replicated state. Pure like every model part:
time is the entry's timestamp (``meta.ts``), so every node expires the same members at the same log entry.

Rules (decisions where there is no AWS behaviour to copy):
- A group belongs to one stream *incarnation* (its stream id): once the stream is deleted (or deleted and created
  again under the same name) the group answers ResourceNotFoundException and the next command that touches it or
  the next ``ExpireMembers`` sweep removes it.
- A member's session ends ``session_timeout_ms`` after its last join, heartbeat or checkpoint. Expired members are
  dropped by any command on their group (using that command's timestamp) and by the leader's periodic sweep.
- Assignable shards: every shard of the stream that is not finished (checkpointed at ``SHARD_END``) and whose
  parents are all finished or already removed by retention. So a child of a split or merge is read only after its
  parents were read to their end, which keeps per-key order across resharding.
- Assignment is balanced (owned-shard counts differ by at most one) and sticky (a shard changes owner only when
  its owner left or holds more than its share); every choice is by sorted ids, so it is deterministic. The group's
  ``generation`` increases whenever the assignment changes.
- A group created with ``LATEST`` checkpoints every open shard at its current end and every closed shard at
  ``SHARD_END`` when it is created, so "latest" is fixed once for all members, not re-read by each new owner.
- A checkpoint that names a member is refused (``ShardNotOwnedException``) unless that member owns the shard now.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from broker.model import errors
from broker.model.group_commands import (
    LATEST,
    SHARD_END,
    Checkpoint,
    DeleteGroup,
    ExpireMembers,
    GroupHeartbeat,
    JoinGroup,
    LeaveGroup,
)
from broker.model.kinesis_errors import (
    InvalidArgumentException,
    LimitExceededException,
    ResourceNotFoundException,
    stream_not_found,
)
from broker.model.kinesis_keys import parse_sequence_number, shard_id, shard_index
from broker.model.kinesis_model import KinesisModel
from broker.model.kinesis_stream import DELETING, Shard, Stream
from broker.model.part import DispatchingPart
from storage import codec, keys
from storage.changes import ChangeSink, TableReader

GROUPS = "stream_groups"  # text(account, stream, group) -> Group.row()
MAX_MEMBERS = 200
GroupKey = tuple[str, str, str]


class Meta(Protocol):
    @property
    def ts(self) -> int: ...


class ShardNotOwnedException(errors.BrokerError):
    """A checkpoint by a member that does not own the shard (any more): it must stop reading that shard."""

    code = "ShardNotOwnedException"
    status = 409


class AssignedShard(NamedTuple):
    shard_id: str
    checkpoint: str  # "" when none yet: read from TRIM_HORIZON; otherwise read after this sequence number


class Assignment(NamedTuple):
    """The reply to join, heartbeat and checkpoint: what the member owns now."""

    generation: int
    shards: tuple[AssignedShard, ...]
    session_timeout_ms: int


@dataclass(slots=True)
class Group:
    account: str
    stream: str
    name: str
    stream_id: int
    created_ts: int
    session_timeout_ms: int
    start: str
    generation: int = 0
    members: dict[str, int] = field(default_factory=dict)  # member -> when its session expires (entry ms)
    owners: dict[int, str] = field(default_factory=dict)  # shard index -> owning member
    checkpoints: dict[int, str] = field(default_factory=dict)  # shard index -> sequence number or SHARD_END

    @property
    def key(self) -> GroupKey:
        return (self.account, self.stream, self.name)

    def shards_of(self, member: str) -> list[int]:
        return sorted(index for index, owner in self.owners.items() if owner == member)

    def row(self) -> list[Any]:
        return [self.stream_id, self.created_ts, self.session_timeout_ms, self.start, self.generation,
                sorted(self.members.items()), sorted(self.owners.items()), sorted(self.checkpoints.items())]

    @classmethod
    def from_row(cls, account: str, stream: str, name: str, f: list[Any]) -> Group:
        return cls(account, stream, name, f[0], f[1], f[2], f[3], f[4], {m: t for m, t in f[5]},
                   {i: m for i, m in f[6]}, {i: s for i, s in f[7]})


def group_not_found(group: str, stream: str, account: str) -> ResourceNotFoundException:
    return ResourceNotFoundException(f"Consumer group {group} of stream {stream} under account {account} not found.")


def balance(owners: dict[int, str], shards: list[int], members: list[str]) -> dict[int, str]:
    """A balanced, sticky assignment of ``shards`` to ``members`` that keeps as much of ``owners`` as it can.

    Members that already hold the most shards get the larger shares (fewest moves); a member over its share gives
    up its highest shards; free shards go, in index order, to the member with the fewest (then the smallest id).
    """
    if not members:
        return {}
    live = set(members)
    kept = {s: m for s, m in owners.items() if m in live and s in set(shards)}
    held: dict[str, list[int]] = {m: [] for m in members}
    for s in sorted(kept):
        held[kept[s]].append(s)
    base, extra = divmod(len(shards), len(members))
    order = sorted(members, key=lambda m: (-len(held[m]), m))
    quota = {m: base + (1 if i < extra else 0) for i, m in enumerate(order)}
    for m in members:
        while len(held[m]) > quota[m]:
            del kept[held[m].pop()]
    for s in shards:
        if s not in kept:
            m = min((m for m in members if len(held[m]) < quota[m]), key=lambda m: (len(held[m]), m))
            held[m].append(s)
            kept[s] = m
    return kept


class StreamGroupsModel(DispatchingPart[GroupKey]):
    """Every consumer group of this node; reads a stream's shards from the Kinesis model part."""

    wake_prefix = "groups"  # wake-ups are (account, stream, group) whose assignment changed

    def __init__(self, kinesis: KinesisModel) -> None:
        self.kinesis = kinesis
        self.groups: dict[GroupKey, Group] = {}
        self.wakeups: set[GroupKey] = set()
        self._handlers: dict[type[Any], Callable[[Any, Meta, ChangeSink], object]] = {
            JoinGroup: self._join, GroupHeartbeat: self._heartbeat, Checkpoint: self._checkpoint,
            LeaveGroup: self._leave, DeleteGroup: self._delete, ExpireMembers: self._expire_all,
        }

    # -- ModelPart ----------------------------------------------------------------------------------------------



    def restore(self, reader: TableReader) -> None:
        self.groups.clear()
        self.wakeups.clear()
        for key, value in reader.scan(GROUPS):
            account, stream, name = keys.text_from(key)
            self.groups[(account, stream, name)] = Group.from_row(account, stream, name, codec.unpack(value))

    # -- reads (the service's, after a read barrier) ------------------------------------------------------------

    def stream_of(self, group: Group) -> Stream | None:
        """The stream incarnation the group was created on; None once it is deleted (or replaced)."""
        stream = self.kinesis.streams.get((group.account, group.stream))
        if stream is None or stream.stream_id != group.stream_id or stream.status == DELETING:
            return None
        return stream

    def group(self, account: str, stream: str, name: str) -> Group:
        found = self.groups.get((account, stream, name))
        if found is None or self.stream_of(found) is None:
            raise group_not_found(name, stream, account)
        return found

    def list_groups(self, account: str, stream: str) -> list[str]:
        return sorted(g.name for (a, s, _), g in self.groups.items()
                      if a == account and s == stream and self.stream_of(g) is not None)

    def assignment(self, group: Group, member: str) -> Assignment:
        return Assignment(group.generation, tuple(AssignedShard(shard_id(i), group.checkpoints.get(i, ""))
                                                  for i in group.shards_of(member)), group.session_timeout_ms)

    def assignable(self, group: Group, stream: Stream) -> list[int]:
        """Shards to read now: not finished, and every parent finished or gone (see the module docstring)."""
        shards = stream.shards
        done = {i for i, seq in group.checkpoints.items() if seq == SHARD_END}
        return [i for i, shard in sorted(shards.items())
                if i not in done and all(p in done or p not in shards for p in shard.parents)]

    def next_due(self) -> int | None:
        """When the next ``ExpireMembers`` has work: the earliest session end, or 0 for a deleted stream's group."""
        due: list[int] = []
        for group in self.groups.values():
            if self.stream_of(group) is None:
                return 0
            if group.members:
                due.append(min(group.members.values()))
        return min(due) if due else None

    # -- commands -----------------------------------------------------------------------------------------------

    def _save(self, group: Group, changes: ChangeSink) -> None:
        changes.put(GROUPS, keys.text(*group.key), codec.pack(group.row()))

    def _drop(self, group: Group, changes: ChangeSink) -> None:
        del self.groups[group.key]
        changes.delete(GROUPS, keys.text(*group.key))
        self.wakeups.add(group.key)

    def _live(self, account: str, stream: str, name: str, changes: ChangeSink) -> tuple[Group, Stream]:
        """The group and its stream; a group whose stream is gone is removed and reported as not found."""
        group = self.groups.get((account, stream, name))
        if group is None:
            raise group_not_found(name, stream, account)
        found = self.stream_of(group)
        if found is None:
            self._drop(group, changes)
            raise group_not_found(name, stream, account)
        return group, found

    def _settle(self, group: Group, stream: Stream, ts: int) -> bool:
        """Expire members whose session ended by ``ts``, forget checkpoints of removed shards, rebalance.
        True when anything changed."""
        expired = [m for m, until in group.members.items() if until <= ts]
        for member in expired:
            del group.members[member]
        stale = [i for i in group.checkpoints if i not in stream.shards]
        for index in stale:
            del group.checkpoints[index]
        owners = balance(group.owners, self.assignable(group, stream), sorted(group.members))
        rebalanced = owners != group.owners
        if rebalanced:
            group.owners = owners
            group.generation += 1
            self.wakeups.add(group.key)
        return bool(expired or stale) or rebalanced

    def _join(self, cmd: JoinGroup, meta: Meta, changes: ChangeSink) -> object:
        key = (cmd.account, cmd.stream, cmd.group)
        existing = self.groups.get(key)
        if existing is not None and self.stream_of(existing) is None:
            self._drop(existing, changes)  # the stream was deleted (and maybe created again): start afresh
            existing = None
        if existing is None:
            stream = self.kinesis.streams.get((cmd.account, cmd.stream))
            if stream is None or stream.status == DELETING:
                raise stream_not_found(cmd.stream, cmd.account)
            existing = self.groups[key] = self._create(cmd, stream, meta.ts)
        group, stream = self._live(*key, changes)
        return self._admit(group, stream, cmd.member, meta.ts, changes)

    def _admit(self, group: Group, stream: Stream, member: str, ts: int, changes: ChangeSink) -> object:
        """Start or extend ``member``'s session (join and heartbeat alike) and answer its assignment."""
        if member not in group.members and len(group.members) >= MAX_MEMBERS:
            raise LimitExceededException(f"Consumer group {group.name} of stream {group.stream} under account "
                                         f"{group.account} already has {MAX_MEMBERS} members.")
        group.members[member] = ts + group.session_timeout_ms
        self._settle(group, stream, ts)
        self._save(group, changes)
        return self.assignment(group, member)

    @staticmethod
    def _create(cmd: JoinGroup, stream: Stream, ts: int) -> Group:
        group = Group(cmd.account, cmd.stream, cmd.group, stream.stream_id, ts, cmd.session_timeout_ms, cmd.start)
        if cmd.start == LATEST:
            for index, shard in stream.shards.items():
                group.checkpoints[index] = SHARD_END if not shard.is_open else shard.seq(shard.counter, 0)
        return group

    def _heartbeat(self, cmd: GroupHeartbeat, meta: Meta, changes: ChangeSink) -> object:
        group, stream = self._live(cmd.account, cmd.stream, cmd.group, changes)
        return self._admit(group, stream, cmd.member, meta.ts, changes)

    def _checkpoint(self, cmd: Checkpoint, meta: Meta, changes: ChangeSink) -> object:
        group, stream = self._live(cmd.account, cmd.stream, cmd.group, changes)
        index = shard_index(cmd.shard)
        shard = stream.shards.get(index) if index is not None else None
        if shard is None:
            raise ResourceNotFoundException(f"Could not find shard {cmd.shard} in stream {cmd.stream} under "
                                            f"account {cmd.account}.")
        self._check_position(shard, cmd.sequence_number)
        changed = self._settle(group, stream, meta.ts)
        if cmd.member and group.owners.get(shard.index) != cmd.member:
            if changed:
                self._save(group, changes)
            raise ShardNotOwnedException(f"Shard {shard.id} of consumer group {cmd.group} is not owned by member "
                                         f"{cmd.member} (generation {group.generation}).")
        group.checkpoints[shard.index] = cmd.sequence_number
        if cmd.member:
            group.members[cmd.member] = meta.ts + group.session_timeout_ms
        if cmd.sequence_number == SHARD_END:
            self._settle(group, stream, meta.ts)  # the shard's children may be assigned now
        self._save(group, changes)
        return self.assignment(group, cmd.member)

    @staticmethod
    def _check_position(shard: Shard, sequence_number: str) -> None:
        if sequence_number == SHARD_END:
            if shard.is_open:
                raise InvalidArgumentException(f"Shard {shard.id} is open: it has no end to checkpoint.")
            return
        parsed = parse_sequence_number(sequence_number)
        if parsed is None or parsed[1] != shard.index or parsed[0] != shard.created_s:
            raise InvalidArgumentException(f"Sequence number {sequence_number} is not one of shard {shard.id}.")
        if parsed[2] > shard.counter:
            raise InvalidArgumentException(f"Sequence number {sequence_number} is beyond the last record of shard "
                                           f"{shard.id}.")

    def _leave(self, cmd: LeaveGroup, meta: Meta, changes: ChangeSink) -> object:
        group, stream = self._live(cmd.account, cmd.stream, cmd.group, changes)
        group.members.pop(cmd.member, None)
        self._settle(group, stream, meta.ts)
        self._save(group, changes)
        return None

    def _delete(self, cmd: DeleteGroup, meta: Meta, changes: ChangeSink) -> object:
        group, _ = self._live(cmd.account, cmd.stream, cmd.group, changes)
        self._drop(group, changes)
        return None

    def _expire_all(self, cmd: ExpireMembers, meta: Meta, changes: ChangeSink) -> object:
        """The leader's sweep; the reply is how many groups changed (0: the sweep found nothing to do)."""
        changed = 0
        for group in list(self.groups.values()):
            stream = self.stream_of(group)
            if stream is None:
                self._drop(group, changes)
                changed += 1
            elif self._settle(group, stream, meta.ts):
                self._save(group, changes)
                changed += 1
        return changed
