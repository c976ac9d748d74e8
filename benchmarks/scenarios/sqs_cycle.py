"""``sqs-cycle``: each connection loops SendMessageBatch -> ReceiveMessage -> DeleteMessageBatch of what it got.

Throughput counts messages fully cycled (deleted). The generator checks what botocore checks (MD5 of bodies on send
and receive) and counts any mismatch as an error, so a fast but wrong server cannot post a good figure. With
``--rate`` each send batch starts on the open-loop schedule and is also timed from its intended start
(``SendMessageBatch@intended``). Bodies of at least 32 characters start with their send time (``perf_counter_ns``,
the same clock in every process of the machine), so ``send-to-receive`` is the exact end-to-end latency of every
message received, whichever connection sent it. ``--fifo`` runs the same cycle on a FIFO queue: each connection
sends to its own message group, every message with a fresh deduplication id. Batch size (``--batch 1`` or 10) and
long polling (``--wait-seconds``) are options of the same scenario.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from benchmarks.awsjson import AwsJsonClient, Target
from benchmarks.pacing import Pacer
from benchmarks.scenarios.base import ScenarioSpec
from benchmarks.scenarios.calls import timed_call as _call
from benchmarks.stats import WorkerStats

SEND, RECEIVE, DELETE = "SendMessageBatch", "ReceiveMessage", "DeleteMessageBatch"
STAMP_CHARS = 24  # "t=" + 21 digits + ";"
PLACEHOLDER = b"@" * STAMP_CHARS  # never in a body: replaced by the stamp in each send's pre-built request


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def stamp(ns: int) -> str:
    return f"t={ns:021d};"


def stamp_of(body: str) -> int | None:
    """The send time a body starts with, or None."""
    if len(body) < STAMP_CHARS or not body.startswith("t=") or body[STAMP_CHARS - 1] != ";":
        return None
    try:
        return int(body[2:STAMP_CHARS - 1])
    except ValueError:
        return None


@dataclass
class SqsCycle:
    """Options of the scenario plus the queue URL found at setup (shipped to workers by pickling)."""

    batch: int = 10
    body_size: int = 100
    wait_seconds: int = 1
    queue: str | None = None
    keep_queue: bool = False
    fifo: bool = False
    queue_url: str = ""
    _created: bool = field(default=False, repr=False)

    name = "sqs-cycle"
    headline = "deleted"
    unit = "msgs"

    def __post_init__(self) -> None:
        if not 1 <= self.batch <= 10:
            raise ValueError("--batch must be in [1, 10] (the SQS batch limit)")
        if self.body_size < 8:
            raise ValueError("--body-size must be >= 8")
        if not 0 <= self.wait_seconds <= 20:
            raise ValueError("--wait-seconds must be in [0, 20]")
        if self.fifo and not self.stamped:
            raise ValueError(f"--fifo needs --body-size >= {STAMP_CHARS + 8} (deduplication ids use the stamp)")

    def describe(self) -> dict[str, object]:
        return {"batch": self.batch, "body_size": self.body_size, "wait_seconds": self.wait_seconds,
                "fifo": self.fifo, "queue_url": self.queue_url}

    async def setup(self, target: Target) -> None:
        name = self.queue or f"bench-{os.getpid()}-{int(time.time())}"
        request: dict[str, object] = {"QueueName": name}
        if self.fifo:
            request = {"QueueName": name if name.endswith(".fifo") else f"{name}.fifo",
                       "Attributes": {"FifoQueue": "true"}}
        client = AwsJsonClient(target)
        try:
            self.queue_url = str((await client.call("CreateQueue", request))["QueueUrl"])
        finally:
            client.close()
        self._created = self.queue is None

    async def teardown(self, target: Target) -> None:
        if not self._created or self.keep_queue:
            return
        client = AwsJsonClient(target)
        try:
            await client.call("DeleteQueue", {"QueueUrl": self.queue_url})
        finally:
            client.close()

    def message_body(self, index: int) -> str:
        """A body of ``body_size`` characters, distinct per connection."""
        prefix = f"c{index:05d}:"
        return (prefix + "x" * self.body_size)[: self.body_size]

    @property
    def units_per_op(self) -> int:
        return self.batch

    @property
    def stamped(self) -> bool:
        """Whether bodies are long enough to carry their send time (and keep a connection marker)."""
        return self.body_size >= STAMP_CHARS + 8

    async def run_connection(self, target: Target, stats: WorkerStats, pacer: Pacer, index: int) -> None:
        client = AwsJsonClient(target)
        body = self.message_body(index)
        if self.stamped:
            body = PLACEHOLDER.decode() + body[STAMP_CHARS:]
        body_md5 = _md5(body)
        md5_cache: dict[str, str] = {} if self.stamped else {body: body_md5}
        send_req = orjson.dumps({"QueueUrl": self.queue_url, "Entries": self.entries(index, body)})
        template = send_req
        recv_req = orjson.dumps({"QueueUrl": self.queue_url, "MaxNumberOfMessages": self.batch,
                                 "WaitTimeSeconds": self.wait_seconds})
        try:
            while not pacer.stopping():
                intended = await pacer.next()
                if self.stamped:
                    mark = stamp(time.perf_counter_ns())
                    send_req = template.replace(PLACEHOLDER, mark.encode())
                    body_md5 = _md5(mark + body[STAMP_CHARS:])
                sent = await _call(client, SEND, send_req, stats, intended if pacer.open_loop else None)
                if sent is not None:
                    self._count_send(sent, body_md5, stats)
                received = await _call(client, RECEIVE, recv_req, stats)
                if received is None:
                    continue
                messages = received.get("Messages") or []
                handles = self._check_received(messages, md5_cache, stats)
                if not handles:
                    continue
                delete_req = orjson.dumps({"QueueUrl": self.queue_url, "Entries": [
                    {"Id": str(i), "ReceiptHandle": h} for i, h in enumerate(handles)]})
                deleted = await _call(client, DELETE, delete_req, stats)
                if deleted is not None:
                    stats.add("deleted", len(deleted.get("Successful") or []))
                    _count_failed(DELETE, deleted, stats)
        finally:
            client.close()

    def entries(self, index: int, body: str) -> list[dict[str, str]]:
        """SendMessageBatch entries of connection ``index``; FIFO: its own message group, and deduplication ids
        that carry the stamp placeholder (so every send's ids are new once the stamp replaces it)."""
        if not self.fifo:
            return [{"Id": str(i), "MessageBody": body} for i in range(self.batch)]
        return [{"Id": str(i), "MessageBody": body, "MessageGroupId": f"g{index}",
                 "MessageDeduplicationId": f"c{index}-{PLACEHOLDER.decode()}-{i}"} for i in range(self.batch)]

    @staticmethod
    def _count_send(result: dict[str, Any], body_md5: str, stats: WorkerStats) -> None:
        ok = result.get("Successful") or []
        stats.add("sent", len(ok))
        bad = sum(1 for entry in ok if entry.get("MD5OfMessageBody") != body_md5)
        if bad:
            stats.error(f"{SEND}:MD5Mismatch", bad)
        _count_failed(SEND, result, stats)

    @staticmethod
    def _check_received(messages: list[dict[str, Any]], md5_cache: dict[str, str],
                        stats: WorkerStats) -> list[str]:
        if not messages:
            stats.add("empty_receives")
            return []
        stats.add("received", len(messages))
        handles = []
        now = time.perf_counter_ns()
        for msg in messages:
            text = msg.get("Body", "")
            sent = stamp_of(text)
            if sent is not None:
                stats.record("send-to-receive", (now - sent) // 1000)
            expected = md5_cache.get(text)
            if expected is None:
                expected = _md5(text)
                if sent is None and len(md5_cache) < 4096:  # stamped bodies never repeat
                    md5_cache[text] = expected
            if msg.get("MD5OfBody") != expected:
                stats.error(f"{RECEIVE}:MD5Mismatch")
            handles.append(msg["ReceiptHandle"])
        return handles


def _count_failed(call: str, result: dict[str, Any], stats: WorkerStats) -> None:
    for entry in result.get("Failed") or []:
        stats.error(f"{call}:{entry.get('Code', 'Unknown')}")


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--batch", type=int, default=10, help="messages per send/receive/delete batch (1-10)")
    parser.add_argument("--body-size", type=int, default=100, help="message body size in characters")
    parser.add_argument("--wait-seconds", type=int, default=1, help="ReceiveMessage WaitTimeSeconds")
    parser.add_argument("--queue", help="use (create if missing) this queue; default: a fresh one, deleted after")
    parser.add_argument("--keep-queue", action="store_true", help="do not delete the queue created for the run")
    parser.add_argument("--fifo", action="store_true",
                        help="a FIFO queue: one message group per connection, a deduplication id per message")


def _from_args(args: argparse.Namespace) -> SqsCycle:
    return SqsCycle(batch=args.batch, body_size=args.body_size, wait_seconds=args.wait_seconds, queue=args.queue,
                    keep_queue=args.keep_queue, fifo=args.fifo)


SPEC = ScenarioSpec("sqs-cycle", "SQS send batch -> receive -> delete batch, closed loop", _add_arguments,
                    _from_args)
