"""The v1 Topics gRPC API against a real ``raftmq serve``: every RPC, fan-out to a queue read back over gRPC."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest

from broker.client import AsyncClient, RaftMQError
from proto.broker.v1 import queues_pb2, topics_pb2
from tests.integration.conftest import unique_name
from tests.integration.server import RaftMQServer


@pytest.fixture
async def client(server: RaftMQServer) -> AsyncIterator[AsyncClient]:
    assert server.ready is not None
    async with AsyncClient(f"127.0.0.1:{server.ready.grpc_port}", retries=2) as c:
        yield c


@pytest.fixture
def name(request: pytest.FixtureRequest) -> str:
    return unique_name(request.node.name)


async def _drain(client: AsyncClient, queue: str, count: int) -> list[queues_pb2.Message]:
    messages: list[queues_pb2.Message] = []
    while len(messages) < count:
        batch = await client.receive(queue, 1000, wait_seconds=5)
        assert batch, f"only {len(messages)} of {count} deliveries arrived"
        messages += batch
    return messages


async def test_topic_fans_out_a_large_batch_to_a_queue(client: AsyncClient, name: str) -> None:
    arn = await client.topics.create(name)
    assert arn.endswith(f":{name}") and name in await client.topics.list_topics()
    await client.create_queue(name)
    queue_arn = (await client.get_queue_attributes(name, ["QueueArn"]))["QueueArn"]
    subscription = await client.topics.subscribe(name, "sqs", queue_arn, {"RawMessageDelivery": "true"})
    assert [(s.arn, s.protocol, s.endpoint) for s in await client.topics.list_subscriptions(name)] == [
        (subscription, "sqs", queue_arn)]
    results = await client.topics.publish(name, [f"n{i}" for i in range(35)])
    assert all(r.message_id and not r.HasField("error") for r in results)
    delivered = await _drain(client, name, 35)
    assert sorted(m.body for m in delivered) == sorted(f"n{i}" for i in range(35))
    await client.topics.unsubscribe(subscription)
    assert await client.topics.list_subscriptions(name) == []
    await client.topics.delete(name)
    assert name not in await client.topics.list_topics()


async def test_fifo_topic_keeps_order_and_invalid_entries_fail_alone(client: AsyncClient, name: str) -> None:
    fifo = name[:60] + ".fifo"
    await client.topics.create(fifo, {"FifoTopic": "true", "ContentBasedDeduplication": "true"})
    await client.create_queue(fifo, {"FifoQueue": "true"})
    queue_arn = (await client.get_queue_attributes(fifo, ["QueueArn"]))["QueueArn"]
    await client.topics.subscribe(fifo, "sqs", queue_arn, {"RawMessageDelivery": "true"})
    entries = [topics_pb2.PublishEntry(message=f"f{i}", group_id="g") for i in range(25)]
    results = await client.topics.publish(fifo, [*entries, topics_pb2.PublishEntry(message="no-group")])
    assert results[-1].error.code and results[-1].error.sender_fault
    sequence = [int(r.sequence_number) for r in results[:-1]]
    assert sequence == sorted(sequence)
    delivered = await _drain(client, fifo, 25)
    assert [m.body for m in delivered] == [f"f{i}" for i in range(25)]


async def test_missing_topic_is_not_found(client: AsyncClient, name: str) -> None:
    with pytest.raises(RaftMQError) as caught:
        await client.topics.publish(name, ["x"])
    assert (caught.value.code, caught.value.status) == ("NotFoundException", grpc.StatusCode.NOT_FOUND)
