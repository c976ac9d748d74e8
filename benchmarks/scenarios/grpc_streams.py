"""``grpc-streams-put``: the native Streams API (proto/broker/v1/streams.proto) Put batches over raw gRPC stubs.

A fresh stream of ``--shards`` shards is created at setup (waited for until ACTIVE) and deleted at teardown. Each
connection loops Put of ``--records`` records of ``--record-size`` bytes (any count: the gRPC API has no 500 limit)
with partition keys that differ per record and connection, so hashing spreads them over every shard. Throughput
counts records accepted; a record that fails is counted by its error code. Records carry their send time in their
first 24 bytes (as ``kinesis-*``), so a reader of the same stream could time them end to end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from dataclasses import dataclass
from typing import Any

from benchmarks import grpcload
from benchmarks.awsjson import Target
from benchmarks.pacing import Pacer
from benchmarks.scenarios.base import ScenarioSpec
from benchmarks.scenarios.kinesis import STAMP_BYTES, stamp
from benchmarks.stats import WorkerStats
from proto.broker.v1 import streams_pb2 as pb

PUT = "Put"
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
            await wait_active(stub, self.stream_name)

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


async def wait_active(stub: Any, stream: str) -> None:
    """Poll DescribeStream until ACTIVE (a status change has no event a client could wait on)."""
    deadline = time.monotonic() + ACTIVE_TIMEOUT_S
    while True:
        described = await stub.DescribeStream(pb.StreamRef(stream=stream), timeout=grpcload.CALL_TIMEOUT_S)
        if described.status == "ACTIVE":
            return
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
