"""Consumer groups through the broker's state machine and StreamGroupService over an in-memory replicator:
command encoding, LATEST groups, the leader's expiry sweep, deleted and re-created streams, sticky balancing."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from broker.kinesis.group_service import StreamGroupService
from broker.model.commands import Command, decode, encode
from broker.model.group_commands import (
    GROUP_COMMANDS,
    LATEST,
    Checkpoint,
    DeleteGroup,
    ExpireMembers,
    GroupHeartbeat,
    JoinGroup,
    LeaveGroup,
)
from broker.model.kinesis_commands import CreateStream, DeleteStream, PutEntry, PutRecords
from broker.model.kinesis_errors import InvalidArgumentException, ResourceNotFoundException
from broker.model.kinesis_keys import parse_sequence_number
from broker.model.kinesis_model import KinesisModel
from broker.model.sqs_model import SqsModel
from broker.model.stream_groups import GROUPS, StreamGroupsModel, balance
from broker.notify import Notifier
from broker.replication import propose
from broker.state_machine import BrokerStateMachine
from tests.unit.fake_replicator import FakeReplicator

ACCOUNT = "000000000000"


class Env:
    def __init__(self) -> None:
        self.kinesis = KinesisModel()
        self.model = StreamGroupsModel(self.kinesis)
        self.rep = FakeReplicator(BrokerStateMachine(SqsModel(), Notifier(), self.kinesis, self.model))
        self.service = StreamGroupService(self.model, self.rep, sweep_interval_s=0.05)

    async def run(self, command: Command) -> Any:
        return await propose(self.rep, command)

    async def stream(self, name: str = "s", shards: int = 2) -> None:
        await self.run(CreateStream(ACCOUNT, name, "us-east-1", shards, "PROVISIONED", (), b"k" * 32))

    async def put(self, name: str, hash_key: int) -> str:
        reply: tuple[int, list[tuple[int, int]]] = await self.run(
            PutRecords(ACCOUNT, name, (PutEntry("k", hash_key, b"x"),)))
        arrival, ((index, counter),) = reply
        seq: str = self.kinesis.streams[(ACCOUNT, name)].shards[index].seq(counter, arrival)
        return seq


def counter_of(sequence_number: str) -> int:
    parsed = parse_sequence_number(sequence_number)
    assert parsed is not None
    return parsed[2]


@pytest.fixture
def env() -> Env:
    return Env()


@pytest.mark.parametrize("command", [
    JoinGroup(ACCOUNT, "s", "g", "m", 1234, LATEST), GroupHeartbeat(ACCOUNT, "s", "g", "m"),
    Checkpoint(ACCOUNT, "s", "g", "m", "shardId-000000000001", "SHARD_END"), LeaveGroup(ACCOUNT, "s", "g", "m"),
    DeleteGroup(ACCOUNT, "s", "g"), ExpireMembers()])
def test_commands_round_trip(command: Command) -> None:
    assert decode(encode(command), remembered=False) == command
    assert {cls.TYPE_ID for cls in GROUP_COMMANDS} <= set(range(300, 350))


async def test_latest_group_starts_after_what_was_there_at_creation(env: Env) -> None:
    await env.stream(shards=1)
    old = await env.put("s", 1)
    assignment = await env.service.join(ACCOUNT, "s", "g", "m1", start=LATEST)
    (shard,) = assignment.shards
    # Read after the old record's counter: fixed once for every member that will own the shard.
    assert counter_of(shard.checkpoint) == counter_of(old) == 1
    await env.put("s", 1)
    later = await env.service.join(ACCOUNT, "s", "g", "m2", start="TRIM_HORIZON")  # the group keeps LATEST
    assert later.shards == () and (await env.service.describe(ACCOUNT, "s", "g")).start == LATEST


async def test_the_sweep_expires_a_silent_member_without_any_other_call(env: Env) -> None:
    await env.stream(shards=2)
    await env.service.join(ACCOUNT, "s", "g", "quiet", session_timeout_ms=200)
    swept = asyncio.Event()
    env.rep.on_apply = lambda command: swept.set() if isinstance(command, ExpireMembers) else None
    stop = asyncio.Event()
    task = asyncio.get_running_loop().create_task(env.service.run_maintenance(stop))
    try:
        await asyncio.wait_for(swept.wait(), 5)  # the loop sleeps until the session's end, then proposes
    finally:
        stop.set()
        await task
    view = await env.service.describe(ACCOUNT, "s", "g")
    assert view.members == () and {s.owner for s in view.shards} == {""} and view.generation == 2
    assert env.model.next_due() is None


async def test_a_deleted_stream_takes_its_groups_along(env: Env) -> None:
    await env.stream()
    await env.service.join(ACCOUNT, "s", "g", "m1")
    await env.run(DeleteStream(ACCOUNT, "s"))
    assert env.model.next_due() == 0
    with pytest.raises(ResourceNotFoundException):
        await env.service.describe(ACCOUNT, "s", "g")
    assert await env.run(ExpireMembers()) == 1
    assert list(env.rep.tables.scan(GROUPS)) == [] and env.model.groups == {}
    await env.stream()  # the same name again: a new stream, no groups
    assert await env.service.list_groups(ACCOUNT, "s") == []
    fresh = await env.service.join(ACCOUNT, "s", "g", "m1")
    assert fresh.generation == 1 and all(not s.checkpoint for s in fresh.shards)


async def test_a_stale_group_of_a_recreated_stream_is_replaced_on_join(env: Env) -> None:
    await env.stream(shards=1)
    seq = await env.put("s", 1)
    await env.service.join(ACCOUNT, "s", "g", "m1")
    await env.service.checkpoint(ACCOUNT, "s", "g", "m1", "shardId-000000000000", seq)
    await env.run(DeleteStream(ACCOUNT, "s"))
    await env.stream(shards=1)
    again = await env.service.join(ACCOUNT, "s", "g", "m1")
    assert [s.checkpoint for s in again.shards] == [""]


async def test_service_rejects_bad_input(env: Env) -> None:
    await env.stream()
    for call in (env.service.join(ACCOUNT, "s", "g", "m", session_timeout_ms=100),
                 env.service.join(ACCOUNT, "s", "g", "m", session_timeout_ms=600_001),
                 env.service.join(ACCOUNT, "s", "g", "m", start="AT_TIMESTAMP"),
                 env.service.join(ACCOUNT, "s", "g" * 129, "m"),
                 env.service.join(ACCOUNT, "s", "g", "has space"),
                 env.service.checkpoint(ACCOUNT, "s", "g", "m", "", "1")):
        with pytest.raises(InvalidArgumentException):
            await call
    await env.service.join(ACCOUNT, "s", "g", "m")
    with pytest.raises(InvalidArgumentException):
        await env.service.checkpoint(ACCOUNT, "s", "g", "m", "shardId-000000000000", "9" * 56)
    with pytest.raises(ResourceNotFoundException):
        await env.service.checkpoint(ACCOUNT, "s", "g", "m", "shardId-000000000009", "SHARD_END")


def test_balance_moves_only_what_it_must() -> None:
    shards = list(range(6))
    two = balance({}, shards, ["a", "b"])
    assert sorted(two.values()).count("a") == 3
    three = balance(two, shards, ["a", "b", "c"])
    moved = {s for s in shards if three[s] != two[s]}
    assert len(moved) == 2 and {three[s] for s in moved} == {"c"}
    assert balance(three, shards, ["a", "b", "c"]) == three
    back = balance(three, shards, ["a", "b"])
    assert {s for s in shards if back[s] != three[s]} == {s for s in shards if three[s] == "c"}
    assert balance(back, [], ["a"]) == {} and balance(back, shards, []) == {}
