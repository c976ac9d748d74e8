"""``grpc-batch`` and ``grpc-stream``: the native Queues API (proto/broker/v1/queues.proto) over raw gRPC stubs.

``grpc-batch``: each connection loops Send(batch of ``--batch``) -> Receive(up to ``--batch``, long poll
``--wait-seconds``) -> Delete(the receipt handles it got), like ``sqs-cycle`` but with batches beyond SQS's 10.

``grpc-stream``: connections 1, 3, 5, ... (the first ``--consumers``) each hold one Consume stream (flow control
``--max-in-flight``, pushes of up to ``--batch``) and ack every pushed batch on the same stream; every other
connection is a producer looping Send batches (paced by ``--rate``). Throughput counts acks the server settled.

Both check what a client library would: the MD5 of every body sent and received, and per-entry failures (counted
as ``Call:Code``). Bodies of at least 32 characters start with their send time (``perf_counter_ns``, the same clock
in every process of the machine), so ``send-to-receive`` / ``send-to-consume`` is the exact end-to-end latency of
each message; ``Ack`` latency is ack written -> Settled read. ``--fifo`` uses a FIFO queue (one message group per
producer connection, a deduplication id per message).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import grpc

from benchmarks import grpcload
from benchmarks.awsjson import Target
from benchmarks.pacing import Pacer
from benchmarks.scenarios.base import ScenarioSpec
from benchmarks.scenarios.sqs_cycle import PLACEHOLDER, STAMP_CHARS, stamp, stamp_of
from benchmarks.stats import WorkerStats
from proto.broker.v1 import queues_pb2 as pb

SEND, RECEIVE, DELETE, ACK = "Send", "Receive", "Delete", "Ack"
STOP_POLL_S = 0.05  # how often a consumer checks the deadline while its stream is quiet


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


@dataclass
class GrpcQueueBase:
    """Options and the queue created at setup; shipped to workers by pickling."""

    batch: int = 100
    body_size: int = 100
    fifo: bool = False
    queue: str | None = None
    keep_queue: bool = False
    queue_name: str = ""
    created: bool = False
    _templates: dict[int, tuple[bytes, str]] = field(default_factory=dict, repr=False)  # connection -> serialized Send

    headline = "deleted"
    unit = "msgs"

    def __post_init__(self) -> None:
        if not 1 <= self.batch <= 1000:
            raise ValueError("--batch must be in [1, 1000] (the Receive limit)")
        if self.body_size < STAMP_CHARS + 8:
            raise ValueError(f"--body-size must be >= {STAMP_CHARS + 8} (bodies carry their send time)")

    @property
    def units_per_op(self) -> int:
        return self.batch

    def describe(self) -> dict[str, object]:
        return {"batch": self.batch, "body_size": self.body_size, "fifo": self.fifo, "queue": self.queue_name}

    async def setup(self, target: Target) -> None:
        name = self.queue or f"bench-{os.getpid()}-{int(time.time())}"
        attributes = {}
        if self.fifo:
            name = name if name.endswith(".fifo") else f"{name}.fifo"
            attributes = {"FifoQueue": "true"}
        async with grpcload.channel(target) as chan:
            await grpcload.queues_stub(chan).CreateQueue(pb.CreateQueueRequest(queue=name, attributes=attributes),
                                                       timeout=grpcload.CALL_TIMEOUT_S)
        self.queue_name = name
        self.created = self.queue is None

    async def teardown(self, target: Target) -> None:
        if not self.created or self.keep_queue:
            return
        async with grpcload.channel(target) as chan:
            await grpcload.queues_stub(chan).DeleteQueue(pb.QueueRef(queue=self.queue_name),
                                                       timeout=grpcload.CALL_TIMEOUT_S)

    def request(self, index: int) -> tuple[pb.SendRequest, str]:
        """One Send of connection ``index`` stamped now, and the MD5 every body of it has.

        Parsed from a serialized template with the stamp put in: one C call, where building ``batch`` entries
        field by field cost the generator more CPU per message than the Receive checks (the generator shares the
        machine with the broker it measures)."""
        found = self._templates.get(index)
        if found is None:
            found = self._templates[index] = self._template(index)
        template, tail = found
        mark = stamp(time.perf_counter_ns())
        return pb.SendRequest.FromString(template.replace(PLACEHOLDER, mark.encode())), _md5(mark + tail)

    def _template(self, index: int) -> tuple[bytes, str]:
        """Connection ``index``'s SendRequest with the stamp placeholder in every body (and FIFO deduplication
        id, so that every send's ids are new once the stamp replaces it), and what follows the stamp."""
        tail = (f"c{index:05d}:" + "x" * self.body_size)[: self.body_size - STAMP_CHARS]
        body = PLACEHOLDER.decode() + tail
        if self.fifo:
            entries = [pb.SendEntry(body=body, group_id=f"g{index}",
                                    deduplication_id=f"{index}-{PLACEHOLDER.decode()}-{i}")
                       for i in range(self.batch)]
        else:
            entries = [pb.SendEntry(body=body) for _ in range(self.batch)]
        return pb.SendRequest(queue=self.queue_name, entries=entries).SerializeToString(), tail

    async def send(self, stub: Any, index: int, stats: WorkerStats, intended: int | None) -> None:
        request, md5 = self.request(index)
        sent = await grpcload.timed_rpc(SEND, stub.Send, request, stats, intended)
        if sent is None:
            return
        digests = [result.md5_of_body for result in sent.results]
        ok = digests.count(md5)
        if ok < len(digests):  # a failed entry has no digest: tell failures from mismatches
            for result in sent.results:
                if result.HasField("error") and result.error.code:
                    stats.error(f"{SEND}:{result.error.code}")
                elif result.md5_of_body != md5:
                    stats.error(f"{SEND}:MD5Mismatch")
        stats.add("sent", ok)


