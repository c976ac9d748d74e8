"""``grpc-streams-put`` and ``grpc-streams-tail``: the native Streams API (proto/broker/v1/streams.proto) over raw
gRPC stubs.

A fresh stream of ``--shards`` shards is created at setup (waited for until ACTIVE) and deleted at teardown. Each
connection loops Put of ``--records`` records of ``--record-size`` bytes (any count: the gRPC API has no 500 limit)
with partition keys that differ per record and connection, so hashing spreads them over every shard. Throughput
counts records accepted; a record that fails is counted by its error code. Records carry their send time in their
first 24 bytes (as ``kinesis-*``).

``grpc-streams-tail`` adds readers: connections 1, 3, 5, ... (one per shard while shards remain) each hold a
``Tail`` stream of their shard from TRIM_HORIZON, which the server pushes records on as they commit. Throughput counts
records received; ``put-to-get`` is each record's exact end-to-end latency, ``consumer-lag`` the server's
``millis_behind_latest`` of every push.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import time
from dataclasses import dataclass, field
from typing import Any

import grpc

from benchmarks import grpcload
from benchmarks.awsjson import Target
from benchmarks.pacing import Pacer
from benchmarks.scenarios.base import ScenarioSpec
from benchmarks.scenarios.kinesis import STAMP_BYTES, stamp, stamp_of
from benchmarks.stats import WorkerStats
from proto.broker.v1 import streams_pb2 as pb

PUT, TAIL = "Put", "Tail"
STOP_POLL_S = 0.05  # how often a reader checks the deadline while its stream is quiet
ACTIVE_TIMEOUT_S = 60.0
ACTIVE_POLL_S = 0.05


@dataclass
class GrpcStreamsPut:
    shards: int = 4
    records: int = 500
    record_size: int = 100
    stream: str | None = None
    keep_stream: bool = False
    stream_name: str = ""
    shard_ids: list[str] = field(default_factory=list)

    name = "grpc-streams-put"
    headline = "put"
    unit = "records"

    def __post_init__(self) -> None:
        if self.records < 1:
            raise ValueError("--records must be >= 1")
        if self.record_size < STAMP_BYTES:
            raise ValueError(f"--record-size must be >= {STAMP_BYTES}")
        if self.shards < 1:
            raise ValueError("--shards must be >= 1")

    @property
    def units_per_op(self) -> int:
        return self.records

    def describe(self) -> dict[str, object]:
        return {"shards": self.shards, "records": self.records, "record_size": self.record_size,
                "stream": self.stream_name}

    async def setup(self, target: Target) -> None:
        self.stream_name = self.stream or f"bench-{os.getpid()}-{int(time.time())}"
        async with grpcload.channel(target) as chan:
            stub = grpcload.streams_stub(chan)
            if self.stream is None:
                await stub.CreateStream(pb.CreateStreamRequest(stream=self.stream_name, shard_count=self.shards),
                                        timeout=grpcload.CALL_TIMEOUT_S)
            described = await wait_active(stub, self.stream_name)
            self.shard_ids = [sh.shard_id for sh in described.shards if not sh.ending_sequence_number]

    async def teardown(self, target: Target) -> None:
        if self.stream is not None or self.keep_stream:
            return
        async with grpcload.channel(target) as chan:
            await grpcload.streams_stub(chan).DeleteStream(pb.StreamRef(stream=self.stream_name),
                                                         timeout=grpcload.CALL_TIMEOUT_S)

    def request(self, index: int) -> pb.PutRequest:
        """One Put of connection ``index``, its records stamped now."""
        data = stamp(time.perf_counter_ns()) + b"x" * (self.record_size - STAMP_BYTES)
        return pb.PutRequest(stream=self.stream_name, records=[
            pb.PutRecord(data=data, partition_key=f"c{index}-r{i}") for i in range(self.records)])

    async def run_connection(self, target: Target, stats: WorkerStats, pacer: Pacer, index: int) -> None:
        async with grpcload.channel(target) as chan:
            stub = grpcload.streams_stub(chan)
            while not pacer.stopping():
                intended = await pacer.next()
                done = await grpcload.timed_rpc(PUT, stub.Put, self.request(index), stats,
                                                intended if pacer.open_loop else None)
                if done is None:
                    continue
                ok = 0
                for result in done.results:
                    if result.HasField("error") and result.error.code:
                        stats.error(f"{PUT}:{result.error.code}")
                    else:
                        ok += 1
                stats.add("put", ok)


@dataclass
class GrpcStreamsTail(GrpcStreamsPut):
    """Producers Put; one Tail stream per shard pushes what commits; end to end from the stamp in each record."""

    name = "grpc-streams-tail"
    headline = "consumed"

    def consumer_shard(self, index: int) -> str | None:
        """The shard connection ``index`` tails, or None for a producer."""
        if index % 2 == 1 and index // 2 < len(self.shard_ids):
            return self.shard_ids[index // 2]
        return None

    def is_consumer(self, index: int) -> bool:
        return self.consumer_shard(index) is not None

    async def run_connection(self, target: Target, stats: WorkerStats, pacer: Pacer, index: int) -> None:
        shard = self.consumer_shard(index)
        if shard is None:
            await super().run_connection(target, stats, pacer, index)
            return
        async with grpcload.channel(target) as chan:
            stub = grpcload.streams_stub(chan)
            position = pb.Position(type=pb.Position.TRIM_HORIZON)
            while not pacer.stopping():
                request = pb.ReadRequest(stream=self.stream_name, shard_id=shard, position=position)
                position = await self._tail(stub.Tail(request), stats, pacer, position)

    async def _tail(self, call: Any, stats: WorkerStats, pacer: Pacer, position: pb.Position) -> pb.Position:
        """Read one Tail stream until the deadline or a failure; where to resume (after the last record seen)."""
        watchdog = asyncio.create_task(_cancel_at_deadline(call, pacer))
        try:
            async for response in call:
                now = time.perf_counter_ns()
                for record in response.records:
                    sent = stamp_of(record.data)
                    if sent is None:
                        stats.error(f"{TAIL}:NoStamp")
                    else:
                        stats.record("put-to-get", (now - sent) // 1000)
                if response.records:
                    position = pb.Position(type=pb.Position.AFTER_SEQUENCE_NUMBER,
                                           sequence_number=response.records[-1].sequence_number)
                stats.add("consumed", len(response.records))
                stats.record("consumer-lag", response.millis_behind_latest * 1000)
        except grpc.aio.AioRpcError as exc:
            if not call.cancelled():
                stats.error(f"{TAIL}:{grpcload.error_code(exc)}")
                await asyncio.sleep(grpcload.BACKOFF_S)
        except asyncio.CancelledError:
            if not call.cancelled():  # our own task is being cancelled, not just the call: let it go
                raise
        finally:
            watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watchdog
        return position


async def _cancel_at_deadline(call: Any, pacer: Pacer) -> None:
    """End the stream once the run is over: a quiet stream has nothing to wake its reader at the deadline."""
    while not pacer.stopping():
        await asyncio.sleep(STOP_POLL_S)
    call.cancel()


async def wait_active(stub: Any, stream: str) -> pb.StreamDescription:
    """Poll DescribeStream until ACTIVE (a status change has no event a client could wait on); its description."""
    deadline = time.monotonic() + ACTIVE_TIMEOUT_S
    while True:
        described: pb.StreamDescription = await stub.DescribeStream(pb.StreamRef(stream=stream),
                                                                    timeout=grpcload.CALL_TIMEOUT_S)
        if described.status == "ACTIVE":
            return described
        if time.monotonic() > deadline:
            raise TimeoutError(f"stream {stream} not ACTIVE within {ACTIVE_TIMEOUT_S:.0f} s ({described.status})")
        await asyncio.sleep(ACTIVE_POLL_S)


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--shards", type=int, default=4, help="shards of the stream created for the run")
    parser.add_argument("--records", type=int, default=500, help="records per Put (default 500)")
    parser.add_argument("--record-size", type=int, default=100, help=f"bytes per record (>= {STAMP_BYTES})")
    parser.add_argument("--stream", help="use this existing stream; default: a fresh one, deleted after")
    parser.add_argument("--keep-stream", action="store_true", help="do not delete the stream created for the run")


SPEC = ScenarioSpec("grpc-streams-put", "gRPC Streams: Put batches spread over the shards", _add_arguments,
                    lambda a: GrpcStreamsPut(a.shards, a.records, a.record_size, a.stream, a.keep_stream))
TAIL_SPEC = ScenarioSpec("grpc-streams-tail", "gRPC Streams: producers Put, one Tail stream per shard; end to end "
                         "and consumer lag", _add_arguments,
                         lambda a: GrpcStreamsTail(a.shards, a.records, a.record_size, a.stream, a.keep_stream))
