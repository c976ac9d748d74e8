"""``kinesis-put`` and ``kinesis-cycle``: Kinesis (AWS JSON 1.1) producers, and producers plus one consumer per shard.

A fresh stream of ``--shards`` shards is created at setup (waited for until ACTIVE) and deleted at teardown.
Producers loop PutRecords of ``--records`` records of ``--record-size`` bytes; partition keys differ per record and
per connection, so MD5 hashing spreads them over every shard. Throughput counts records accepted (PutRecords
entries without an ErrorCode; each ErrorCode is counted as an error).

In ``kinesis-cycle`` connections 1, 3, 5, ... (odd indexes, one per shard while shards remain) are consumers: each
reads its shard from TRIM_HORIZON with GetRecords, waiting ``--poll-interval`` after an empty answer. Every record
carries its producer's send time (``perf_counter_ns``, the same clock in every process of the machine) in its first
24 bytes, so end-to-end latency (put -> got) is exact; throughput counts records consumed, and the consumers'
``MillisBehindLatest`` is kept as the ``consumer-lag`` histogram.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from benchmarks.awsjson import KINESIS, AwsError, AwsJsonClient, Target
from benchmarks.pacing import Pacer
from benchmarks.scenarios.base import ScenarioSpec
from benchmarks.scenarios.calls import timed_call
from benchmarks.stats import WorkerStats

PUT, GET, ITERATOR = "PutRecords", "GetRecords", "GetShardIterator"
STAMP_BYTES = 24  # a multiple of 3: its base64 is a prefix of the record's, so the rest is encoded once
_STAMP_B64 = b"@" * 32  # not base64: placeholder for the encoded stamp in the request template
ACTIVE_TIMEOUT_S = 60.0


def stamp(ns: int) -> bytes:
    """The record prefix that carries the send time: ``t=`` + 21 digits + ``;``."""
    return b"t=%021d;" % ns


def stamp_of(data: bytes) -> int | None:
    """The send time embedded by ``stamp``, or None for a record that has none."""
    if len(data) < STAMP_BYTES or not data.startswith(b"t="):
        return None
    try:
        return int(data[2:STAMP_BYTES - 1])
    except ValueError:
        return None


@dataclass
class KinesisPut:
    """Producers only; options plus the stream found at setup (shipped to workers by pickling)."""

    shards: int = 4
    records: int = 100
    record_size: int = 100
    stream: str | None = None
    keep_stream: bool = False
    shard_ids: list[str] = field(default_factory=list)
    stream_name: str = ""

    name = "kinesis-put"
    headline = "put"
    unit = "records"

    def __post_init__(self) -> None:
        if not 1 <= self.records <= 500:
            raise ValueError("--records must be in [1, 500] (the PutRecords limit)")
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
        client = AwsJsonClient(target, KINESIS)
        try:
            try:
                await client.call("CreateStream", {"StreamName": self.stream_name, "ShardCount": self.shards})
            except AwsError as exc:
                if exc.code != "ResourceInUseException" or self.stream is None:
                    raise
            await _wait_active(client, self.stream_name)
            shards = (await client.call("ListShards", {"StreamName": self.stream_name}))["Shards"]
            self.shard_ids = [str(s["ShardId"]) for s in shards if "EndingSequenceNumber" not in
                              s.get("SequenceNumberRange", {})]
        finally:
            client.close()

    async def teardown(self, target: Target) -> None:
        if self.stream is not None or self.keep_stream:
            return
        client = AwsJsonClient(target, KINESIS)
        try:
            await client.call("DeleteStream", {"StreamName": self.stream_name, "EnforceConsumerDeletion": True})
        finally:
            client.close()

    def put_template(self, index: int) -> bytes:
        """The PutRecords body of connection ``index`` with a placeholder where each record's stamp goes."""
        rest = b"x" * (self.record_size - STAMP_BYTES)
        data = (_STAMP_B64 + base64.b64encode(rest)).decode("latin-1")
        return orjson.dumps({"StreamName": self.stream_name, "Records": [
            {"Data": data, "PartitionKey": f"c{index}-r{i}"} for i in range(self.records)]})

    async def run_connection(self, target: Target, stats: WorkerStats, pacer: Pacer, index: int) -> None:
        await self.produce(target, stats, pacer, index)

    async def produce(self, target: Target, stats: WorkerStats, pacer: Pacer, index: int) -> None:
        client = AwsJsonClient(target, KINESIS)
        template = self.put_template(index)
        try:
            while not pacer.stopping():
                intended = await pacer.next()
                body = template.replace(_STAMP_B64, base64.b64encode(stamp(time.perf_counter_ns())))
                result = await timed_call(client, PUT, body, stats, intended if pacer.open_loop else None)
                if result is not None:
                    self._count_put(result, stats)
        finally:
            client.close()

    @staticmethod
    def _count_put(result: dict[str, Any], stats: WorkerStats) -> None:
        records = result.get("Records") or []
        ok = 0
        for entry in records:
            code = entry.get("ErrorCode")
            if code:
                stats.error(f"{PUT}:{code}")
            else:
                ok += 1
        stats.add("put", ok)


