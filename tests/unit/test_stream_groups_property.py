"""Hypothesis state machine over the consumer-group model: members join, heartbeat, leave, checkpoint and go
silent while time passes and the stream is resharded. After every step the assignment must be balanced, cover every
assignable shard exactly once with live members only, and a model restored from its tables must equal the live one.
"""

from __future__ import annotations

from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from broker.model.group_commands import SHARD_END, Checkpoint, ExpireMembers, GroupHeartbeat, JoinGroup, LeaveGroup
from broker.model.kinesis_commands import CreateStream, MergeShards, PutEntry, PutRecords, SplitShard
from broker.model.kinesis_keys import shard_id
from broker.model.kinesis_model import KinesisModel
from broker.model.stream_groups import Assignment, ShardNotOwnedException, StreamGroupsModel
from storage.changes import ChangeSet, MemoryTables

ACCOUNT, STREAM, GROUP = "000000000000", "orders", "billing"
TIMEOUT = 1_000
MEMBERS = ("m1", "m2", "m3", "m4")


class Meta:
    def __init__(self, index: int, ts: int) -> None:
        self.index = index
        self.ts = ts
        self.reply = True


class GroupMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.kinesis = KinesisModel()
        self.model = StreamGroupsModel(self.kinesis)
        self.tables = MemoryTables()
        self.index = 0
        self.ts = 1_700_000_000_000
        self.sessions: dict[str, int] = {}  # reference: member -> session end
        self.done: set[int] = set()  # reference: shards checkpointed at SHARD_END
        self.last_seq: dict[int, str] = {}  # newest record of each shard

    def apply(self, command: Any) -> object:
        self.index += 1
        changes = ChangeSet()
        model = self.model if self.model.handles(command) else self.kinesis
        reply = model.apply(command, Meta(self.index, self.ts), changes)
        self.tables.apply(changes)
        return reply

    def expire_reference(self) -> None:
        self.sessions = {m: t for m, t in self.sessions.items() if t > self.ts}

    @initialize(shards=st.integers(1, 4))
    def create(self, shards: int) -> None:
        self.apply(CreateStream(ACCOUNT, STREAM, "us-east-1", shards, "PROVISIONED", (), b"k" * 32))
        self.join("m1")

    def group(self) -> Any:
        return self.model.groups[(ACCOUNT, STREAM, GROUP)]

    def stream(self) -> Any:
        return self.kinesis.streams[(ACCOUNT, STREAM)]

    def reference_assignable(self) -> set[int]:
        shards = self.stream().shards
        return {i for i, s in shards.items()
                if i not in self.done and all(p in self.done or p not in shards for p in s.parents)}

    # -- rules --------------------------------------------------------------------------------------------------

    @rule(member=st.sampled_from(MEMBERS))
    def join(self, member: str) -> None:
        reply = self.apply(JoinGroup(ACCOUNT, STREAM, GROUP, member, TIMEOUT))
        assert isinstance(reply, Assignment)
        self.expire_reference()
        self.sessions[member] = self.ts + TIMEOUT

    @rule(member=st.sampled_from(MEMBERS))
    def heartbeat(self, member: str) -> None:
        reply = self.apply(GroupHeartbeat(ACCOUNT, STREAM, GROUP, member))
        assert isinstance(reply, Assignment)
        assert {s.shard_id for s in reply.shards} == {shard_id(i) for i in self.group().shards_of(member)}
        self.expire_reference()
        self.sessions[member] = self.ts + TIMEOUT

    @rule(member=st.sampled_from(MEMBERS))
    def leave(self, member: str) -> None:
        assert self.apply(LeaveGroup(ACCOUNT, STREAM, GROUP, member)) is None
        self.expire_reference()
        self.sessions.pop(member, None)

    @rule(ms=st.integers(1, 2 * TIMEOUT))
    def wait(self, ms: int) -> None:
        self.ts += ms

    @rule()
    def sweep(self) -> None:
        self.apply(ExpireMembers())
        self.expire_reference()

    @rule(key=st.integers(0, 1000))
    def put(self, key: int) -> None:
        reply = self.apply(PutRecords(ACCOUNT, STREAM, (PutEntry(str(key), key * (2 ** 118), b"x"),)))
        assert isinstance(reply, tuple)
        _, ((index, counter),) = reply
        shard = self.stream().shards[index]
        self.last_seq[index] = shard.seq(counter, reply[0])

    @rule(data=st.data())
    def split(self, data: st.DataObject) -> None:
        shard = data.draw(st.sampled_from(sorted(self.stream().open_shards, key=lambda s: s.index)))
        if shard.end_hash - shard.start_hash > 4:
            self.apply(SplitShard(ACCOUNT, STREAM, shard.id, (shard.start_hash + shard.end_hash) // 2))

    @rule()
    def merge(self) -> None:
        shards = self.stream().open_shards
        if len(shards) >= 2:
            self.apply(MergeShards(ACCOUNT, STREAM, shards[0].id, shards[1].id))

    @precondition(lambda self: bool(self.model.groups))
    @rule(member=st.sampled_from(("", *MEMBERS)), data=st.data())
    def checkpoint(self, member: str, data: st.DataObject) -> None:
        index = data.draw(st.sampled_from(sorted(self.stream().shards)))
        shard = self.stream().shards[index]
        seq = SHARD_END if not shard.is_open else self.last_seq.get(index)
        if seq is None:
            return
        before = self.group().checkpoints.get(index)
        owned_before = self.group().owners.get(index) == member
        self.expire_reference()
        live = member in self.sessions
        reply = self.apply(Checkpoint(ACCOUNT, STREAM, GROUP, member, shard.id, seq))
        if member and not live:
            assert isinstance(reply, ShardNotOwnedException)  # its session ended: whatever it held is gone
        elif member and owned_before:
            assert isinstance(reply, Assignment), reply  # sticky: a live owner keeps its shard
        if isinstance(reply, ShardNotOwnedException):
            assert member and self.group().owners.get(index) != member
            assert self.group().checkpoints.get(index) == before
            return
        assert isinstance(reply, Assignment), reply
        assert self.group().checkpoints[index] == seq
        if seq == SHARD_END:
            self.done.add(index)
        if member:
            self.sessions[member] = self.ts + TIMEOUT

    # -- invariants ---------------------------------------------------------------------------------------------

    @invariant()
    def members_are_the_live_sessions(self) -> None:
        if self.model.groups:
            assert self.group().members == self.sessions

    @invariant()
    def every_assignable_shard_has_exactly_one_live_owner_and_counts_are_balanced(self) -> None:
        if not self.model.groups:
            return
        group = self.group()
        assignable = self.reference_assignable()
        assert set(self.model.assignable(group, self.stream())) == assignable
        if group.members:
            assert set(group.owners) == assignable
        else:
            assert group.owners == {}
        assert set(group.owners.values()) <= set(group.members)
        counts = [len(group.shards_of(m)) for m in group.members]
        if counts:
            assert max(counts) - min(counts) <= 1

    @invariant()
    def restore_rebuilds_the_same_groups(self) -> None:
        restored = StreamGroupsModel(self.kinesis)
        restored.restore(self.tables)
        assert restored.groups == self.model.groups


GroupMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
TestStreamGroups = GroupMachine.TestCase
