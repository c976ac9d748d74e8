"""The v1 Streams gRPC API against a real ``raftmq serve``: every RPC, through the Python client library."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import grpc
import pytest

from broker.client import AsyncClient, RaftMQError
from broker.client.streams import position
from tests.integration.conftest import make_client, unique_name
from tests.integration.server import RaftMQServer


@pytest.fixture
async def client(server: RaftMQServer) -> AsyncIterator[AsyncClient]:
    assert server.ready is not None
    async with AsyncClient(f"127.0.0.1:{server.ready.grpc_port}", retries=2) as c:
        yield c


@pytest.fixture
def name(request: pytest.FixtureRequest) -> str:
    return unique_name(request.node.name)


async def _active(client: AsyncClient, name: str) -> None:
    while (await client.streams.describe(name)).status != "ACTIVE":
        await asyncio.sleep(0.05)  # stream creation finishes in a later maintenance command; no event to await


async def test_stream_lifecycle(client: AsyncClient, name: str) -> None:
    await client.streams.create(name, shard_count=2)
    await _active(client, name)
    description = await client.streams.describe(name)
    assert [s.shard_id for s in description.shards] == ["shardId-000000000000", "shardId-000000000001"]
    assert description.arn.endswith(f":stream/{name}") and description.retention_hours == 24
    assert name in await client.streams.list_streams()
    await client.streams.delete(name)
    with pytest.raises(RaftMQError) as caught:
        while True:
            await client.streams.describe(name)  # DELETING until the maintenance step removes it
            await asyncio.sleep(0.05)
    assert (caught.value.code, caught.value.status) == ("ResourceNotFoundException", grpc.StatusCode.NOT_FOUND)


async def test_put_beyond_500_and_read_positions(client: AsyncClient, name: str) -> None:
    await client.streams.create(name, shard_count=1)
    await _active(client, name)
    results = await client.streams.put(name, [(f"r{i}".encode(), f"k{i}") for i in range(1200)])
    assert all(not r.HasField("error") and r.shard_id == "shardId-000000000000" for r in results)
    sequence = [int(r.sequence_number) for r in results]
    assert sequence == sorted(sequence) and len(set(sequence)) == 1200
    shard = "shardId-000000000000"
    first = await client.streams.read(name, shard, position("TRIM_HORIZON"), limit=700)
    rest = await client.streams.read(name, shard, next=first.next)
    assert [r.data for r in [*first.records, *rest.records]] == [f"r{i}".encode() for i in range(1200)]
    at = await client.streams.read(name, shard, position("AT_SEQUENCE_NUMBER", results[10].sequence_number), limit=1)
    after = await client.streams.read(name, shard, position("AFTER_SEQUENCE_NUMBER", results[10].sequence_number),
                                      limit=1)
    assert (at.records[0].data, after.records[0].data) == (b"r10", b"r11")
    latest = await client.streams.read(name, shard, position("LATEST"))
    assert list(latest.records) == []
    stamp = at.records[0].arrival_timestamp_ms
    by_time = await client.streams.read(name, shard, position("AT_TIMESTAMP", timestamp_ms=stamp), limit=1)
    assert by_time.records[0].arrival_timestamp_ms >= stamp
    with pytest.raises(RaftMQError) as caught:
        await client.streams.read(name, shard, position("AT_SEQUENCE_NUMBER", "not-a-number"))
    assert caught.value.code == "InvalidArgumentException"


async def test_tail_pushes_records_as_they_commit(client: AsyncClient, name: str) -> None:
    await client.streams.create(name, shard_count=1)
    await _active(client, name)
    await client.streams.put(name, [(b"old", "k")])
    seen: list[bytes] = []
    caught_up, got_all = asyncio.Event(), asyncio.Event()

    async def tail() -> None:
        async for batch in client.streams.tail(name, "shardId-000000000000", position("TRIM_HORIZON")):
            seen.extend(r.data for r in batch.records)
            caught_up.set()  # the tail has read what was there: what follows must be pushed
            if len(seen) >= 4:
                got_all.set()
                return

    task = asyncio.create_task(tail())
    await asyncio.wait_for(caught_up.wait(), 10)
    started = time.monotonic()
    for data in (b"a", b"b", b"c"):
        await client.streams.put(name, [(data, "k")])
    await asyncio.wait_for(got_all.wait(), 10)
    await task
    assert seen == [b"old", b"a", b"b", b"c"]
    assert time.monotonic() - started < 0.9  # pushed on commit: the idle re-read alone (1 s) would be slower


async def test_kinesis_and_grpc_share_one_model(client: AsyncClient, name: str, server: RaftMQServer) -> None:
    kinesis = make_client("kinesis", server.endpoint)
    await asyncio.to_thread(kinesis.create_stream, StreamName=name, ShardCount=1)
    await _active(client, name)
    await client.streams.put(name, [(b"grpc", "k")])
    shard = "shardId-000000000000"
    iterator = (await asyncio.to_thread(kinesis.get_shard_iterator, StreamName=name, ShardId=shard,
                                        ShardIteratorType="TRIM_HORIZON"))["ShardIterator"]
    records = (await asyncio.to_thread(kinesis.get_records, ShardIterator=iterator))["Records"]
    assert [r["Data"] for r in records] == [b"grpc"]


async def test_missing_stream_errors(client: AsyncClient, name: str) -> None:
    for call in (client.streams.put(name, [(b"x", "k")]), client.streams.describe(name),
                 client.streams.read(name, "shardId-000000000000")):
        with pytest.raises(RaftMQError) as caught:
            await call
        assert caught.value.code == "ResourceNotFoundException"
