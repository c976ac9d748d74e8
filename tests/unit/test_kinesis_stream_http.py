"""Streamed HTTP responses (what SubscribeToShard needs): chunked transfer encoding written as the handler's
iterator yields, keep-alive afterwards, the iterator closed when the client goes away; and boto3's
``subscribe_to_shard`` through the SubscribeFront in memory."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from broker.http.server import HttpServer
from broker.http.types import HttpRequest, HttpResponse
from broker.kinesis.config import KinesisConfig
from broker.kinesis.front import SubscribeFront
from broker.model.errors import BrokerError
from tests.unit.test_kinesis_harness import ACCOUNT, Env


async def _read_until(reader: asyncio.StreamReader, marker: bytes) -> bytes:
    return await asyncio.wait_for(reader.readuntil(marker), 5)


async def test_chunks_are_written_as_they_are_produced() -> None:
    release = asyncio.Event()
    closed = asyncio.Event()

    async def chunks() -> AsyncIterator[bytes]:
        try:
            yield b"first"
            await release.wait()
            yield b"second"
        finally:
            closed.set()

    async def handler(request: HttpRequest) -> HttpResponse:
        if request.path == "/stream":
            return HttpResponse(200, b"", [], "application/vnd.amazon.eventstream", stream=chunks())
        return HttpResponse(200, b"plain", [], "text/plain")

    server = HttpServer(handler, "127.0.0.1", 0)
    await server.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"POST /stream HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        head = await _read_until(reader, b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 OK\r\n")
        assert b"Transfer-Encoding: chunked\r\n" in head and b"Content-Length" not in head
        assert b"Content-Type: application/vnd.amazon.eventstream\r\n" in head
        assert await _read_until(reader, b"first\r\n") == b"5\r\nfirst\r\n"  # before the second exists
        release.set()
        assert await _read_until(reader, b"second\r\n") == b"6\r\nsecond\r\n"
        assert await _read_until(reader, b"0\r\n\r\n") == b"0\r\n\r\n"
        await asyncio.wait_for(closed.wait(), 5)
        writer.write(b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n")  # the connection is still usable
        assert (await _read_until(reader, b"plain")).endswith(b"plain")
        writer.close()
    finally:
        await server.stop(1.0)


async def test_stream_closed_when_the_client_goes_away() -> None:
    closed = asyncio.Event()
    tick = asyncio.Event()

    async def chunks() -> AsyncIterator[bytes]:
        try:
            while True:
                yield b"x"
                tick.clear()
                await tick.wait()
        finally:
            closed.set()

    async def handler(request: HttpRequest) -> HttpResponse:
        return HttpResponse(200, b"", [], "application/octet-stream", stream=chunks())

    server = HttpServer(handler, "127.0.0.1", 0)
    await server.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        await _read_until(reader, b"1\r\nx\r\n")
        writer.close()
        await writer.wait_closed()
        for _ in range(100):  # each tick lets the stream notice the lost connection
            tick.set()
            if closed.is_set():
                break
            await asyncio.sleep(0.01)
        assert closed.is_set()
    finally:
        await server.stop(1.0)


async def test_a_failing_stream_cuts_the_connection() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"partial"
        raise RuntimeError("boom")

    async def handler(request: HttpRequest) -> HttpResponse:
        return HttpResponse(200, b"", [], "application/octet-stream", stream=chunks())

    server = HttpServer(handler, "127.0.0.1", 0)
    await server.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        rest = await asyncio.wait_for(reader.read(), 5)  # up to EOF: no last chunk, no 500 after the head
        assert rest.endswith(b"7\r\npartial\r\n") and b"0\r\n\r\n" not in rest and b" 500 " not in rest
        writer.close()
    finally:
        await server.stop(1.0)


@pytest.fixture
def env() -> Iterator[Env]:
    e = Env(KinesisConfig(account_id=ACCOUNT, heartbeat_s=0.01, subscription_ms=100))
    yield e
    e.close()


def test_boto3_subscribe_to_shard(env: Env) -> None:
    env.client.create_stream(StreamName="s", ShardCount=1)
    arn = f"arn:aws:kinesis:us-east-1:{ACCOUNT}:stream/s"
    consumer = env.client.register_stream_consumer(StreamARN=arn, ConsumerName="app")["Consumer"]["ConsumerARN"]
    seqs = [env.client.put_record(StreamName="s", Data=b"%d" % i, PartitionKey="k")["SequenceNumber"]
            for i in range(3)]
    response = env.client.subscribe_to_shard(ConsumerARN=consumer, ShardId="shardId-000000000000",
                                             StartingPosition={"Type": "TRIM_HORIZON"})
    events: list[dict[str, Any]] = [e["SubscribeToShardEvent"] for e in response["EventStream"]]
    assert [r["Data"] for r in events[0]["Records"]] == [b"0", b"1", b"2"]
    assert events[0]["ContinuationSequenceNumber"] == seqs[-1]
    assert all(e["Records"] == [] for e in events[1:])  # heartbeats until the subscription ends


def test_boto3_subscribe_errors(env: Env) -> None:
    env.client.create_stream(StreamName="s", ShardCount=1)
    with pytest.raises(ClientError) as exc:
        env.client.subscribe_to_shard(ConsumerARN=f"arn:aws:kinesis:us-east-1:{ACCOUNT}:stream/s/consumer/x:1",
                                      ShardId="shardId-000000000000", StartingPosition={"Type": "LATEST"})
    assert exc.value.response["Error"]["Code"] == "ResourceNotFoundException"


class _DenyAll:
    """An authenticator that knows the caller but allows nothing, to show the front asks it."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def authenticate(self, request: HttpRequest, service: str) -> Any:
        self.calls.append(f"authenticate {service}")
        return type("Identity", (), {"account_id": ACCOUNT})()

    def authorize(self, identity: Any, service: str, operation: str, params: Any, ctx: Any) -> None:
        self.calls.append(f"authorize {service} {operation} {ctx.account_id}")
        raise BrokerError("User is not authorized to perform: kinesis:SubscribeToShard", code="AccessDeniedException")


def test_subscribe_is_authenticated_and_authorized(env: Env) -> None:
    deny = _DenyAll()
    env.gateway = SubscribeFront(env.gateway, env.service, ACCOUNT, "us-east-1", authenticator=deny)
    with pytest.raises(ClientError) as exc:
        env.client.subscribe_to_shard(ConsumerARN=f"arn:aws:kinesis:us-east-1:{ACCOUNT}:stream/s/consumer/x:1",
                                      ShardId="shardId-000000000000", StartingPosition={"Type": "LATEST"})
    assert exc.value.response["Error"]["Code"] == "AccessDeniedException"
    assert deny.calls == ["authenticate kinesis", f"authorize kinesis SubscribeToShard {ACCOUNT}"]