@dataclass
class KinesisCycle(KinesisPut):
    """Producers plus one GetRecords consumer per shard; end-to-end latency from the stamp in each record."""

    poll_interval: float = 0.02

    name = "kinesis-cycle"
    headline = "consumed"
    unit = "records"

    def describe(self) -> dict[str, object]:
        return {**super().describe(), "poll_interval": self.poll_interval}

    def is_consumer(self, index: int) -> bool:
        return self.consumer_shard(index) is not None

    def consumer_shard(self, index: int) -> str | None:
        """The shard connection ``index`` consumes, or None for a producer."""
        if index % 2 == 1 and index // 2 < len(self.shard_ids):
            return self.shard_ids[index // 2]
        return None

    async def run_connection(self, target: Target, stats: WorkerStats, pacer: Pacer, index: int) -> None:
        shard = self.consumer_shard(index)
        if shard is None:
            await self.produce(target, stats, pacer, index)
        else:
            await self.consume(target, stats, pacer, shard)

    async def consume(self, target: Target, stats: WorkerStats, pacer: Pacer, shard: str) -> None:
        client = AwsJsonClient(target, KINESIS)
        iterator: str | None = None
        last_sequence: str | None = None  # after a failed read, resume after it: nothing is counted twice
        try:
            while not pacer.stopping():
                if iterator is None:
                    got = await timed_call(client, ITERATOR, self.iterator_request(shard, last_sequence), stats)
                    iterator = None if got is None else got.get("ShardIterator")
                    if iterator is None:
                        await asyncio.sleep(self.poll_interval)
                        continue
                result = await timed_call(client, GET, orjson.dumps({"ShardIterator": iterator}), stats)
                if result is None:
                    iterator = None  # expired or failed: ask for a new iterator after the last record seen
                    continue
                iterator = result.get("NextShardIterator")
                records = result.get("Records") or []
                if records:
                    last_sequence = str(records[-1].get("SequenceNumber", last_sequence))
                if not self._count_got(result, stats):
                    await asyncio.sleep(self.poll_interval)
        finally:
            client.close()

    def iterator_request(self, shard: str, after: str | None) -> bytes:
        """GetShardIterator from the start of the shard, or after the last record already counted."""
        if after is None:
            return orjson.dumps({"StreamName": self.stream_name, "ShardId": shard,
                                 "ShardIteratorType": "TRIM_HORIZON"})
        return orjson.dumps({"StreamName": self.stream_name, "ShardId": shard,
                             "ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "StartingSequenceNumber": after})

    @staticmethod
    def _count_got(result: dict[str, Any], stats: WorkerStats) -> int:
        records = result.get("Records") or []
        now = time.perf_counter_ns()
        for record in records:
            sent = stamp_of(base64.b64decode(record.get("Data", "")[:32]))
            if sent is None:
                stats.error(f"{GET}:NoStamp")
            else:
                stats.record("put-to-get", (now - sent) // 1000)
        stats.add("consumed", len(records))
        lag = result.get("MillisBehindLatest")
        if isinstance(lag, int):
            stats.record("consumer-lag", lag * 1000)
        return len(records)


async def _wait_active(client: AwsJsonClient, stream: str) -> None:
    """Poll the stream's status until ACTIVE (a status change has no event a client could wait on)."""
    deadline = time.monotonic() + ACTIVE_TIMEOUT_S
    while True:
        summary = await client.call("DescribeStreamSummary", {"StreamName": stream})
        if summary["StreamDescriptionSummary"]["StreamStatus"] == "ACTIVE":
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"stream {stream} not ACTIVE within {ACTIVE_TIMEOUT_S:.0f} s")
        await asyncio.sleep(0.1)


def _add_put_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--shards", type=int, default=4, help="shards of the stream created for the run")
    parser.add_argument("--records", type=int, default=100, help="records per PutRecords call (1-500)")
    parser.add_argument("--record-size", type=int, default=100, help=f"bytes per record (>= {STAMP_BYTES})")
    parser.add_argument("--stream", help="use (create if missing) this stream; default: a fresh one, deleted after")
    parser.add_argument("--keep-stream", action="store_true", help="do not delete the stream created for the run")


def _add_cycle_arguments(parser: argparse.ArgumentParser) -> None:
    _add_put_arguments(parser)
    parser.add_argument("--poll-interval", type=float, default=0.02,
                        help="seconds a consumer waits after an empty GetRecords (default 0.02)")


def _put_from_args(args: argparse.Namespace) -> KinesisPut:
    return KinesisPut(args.shards, args.records, args.record_size, args.stream, args.keep_stream)


def _cycle_from_args(args: argparse.Namespace) -> KinesisCycle:
    return KinesisCycle(args.shards, args.records, args.record_size, args.stream, args.keep_stream,
                        poll_interval=args.poll_interval)


PUT_SPEC = ScenarioSpec("kinesis-put", "Kinesis PutRecords batches spread over the shards, closed loop",
                        _add_put_arguments, _put_from_args)
CYCLE_SPEC = ScenarioSpec("kinesis-cycle", "Kinesis producers PutRecords, one GetRecords consumer per shard; "
                          "end-to-end latency", _add_cycle_arguments, _cycle_from_args)
