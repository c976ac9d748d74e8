"""The v1 StreamGroups gRPC API against a real ``raftmq serve``: every RPC, two members sharing a stream (one of
them killed: its shards move after its session expires and are resumed after its last checkpoint), resharding, a
deleted stream, checkpoints that survive a restart, and a member that keeps its group across a leader failover."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import grpc
import pytest
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from broker.client import AsyncClient, GroupConsumer, GroupRecord, RaftMQError, stream_group
from broker.client.groups import AsyncGroups
from broker.client.streams import position
from tests.cluster_e2e.cluster import Cluster
from tests.integration.conftest import make_client, unique_name
from tests.integration.server import RaftMQServer

SESSION_MS = 1000


@pytest.fixture
async def client(server: RaftMQServer) -> AsyncIterator[AsyncClient]:
    assert server.ready is not None
    async with AsyncClient(f"127.0.0.1:{server.ready.grpc_port}", retries=2) as c:
        yield c


@pytest.fixture
def name(request: pytest.FixtureRequest) -> str:
    return unique_name(request.node.name)


def test_the_threaded_client_has_groups_too(server: RaftMQServer, name: str) -> None:
    from broker.client import Client

    assert server.ready is not None
    with Client(f"127.0.0.1:{server.ready.grpc_port}") as client:
        client.streams.create(name, shard_count=1)
        deadline = time.monotonic() + 15
        while client.streams.describe(name).status != "ACTIVE":
            assert time.monotonic() < deadline
            time.sleep(0.05)  # stream activation has no event to wait on from a client
        assert len(client.groups.join(name, "g", "m1").shards) == 1
        assert client.groups.list_groups(name) == ["g"]


async def until(condition: Callable[[], Awaitable[bool]], timeout: float = 15.0) -> None:
    """Poll server-side state (a stream's status, a group's assignment) for which there is no event to await."""
    deadline = time.monotonic() + timeout
    while not await condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


async def _stream(client: AsyncClient, name: str, shards: int) -> None:
    await client.streams.create(name, shard_count=shards)

    async def active() -> bool:
        return (await client.streams.describe(name)).status == "ACTIVE"

    await until(active)


async def _put(client: AsyncClient, name: str, tag: str, count: int) -> list[tuple[str, str]]:
    """Put ``count`` records spread over the shards; returns (shard id, sequence number) of each."""
    results = await client.streams.put(name, [(f"{tag}-{i}".encode(), f"{tag}-key-{i}") for i in range(count)])
    assert all(not r.HasField("error") for r in results)
    return [(r.shard_id, r.sequence_number) for r in results]


async def test_every_rpc(client: AsyncClient, name: str) -> None:
    groups = client.groups
    await _stream(client, name, 2)
    first = await groups.join(name, "g", "m1", session_timeout_ms=5000)
    assert [s.shard_id for s in first.shards] == ["shardId-000000000000", "shardId-000000000001"]
    assert first.session_timeout_ms == 5000 and first.generation == 1
    assert all(s.start.type == position("TRIM_HORIZON").type and not s.checkpoint for s in first.shards)
    second = await groups.join(name, "g", "m2")
    assert len(second.shards) == 1 and second.generation == 2 and second.session_timeout_ms == 5000
    mine = await groups.heartbeat(name, "g", "m1")
    assert len(mine.shards) == 1 and mine.shards[0].shard_id != second.shards[0].shard_id
    assert await groups.list_groups(name) == ["g"]

    (shard, seq), = await _put(client, name, "r", 1)
    owner = "m1" if mine.shards[0].shard_id == shard else "m2"
    other = "m2" if owner == "m1" else "m1"
    with pytest.raises(RaftMQError) as caught:
        await groups.checkpoint(name, "g", shard, seq, member=other)
    assert (caught.value.code, caught.value.status) == ("ShardNotOwnedException",
                                                        grpc.StatusCode.FAILED_PRECONDITION)
    after = await groups.checkpoint(name, "g", shard, seq, member=owner)
    assert [(s.shard_id, s.checkpoint, s.start.type, s.start.sequence_number) for s in after.shards] == [
        (shard, seq, position("AFTER_SEQUENCE_NUMBER").type, seq)]
    description = await groups.describe(name, "g")
    assert (description.stream, description.group, description.generation) == (name, "g", 2)
    assert [m.member for m in description.members] == ["m1", "m2"]
    assert all(m.session_expires_ms > time.time() * 1000 for m in description.members)
    assert {(s.shard_id, s.sequence_number, s.owner) for s in description.shards} == {
        (shard, seq, owner), (mine.shards[0].shard_id if owner == "m2" else second.shards[0].shard_id, "", other)}

    await groups.leave(name, "g", "m2")
    assert len((await groups.heartbeat(name, "g", "m1")).shards) == 2
    await groups.checkpoint(name, "g", shard, seq)  # administrative: no owner check
    await groups.delete(name, "g")
    with pytest.raises(RaftMQError) as caught:
        await groups.describe(name, "g")
    assert (caught.value.code, caught.value.status) == ("ResourceNotFoundException", grpc.StatusCode.NOT_FOUND)
    assert await groups.list_groups(name) == []


def test_reflection_lists_the_service(server: RaftMQServer) -> None:
    assert server.ready is not None
    with grpc.insecure_channel(f"127.0.0.1:{server.ready.grpc_port}") as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        (answer,) = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(
            file_containing_symbol="raftmq.broker.v1.StreamGroups")]))
        assert answer.file_descriptor_response.file_descriptor_proto
        (answer,) = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
        assert "raftmq.broker.v1.StreamGroups" in {s.name for s in answer.list_services_response.service}


async def test_bad_requests(client: AsyncClient, name: str) -> None:
    groups = AsyncGroups(client)
    with pytest.raises(RaftMQError) as caught:
        await groups.join(name, "g", "m1")
    assert caught.value.code == "ResourceNotFoundException"  # no such stream
    await _stream(client, name, 1)
    bad_calls: list[Callable[[], Awaitable[object]]] = [
        lambda: groups.join(name, "g", "m1", session_timeout_ms=10),
        lambda: groups.join(name, "bad group!", "m1"),
        lambda: groups.join(name, "g", ""),
        lambda: groups.checkpoint(name, "g", "shardId-000000000000", "not-a-sequence-number")]
    for bad in bad_calls:
        with pytest.raises(RaftMQError) as caught:
            await bad()
        assert caught.value.code in ("InvalidArgumentException", "ResourceNotFoundException")
        assert caught.value.status in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND)
    await groups.join(name, "g", "m1")
    with pytest.raises(RaftMQError) as caught:
        await groups.checkpoint(name, "g", "shardId-000000000000", "SHARD_END", member="m1")  # the shard is open
    assert (caught.value.code, caught.value.status) == ("InvalidArgumentException",
                                                        grpc.StatusCode.INVALID_ARGUMENT)


class Member:
    """A consumer task that records every record it is handed and checkpoints while ``checkpointing``;
    ``changed`` (shared by the members of one test) is set after each record."""

    def __init__(self, consumer: GroupConsumer, changed: asyncio.Event | None = None) -> None:
        self.consumer = consumer
        self.received: list[GroupRecord] = []
        self.checkpointed: list[GroupRecord] = []
        self.checkpointing = True
        self.changed = changed or asyncio.Event()
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        async for record in self.consumer:
            self.received.append(record)
            if self.checkpointing:
                await self.consumer.checkpoint(record)
                self.checkpointed.append(record)
            self.changed.set()

    async def wait_for(self, condition: Callable[[], bool], timeout: float = 15.0) -> None:
        async with asyncio.timeout(timeout):
            while not condition():
                self.changed.clear()
                await self.changed.wait()

    async def kill(self) -> None:
        """As if the process died: no leave, no more heartbeats."""
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        await self.consumer.close(leave=False)


def _seqs(records: list[GroupRecord]) -> set[str]:
    return {r.sequence_number for r in records}


async def test_two_members_share_a_stream_and_one_dies(client: AsyncClient, name: str) -> None:
    groups = AsyncGroups(client)
    await _stream(client, name, 4)
    progress = asyncio.Event()
    a = Member(stream_group(client, name, "workers", member="a", session_timeout_ms=SESSION_MS), progress)
    await a.consumer.start()
    b = Member(stream_group(client, name, "workers", member="b", session_timeout_ms=SESSION_MS), progress)
    await b.consumer.start()

    async def balanced() -> bool:
        return len(a.consumer.shards) == 2 and len(b.consumer.shards) == 2  # a learns of b by its heartbeat

    await until(balanced)
    assert set(a.consumer.shards).isdisjoint(b.consumer.shards)

    batch1 = await _put(client, name, "one", 100)
    await a.wait_for(lambda: _seqs(a.checkpointed) | _seqs(b.checkpointed) >= {s for _, s in batch1})
    assert not _seqs(a.received) & _seqs(b.received)  # while both live, no record goes to both
    a.checkpointing = False  # a reads on but acknowledges nothing more
    a_shards = set(a.consumer.shards)
    batch2 = await _put(client, name, "two", 100)
    await a.wait_for(lambda: _seqs(a.received) | _seqs(b.received) >= {s for _, s in batch2})
    unacked = [s for shard, s in batch2 if shard in a_shards]
    unacked_by_shard = {shard: [s for sh, s in batch2 if sh == shard] for shard in a_shards}
    assert unacked and set(unacked) <= _seqs(a.received)
    before = len(b.received)
    await a.kill()

    async def taken_over() -> bool:
        return len(b.consumer.shards) == 4

    await until(taken_over)
    # b resumes a's shards right after a's last checkpoint: exactly the records a read but did not acknowledge.
    await b.wait_for(lambda: set(unacked) <= _seqs(b.received[before:]))
    for shard, expected in unacked_by_shard.items():
        assert [r.sequence_number for r in b.received[before:] if r.shard_id == shard] == expected
    batch3 = await _put(client, name, "three", 40)
    await b.wait_for(lambda: _seqs(b.checkpointed) >= {s for _, s in batch3})
    description = await groups.describe(name, "workers")
    assert [m.member for m in description.members] == ["b"]
    last = {}
    for shard, seq in [*batch1, *batch2, *batch3]:
        last[shard] = seq
    assert {s.shard_id: s.sequence_number for s in description.shards} == last
    b.task.cancel()
    await asyncio.gather(b.task, return_exceptions=True)
    await b.consumer.close()
    assert list((await groups.describe(name, "workers")).members) == []


async def test_children_follow_their_parent_after_a_split(server: RaftMQServer, client: AsyncClient,
                                                         name: str) -> None:
    await _stream(client, name, 1)
    before = await _put(client, name, "old", 30)
    kinesis = make_client("kinesis", server.endpoint)
    await asyncio.to_thread(kinesis.split_shard, StreamName=name, ShardToSplit="shardId-000000000000",
                            NewStartingHashKey=str(1 << 127))

    async def active() -> bool:
        return (await client.streams.describe(name)).status == "ACTIVE"

    await until(active)
    after = await _put(client, name, "new", 30)
    assert {shard for shard, _ in after} == {"shardId-000000000001", "shardId-000000000002"}
    member = Member(stream_group(client, name, "g", member="solo", session_timeout_ms=5000))
    async with member.consumer:
        await member.wait_for(lambda: _seqs(member.checkpointed) >= {s for _, s in before + after})
        order = [r.shard_id for r in member.received]
        assert order[:30] == ["shardId-000000000000"] * 30  # the parent is read (and finished) first
        description = await AsyncGroups(client).describe(name, "g")
        parent = next(s for s in description.shards if s.shard_id == "shardId-000000000000")
        assert (parent.sequence_number, parent.owner) == ("SHARD_END", "")
        member.task.cancel()
        await asyncio.gather(member.task, return_exceptions=True)


async def test_groups_of_a_deleted_stream_are_gone(client: AsyncClient, name: str) -> None:
    groups = AsyncGroups(client)
    await _stream(client, name, 1)
    await groups.join(name, "g", "m1")
    await client.streams.delete(name)
    calls: list[Callable[[], Awaitable[object]]] = [lambda: groups.describe(name, "g"),
                                                    lambda: groups.heartbeat(name, "g", "m1")]
    for call in calls:
        with pytest.raises(RaftMQError) as caught:
            await call()
        assert caught.value.code == "ResourceNotFoundException"
    await _stream(client, name, 1)  # a new stream of the same name starts without the old groups
    assert await groups.list_groups(name) == []


async def test_checkpoints_survive_a_restart(tmp_path: Path) -> None:
    server = RaftMQServer(tmp_path / "data")
    ready = server.start()
    try:
        async with AsyncClient(f"127.0.0.1:{ready.grpc_port}", retries=2) as client:
            await _stream(client, "s", 1)
            placed = await _put(client, "s", "r", 3)
            groups = AsyncGroups(client)
            await groups.join("s", "g", "m1", session_timeout_ms=60_000)
            await groups.checkpoint("s", "g", "shardId-000000000000", placed[1][1], member="m1")
        ready = server.restart()
        async with AsyncClient(f"127.0.0.1:{ready.grpc_port}", retries=8) as client:
            groups = AsyncGroups(client)
            description = await groups.describe("s", "g")
            assert [(m.member, list(m.shard_ids)) for m in description.members] == [("m1", ["shardId-000000000000"])]
            assert [s.sequence_number for s in description.shards] == [placed[1][1]]
            assignment = await groups.join("s", "g", "m1")
            start = assignment.shards[0].start
            rest = await client.streams.read("s", "shardId-000000000000", start)
            assert [r.sequence_number for r in rest.records] == [placed[2][1]]
        server.stop()
    finally:
        server.close()


async def test_a_member_keeps_its_group_across_a_leader_failover(tmp_path: Path) -> None:
    """3 processes: the group's state is replicated, the member's calls move to a survivor when the leader is
    killed, and a member that never heartbeats still loses its shards (expiry uses replicated entry time)."""
    cluster = Cluster(tmp_path, 3)
    try:
        await asyncio.to_thread(cluster.start)
        leader = await asyncio.to_thread(cluster.leader)
        order = [leader, *(n for n in cluster.ids if n != leader)]
        async with AsyncClient([cluster.nodes[n].admin_address for n in order], retries=30, backoff_s=0.05,
                               max_backoff_s=0.5, timeout_s=10) as client:
            await _stream(client, "s", 2)
            await AsyncGroups(client).join("s", "g", "ghost", session_timeout_ms=2000)  # never heartbeats
            member = Member(stream_group(client, "s", "g", member="a", session_timeout_ms=2000))
            await member.consumer.start()
            first = await _put(client, "s", "one", 50)
            await member.wait_for(lambda: _seqs(member.checkpointed) >= {s for _, s in first}, timeout=30)
            await asyncio.to_thread(cluster.kill9, leader)
            second = await _put(client, "s", "two", 50)  # through a survivor once a new leader is elected
            await member.wait_for(lambda: _seqs(member.checkpointed) >= {s for _, s in second}, timeout=30)

            async def ghost_expired() -> bool:
                return len(member.consumer.shards) == 2

            await until(ghost_expired, timeout=30)
            description = await AsyncGroups(client).describe("s", "g")
            assert [m.member for m in description.members] == ["a"]
            last = {shard: seq for shard, seq in [*first, *second]}
            assert {s.shard_id: s.sequence_number for s in description.shards} == last
            member.task.cancel()
            await asyncio.gather(member.task, return_exceptions=True)
            await member.consumer.close()
    finally:
        cluster.close()
