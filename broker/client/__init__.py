"""The Python client of RaftMQ's native gRPC API: ``AsyncClient`` for asyncio code, ``Client`` for threads.

    async with AsyncClient(["127.0.0.1:7001", "127.0.0.1:7002"]) as client:
        await client.create_queue("jobs")
        async with client.producer("jobs") as producer:
            await producer.send("hello")
        async for message in client.consumer("jobs"):
            await message.ack()
"""

from broker.client.aio import AsyncClient
from broker.client.consumer import ConsumedMessage, Consumer
from broker.client.errors import RaftMQError
from broker.client.groups import AsyncGroups, GroupConsumer, GroupRecord, stream_group
from broker.client.producer import Producer
from broker.client.sync import Client

__all__ = ["AsyncClient", "AsyncGroups", "Client", "ConsumedMessage", "Consumer", "GroupConsumer", "GroupRecord",
           "Producer", "RaftMQError", "stream_group"]