def check_received(messages: Iterable[pb.Message], latency: str, stats: WorkerStats) -> list[str]:
    """Record each message's end-to-end latency, count MD5 mismatches; the receipt handles.

    A run of messages with the same body (one Send's batch) shares its stamp and digest, so each is parsed and
    hashed once per run and the run's latency recorded once with its count: the same figures as message by message
    at a fraction of the generator's CPU."""
    now = time.perf_counter_ns()
    handles = []
    body: str | None = None
    digest = ""
    sent: int | None = None
    run = 0
    for msg in messages:
        text = msg.body
        if text != body:
            if run and sent is not None:
                stats.record(latency, (now - sent) // 1000, run)
            body, digest, sent, run = text, _md5(text), stamp_of(text), 0
        run += 1
        if msg.md5_of_body != digest:
            stats.error(f"{RECEIVE}:MD5Mismatch")
        handles.append(msg.receipt_handle)
    if run and sent is not None:
        stats.record(latency, (now - sent) // 1000, run)
    stats.add("received", len(handles))
    return handles


def count_failures(call: str, failures: Iterable[pb.EntryFailure], stats: WorkerStats) -> int:
    n = 0
    for failure in failures:
        stats.error(f"{call}:{failure.error.code or 'Unknown'}")
        n += 1
    return n


@dataclass
class GrpcBatch(GrpcQueueBase):
    """Send -> Receive -> Delete batches per connection (closed loop, or sends paced by ``--rate``)."""

    wait_seconds: int = 1

    name = "grpc-batch"

    def describe(self) -> dict[str, object]:
        return {**super().describe(), "wait_seconds": self.wait_seconds}

    async def run_connection(self, target: Target, stats: WorkerStats, pacer: Pacer, index: int) -> None:
        async with grpcload.channel(target) as chan:
            stub = grpcload.queues_stub(chan)
            receive = pb.ReceiveRequest(queue=self.queue_name, max_messages=self.batch,
                                        wait_seconds=self.wait_seconds)
            while not pacer.stopping():
                intended = await pacer.next()
                await self.send(stub, index, stats, intended if pacer.open_loop else None)
                got = await grpcload.timed_rpc(RECEIVE, stub.Receive, receive, stats,
                                               timeout=grpcload.CALL_TIMEOUT_S + self.wait_seconds)
                if got is None:
                    continue
                if not got.messages:
                    stats.add("empty_receives")
                    continue
                handles = check_received(got.messages, "send-to-receive", stats)
                delete = pb.DeleteRequest(queue=self.queue_name, receipt_handles=handles)
                done = await grpcload.timed_rpc(DELETE, stub.Delete, delete, stats)
                if done is not None:
                    stats.add("deleted", len(handles) - count_failures(DELETE, done.failures, stats))


@dataclass
class GrpcStream(GrpcQueueBase):
    """Producers Send batches; ``consumers`` connections each hold a Consume stream and ack on it."""

    consumers: int = 2
    max_in_flight: int = 1000

    name = "grpc-stream"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.consumers < 1:
            raise ValueError("--consumers must be >= 1")
        if self.max_in_flight < 1:
            raise ValueError("--max-in-flight must be >= 1")

    def describe(self) -> dict[str, object]:
        return {**super().describe(), "consumers": self.consumers, "max_in_flight": self.max_in_flight}

    def is_consumer(self, index: int) -> bool:
        return index % 2 == 1 and index // 2 < self.consumers

    async def run_connection(self, target: Target, stats: WorkerStats, pacer: Pacer, index: int) -> None:
        async with grpcload.channel(target) as chan:
            stub = grpcload.queues_stub(chan)
            if self.is_consumer(index):
                await self.consume(stub, stats, pacer)
                return
            while not pacer.stopping():
                intended = await pacer.next()
                await self.send(stub, index, stats, intended if pacer.open_loop else None)

    async def consume(self, stub: Any, stats: WorkerStats, pacer: Pacer) -> None:
        """One Consume stream until the deadline (reopened after a failure); acks each push on the stream."""
        while not pacer.stopping():
            call = stub.Consume()
            watchdog = asyncio.create_task(_cancel_at_deadline(call, pacer))
            try:
                await self._consume_stream(call, stats)
            except grpc.aio.AioRpcError as exc:
                if not call.cancelled():
                    stats.error(f"Consume:{grpcload.error_code(exc)}")
                    await asyncio.sleep(grpcload.BACKOFF_S)
            except asyncio.CancelledError:
                if not call.cancelled():  # our own task is being cancelled, not just the call: let it go
                    raise
            except asyncio.InvalidStateError:  # an ack written just as the deadline cancelled the stream
                if not call.done():
                    raise
            finally:
                watchdog.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watchdog

    async def _consume_stream(self, call: grpc.aio.StreamStreamCall[pb.ConsumeRequest, pb.ConsumeResponse],
                              stats: WorkerStats) -> None:
        await call.write(pb.ConsumeRequest(start=pb.ConsumeStart(
            queue=self.queue_name, max_in_flight=self.max_in_flight, max_batch=self.batch)))
        pending: dict[int, tuple[int, int]] = {}  # token -> (ack written at, handles acked)
        token = 0
        while True:
            response = await call.read()
            if response is grpc.aio.EOF:
                stats.error("Consume:StreamEnded")
                return
            kind = response.WhichOneof("kind")
            if kind == "messages":
                handles = check_received(response.messages.messages, "send-to-consume", stats)
                if handles:
                    token += 1
                    pending[token] = (time.perf_counter_ns(), len(handles))
                    await call.write(pb.ConsumeRequest(ack=pb.Ack(token=token, receipt_handles=handles)))
            elif kind == "settled":
                started, n = pending.pop(response.settled.token, (0, 0))
                if started:
                    stats.record(ACK, (time.perf_counter_ns() - started) // 1000)
                stats.add("deleted", n - count_failures(ACK, response.settled.failures, stats))


async def _cancel_at_deadline(call: grpc.aio.Call, pacer: Pacer) -> None:
    """End the stream once the run is over: a quiet stream has nothing to wake its reader at the deadline."""
    while not pacer.stopping():
        await asyncio.sleep(STOP_POLL_S)
    call.cancel()


def _add_common(parser: argparse.ArgumentParser, batch_help: str) -> None:
    parser.add_argument("--batch", type=int, default=100, help=batch_help)
    parser.add_argument("--body-size", type=int, default=100, help="message body size in characters (>= 32)")
    parser.add_argument("--fifo", action="store_true", help="a FIFO queue: one group per producer connection")
    parser.add_argument("--queue", help="use (create if missing) this queue; default: a fresh one, deleted after")
    parser.add_argument("--keep-queue", action="store_true", help="do not delete the queue created for the run")


def _batch_arguments(parser: argparse.ArgumentParser) -> None:
    _add_common(parser, "messages per Send / Receive / Delete (1-1000, default 100)")
    parser.add_argument("--wait-seconds", type=int, default=1, help="Receive long-poll seconds")


def _stream_arguments(parser: argparse.ArgumentParser) -> None:
    _add_common(parser, "messages per Send and per pushed batch (1-1000, default 100)")
    parser.add_argument("--consumers", type=int, default=2,
                        help="Consume streams: connections 1, 3, 5, ... of all processes (default 2)")
    parser.add_argument("--max-in-flight", type=int, default=1000, help="unacked messages per stream (default 1000)")


BATCH_SPEC = ScenarioSpec(
    "grpc-batch", "gRPC Queues: Send batch -> Receive batch -> Delete batch per connection", _batch_arguments,
    lambda a: GrpcBatch(batch=a.batch, body_size=a.body_size, fifo=a.fifo, queue=a.queue, keep_queue=a.keep_queue,
                        wait_seconds=a.wait_seconds))
STREAM_SPEC = ScenarioSpec(
    "grpc-stream", "gRPC Queues: producers Send batches, Consume streams ack on the stream", _stream_arguments,
    lambda a: GrpcStream(batch=a.batch, body_size=a.body_size, fifo=a.fifo, queue=a.queue, keep_queue=a.keep_queue,
                         consumers=a.consumers, max_in_flight=a.max_in_flight))
