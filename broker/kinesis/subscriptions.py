"""Enhanced fan-out: the events of SubscribeToShard calls, pushed as records become durable.

One subscription per (consumer, shard) at a time, as AWS allows. The events are SubscribeToShardEvent structures:
one at once, then one whenever records commit (woken by the Notifier) or at least every ``heartbeat_s``, until
``subscription_ms`` passes, the end of a closed shard (the last event carries ChildShards), or the stream or consumer
disappears (a ``BrokerError`` raised from the iterator, which the front end sends as an exception event).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any

from broker.kinesis import render
from broker.kinesis.config import KinesisConfig
from broker.kinesis.records import Unseal, read_records
from broker.model.kinesis_errors import ResourceInUseException, ResourceNotFoundException, stream_not_found
from broker.model.kinesis_model import KinesisModel
from broker.model.kinesis_stream import Consumer, Shard, Stream
from broker.notify import Notifier
from cluster.api import Replicator
from storage.changes import TableReader

SUBSCRIBE_BATCH = 10_000  # records per SubscribeToShardEvent at most
SUBSCRIBE_BYTES = 1 << 20  # and about 1 MiB


def kinesis_wake_key(account: str, name: str) -> tuple[str, str, str]:
    """The Notifier key woken after records are durably appended to a stream (or it is resharded or deleted)."""
    return ("kinesis", account, name)


class Subscription:
    """The events of one SubscribeToShard call; ``aclose`` (always call it) ends it and frees the consumer-shard
    slot even when the events were never iterated."""

    def __init__(self, events: AsyncGenerator[dict[str, Any], None], release: Callable[[], None]) -> None:
        self._events = events
        self._release = release

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self._events

    async def aclose(self) -> None:
        try:
            await self._events.aclose()
        finally:
            self._release()


class FanOut:
    """The live subscriptions of this node."""

    def __init__(self, model: KinesisModel, replicator: Replicator, reader: TableReader, notifier: Notifier,
                 config: KinesisConfig, unsealer: Callable[[int], Unseal]) -> None:
        self._model = model
        self._rep = replicator
        self._reader = reader
        self._notifier = notifier
        self._config = config
        self._unsealer = unsealer
        self._active: set[tuple[int, str, int]] = set()  # (stream id, consumer, shard index)

    def open(self, stream: Stream, consumer: Consumer, shard: Shard, counter: int) -> Subscription:
        """Start pushing ``shard`` from record ``counter`` to ``consumer``; ResourceInUseException if it already is."""
        key = (stream.stream_id, consumer.name, shard.index)
        if key in self._active:
            raise ResourceInUseException(
                f"Another active subscription exists for this consumer: {stream.consumer_arn(consumer)} and shard "
                f"{shard.id}.")
        self._active.add(key)
        return Subscription(self._events(stream, consumer, shard, counter, key), lambda: self._active.discard(key))

    async def _events(self, stream: Stream, consumer: Consumer, shard: Shard, counter: int,
                      key: tuple[int, str, int]) -> AsyncGenerator[dict[str, Any], None]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._config.subscription_ms / 1000
        wake = kinesis_wake_key(stream.account, stream.name)
        continuation: str | None = None
        try:
            while True:
                await self._rep.read_barrier()
                stream, shard = self._current(stream, consumer, shard)
                now = self._rep.now_ms()
                start = max(counter, shard.trim)
                found = read_records(self._reader, stream.stream_id, shard.index, start, shard.counter,
                                     SUBSCRIBE_BATCH, SUBSCRIBE_BYTES, self._unsealer(stream.stream_id))
                counter = found[-1].counter + 1 if found else start
                event: dict[str, Any] = {"Records": [render.record(shard, r) for r in found]}
                at_end = counter > shard.counter
                if at_end and not shard.is_open:
                    event["MillisBehindLatest"] = 0
                    event["ChildShards"] = render.child_shards(stream, shard)
                    yield event
                    return
                if found:
                    continuation = shard.seq(found[-1].counter, found[-1].arrival_ms)
                elif continuation is None:
                    continuation = self._sequence_before(stream, shard, counter)
                event["ContinuationSequenceNumber"] = continuation
                event["MillisBehindLatest"] = 0 if at_end or not found else max(0, now - found[-1].arrival_ms)
                yield event
                if self._notifier.closed:
                    return
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return
                if at_end:
                    await self._notifier.wait(wake, min(remaining, self._config.heartbeat_s))
        finally:
            self._active.discard(key)

    def _current(self, stream: Stream, consumer: Consumer, shard: Shard) -> tuple[Stream, Shard]:
        """The live objects for this subscription, looked up by identity each time: a restore (snapshot install)
        replaces them, and a stream or consumer deleted and created again under the same name is another one."""
        current = self._model.by_id.get(stream.stream_id)
        if current is None:
            raise stream_not_found(stream.name, stream.account)
        found = current.consumers.get(consumer.name)
        if found is None or found.created_ts != consumer.created_ts:
            raise ResourceNotFoundException(f"Consumer {consumer.name}, under stream {stream.name} under account "
                                            f"{stream.account} not found.")
        live = current.shards.get(shard.index)
        if live is None:
            raise ResourceNotFoundException(f"Shard {shard.id} in stream {stream.name} under account "
                                            f"{stream.account} has been trimmed.")
        return current, live

    def _sequence_before(self, stream: Stream, shard: Shard, counter: int) -> str:
        """The sequence number of the record before ``counter`` (the shard's start when there is none)."""
        before = read_records(self._reader, stream.stream_id, shard.index, counter - 1, counter - 1, 1,
                              unseal=self._unsealer(stream.stream_id))
        if before:
            return shard.seq(before[0].counter, before[0].arrival_ms)
        return shard.seq(max(0, counter - 1), 0)

