"""SubscribeToShard at the service level: the first event at once, records pushed as they commit, heartbeats,
ChildShards at the end of a closed shard, one subscription per consumer and shard, errors mid-stream; and the
event-stream framing checked with botocore's own parser."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.eventstream import EventStreamBuffer

from broker.kinesis import eventstream
from broker.kinesis.config import KinesisConfig
from broker.kinesis.subscriptions import Subscription
from broker.model.errors import BrokerError
from broker.service import RequestContext
from tests.unit.test_kinesis_harness import ACCOUNT, Env

ARN = f"arn:aws:kinesis:us-east-1:{ACCOUNT}:stream/s"
CTX = RequestContext(request_id="r", account_id=ACCOUNT, region="us-east-1", endpoint_url="", protocol="json")


@pytest.fixture
def env() -> Iterator[Env]:
    e = Env(KinesisConfig(account_id=ACCOUNT, heartbeat_s=0.05, subscription_ms=60_000))
    e.client.create_stream(StreamName="s", ShardCount=1)
    yield e
    e.close()


def _consumer(env: Env, name: str = "app") -> str:
    arn: str = env.client.register_stream_consumer(StreamARN=ARN, ConsumerName=name)["Consumer"]["ConsumerARN"]
    return arn


def _subscribe(env: Env, consumer: str, kind: str = "TRIM_HORIZON", **extra: Any) -> Subscription:
    params = {"ConsumerARN": consumer, "ShardId": "shardId-000000000000", "StartingPosition": {"Type": kind, **extra}}
    return env.loop.run_until_complete(env.service.subscribe(params, CTX))


def _next(env: Env, sub: Subscription) -> dict[str, Any]:
    it = aiter(sub)
    return env.loop.run_until_complete(asyncio.wait_for(anext(it), 5))


def test_first_event_then_pushed_records(env: Env) -> None:
    env.client.put_record(StreamName="s", Data=b"old", PartitionKey="k")
    sub = _subscribe(env, _consumer(env))
    try:
        first = _next(env, sub)
        assert [r["Data"] for r in first["Records"]] == [b"old"]
        assert first["ContinuationSequenceNumber"] == first["Records"][0]["SequenceNumber"]
        assert first["MillisBehindLatest"] == 0

        async def put_later() -> None:
            await asyncio.sleep(0)
            await env.service.handle("PutRecord", {"StreamName": "s", "Data": b"new", "PartitionKey": "k"}, CTX)

        async def both() -> dict[str, Any]:
            task = asyncio.ensure_future(put_later())
            event = await asyncio.wait_for(anext(aiter(sub)), 5)
            while not event["Records"]:  # a heartbeat may come first
                event = await asyncio.wait_for(anext(aiter(sub)), 5)
            await task
            return event

        pushed = env.loop.run_until_complete(both())
        assert [r["Data"] for r in pushed["Records"]] == [b"new"]
        heartbeat = _next(env, sub)
        assert heartbeat["Records"] == [] and heartbeat["ContinuationSequenceNumber"] == pushed[
            "ContinuationSequenceNumber"]
    finally:
        env.loop.run_until_complete(sub.aclose())


def test_one_subscription_per_consumer_and_shard(env: Env) -> None:
    consumer = _consumer(env)
    sub = _subscribe(env, consumer)
    with pytest.raises(BrokerError) as exc:
        _subscribe(env, consumer)
    assert exc.value.code == "ResourceInUseException"
    other = _subscribe(env, _consumer(env, "other"))
    env.loop.run_until_complete(other.aclose())
    env.loop.run_until_complete(sub.aclose())  # never iterated: the slot is freed all the same
    env.loop.run_until_complete(_subscribe(env, consumer).aclose())


def test_closed_shard_ends_with_child_shards(env: Env) -> None:
    env.client.put_record(StreamName="s", Data=b"x", PartitionKey="k")
    env.client.split_shard(StreamName="s", ShardToSplit="shardId-000000000000", NewStartingHashKey=str(1 << 100))
    sub = _subscribe(env, _consumer(env))
    try:
        last = _next(env, sub)
        assert [r["Data"] for r in last["Records"]] == [b"x"]
        assert [c["ShardId"] for c in last["ChildShards"]] == ["shardId-000000000001", "shardId-000000000002"]
        assert "ContinuationSequenceNumber" not in last
        with pytest.raises(StopAsyncIteration):
            _next(env, sub)
    finally:
        env.loop.run_until_complete(sub.aclose())


def test_resume_from_continuation(env: Env) -> None:
    seqs = [env.client.put_record(StreamName="s", Data=b"%d" % i, PartitionKey="k")["SequenceNumber"]
            for i in range(3)]
    consumer = _consumer(env)
    sub = _subscribe(env, consumer, "AFTER_SEQUENCE_NUMBER", SequenceNumber=seqs[0])
    try:
        assert [r["Data"] for r in _next(env, sub)["Records"]] == [b"1", b"2"]
    finally:
        env.loop.run_until_complete(sub.aclose())


def test_errors_before_and_during_stream(env: Env) -> None:
    with pytest.raises(BrokerError) as exc:
        _subscribe(env, f"{ARN}/consumer/none:1")
    assert exc.value.code == "ResourceNotFoundException"
    consumer = _consumer(env)
    sub = _subscribe(env, consumer)
    try:
        _next(env, sub)
        env.client.deregister_stream_consumer(ConsumerARN=consumer)
        with pytest.raises(BrokerError) as exc:
            _next(env, sub)
        assert exc.value.code == "ResourceNotFoundException"
    finally:
        env.loop.run_until_complete(sub.aclose())


def test_subscription_survives_a_restore_of_the_model(env: Env) -> None:
    """A snapshot install rebuilds the model's objects; a live subscription follows the new ones."""
    sub = _subscribe(env, _consumer(env))
    try:
        assert _next(env, sub)["Records"] == []
        env.model.restore(env.rep.tables)
        env.client.put_record(StreamName="s", Data=b"after restore", PartitionKey="k")
        event = _next(env, sub)
        while not event["Records"]:
            event = _next(env, sub)
        assert [r["Data"] for r in event["Records"]] == [b"after restore"]
    finally:
        env.loop.run_until_complete(sub.aclose())


def test_subscription_ends_after_its_lifetime() -> None:
    env = Env(KinesisConfig(account_id=ACCOUNT, heartbeat_s=0.01, subscription_ms=50))
    try:
        env.client.create_stream(StreamName="s", ShardCount=1)
        sub = _subscribe(env, _consumer(env))

        async def drain() -> int:
            return len([e async for e in sub])

        assert env.loop.run_until_complete(asyncio.wait_for(drain(), 5)) >= 1
        env.loop.run_until_complete(sub.aclose())
    finally:
        env.close()


def test_event_stream_framing_parses_with_botocore() -> None:
    frames = eventstream.event("initial-response", "application/x-amz-json-1.1", b"{}") + eventstream.exception(
        "ResourceNotFoundException", "application/x-amz-json-1.1", b'{"message":"gone"}')
    buffer = EventStreamBuffer()
    buffer.add_data(frames[:7])
    assert list(buffer) == []
    buffer.add_data(frames[7:])
    first, second = list(buffer)
    assert first.headers == {":message-type": "event", ":event-type": "initial-response",
                             ":content-type": "application/x-amz-json-1.1"}
    assert first.payload == b"{}"
    assert second.headers[":exception-type"] == "ResourceNotFoundException"
    assert second.payload == b'{"message":"gone"}'
