"""``sns-fanout``: publish to an SNS topic with K SQS subscribers, measure every delivery end to end.

Setup creates a topic and ``--subscribers`` K queues, each subscribed with raw message delivery, and deletes them all
at teardown. Connections 1, 3, 5, ... (the first ``K x --consumers-per-queue`` of them) are consumers of queue
``(index // 2) mod K``: ReceiveMessage (up to 10, long poll ``--wait-seconds``) -> DeleteMessageBatch. Every other
connection is a publisher looping Query ``Publish`` calls (paced by ``--rate`` in deliveries/s, K per publish).
Use at least ``2 x K x consumers-per-queue`` connections in total so every queue has its consumers.

Each message starts with its publish time (``perf_counter_ns``, the same clock in every process of the machine), so
``publish-to-receive`` is the exact latency from just before Publish to a consumer holding the delivery. Throughput
counts deliveries received (``delivered``; = ``published`` x K when nothing is late or lost: the difference at the
end is what was still in flight at the deadline). MD5 of every delivered body is checked.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import orjson

from benchmarks.awsjson import AwsJsonClient, Target
from benchmarks.awsquery import AwsQueryClient, error_from, xml_value
from benchmarks.http1 import HttpConnectionError
from benchmarks.pacing import Pacer
from benchmarks.scenarios.base import ScenarioSpec
from benchmarks.scenarios.calls import BACKOFF_S, timed_call
from benchmarks.scenarios.sqs_cycle import STAMP_CHARS, stamp, stamp_of
from benchmarks.stats import WorkerStats

PUBLISH, RECEIVE, DELETE = "Publish", "ReceiveMessage", "DeleteMessageBatch"


@dataclass
class SnsFanout:
    subscribers: int = 4
    consumers_per_queue: int = 1
    body_size: int = 100
    wait_seconds: int = 1
    topic_arn: str = ""
    queue_urls: list[str] = field(default_factory=list)

    name = "sns-fanout"
    headline = "delivered"
    unit = "deliveries"

    def __post_init__(self) -> None:
        if self.subscribers < 1 or self.consumers_per_queue < 1:
            raise ValueError("--subscribers and --consumers-per-queue must be >= 1")
        if self.body_size < STAMP_CHARS + 8:
            raise ValueError(f"--body-size must be >= {STAMP_CHARS + 8} (bodies carry their publish time)")
        if not 0 <= self.wait_seconds <= 20:
            raise ValueError("--wait-seconds must be in [0, 20]")

    @property
    def units_per_op(self) -> int:
        return self.subscribers

    def describe(self) -> dict[str, object]:
        return {"subscribers": self.subscribers, "consumers_per_queue": self.consumers_per_queue,
                "body_size": self.body_size, "wait_seconds": self.wait_seconds, "topic": self.topic_arn}

    def is_consumer(self, index: int) -> bool:
        return self.consumer_queue(index) is not None

    def consumer_queue(self, index: int) -> str | None:
        """The queue URL connection ``index`` consumes, or None for a publisher."""
        if index % 2 == 1 and index // 2 < self.subscribers * self.consumers_per_queue:
            return self.queue_urls[(index // 2) % self.subscribers]
        return None

    async def setup(self, target: Target) -> None:
        tag = f"bench-{os.getpid()}-{int(time.time())}"
        sns, sqs = AwsQueryClient(target), AwsJsonClient(target)
        try:
            self.topic_arn = xml_value(await sns.call("CreateTopic", {"Name": tag}), "TopicArn") or ""
            if not self.topic_arn:
                raise RuntimeError("CreateTopic answered without a TopicArn")
            for i in range(self.subscribers):
                url = str((await sqs.call("CreateQueue", {"QueueName": f"{tag}-{i}"}))["QueueUrl"])
                self.queue_urls.append(url)
                attrs = await sqs.call("GetQueueAttributes", {"QueueUrl": url, "AttributeNames": ["QueueArn"]})
                await sns.call("Subscribe", {
                    "TopicArn": self.topic_arn, "Protocol": "sqs", "Endpoint": attrs["Attributes"]["QueueArn"],
                    "Attributes.entry.1.key": "RawMessageDelivery", "Attributes.entry.1.value": "true"})
        finally:
            sns.close()
            sqs.close()

    async def teardown(self, target: Target) -> None:
        sns, sqs = AwsQueryClient(target), AwsJsonClient(target)
        try:
            for url in self.queue_urls:
                await sqs.call("DeleteQueue", {"QueueUrl": url})
            await sns.call("DeleteTopic", {"TopicArn": self.topic_arn})
        finally:
            sns.close()
            sqs.close()

    async def run_connection(self, target: Target, stats: WorkerStats, pacer: Pacer, index: int) -> None:
        queue = self.consumer_queue(index)
        if queue is None:
            await self.publish(target, stats, pacer, index)
        else:
            await self.consume(target, stats, pacer, queue)

    async def publish(self, target: Target, stats: WorkerStats, pacer: Pacer, index: int) -> None:
        client = AwsQueryClient(target)
        prefix = client.body(PUBLISH, {"TopicArn": self.topic_arn}) + b"&Message="
        rest = quote((f"p{index:05d}:" + "x" * self.body_size)[: self.body_size - STAMP_CHARS], safe="").encode()
        try:
            while not pacer.stopping():
                intended = await pacer.next()
                body = prefix + quote(stamp(time.perf_counter_ns()), safe="").encode() + rest
                start = time.perf_counter_ns()
                try:
                    response = await client.call_raw(body)
                except HttpConnectionError:
                    stats.error(f"{PUBLISH}:ConnectionError")
                    await asyncio.sleep(BACKOFF_S)
                    continue
                except TimeoutError:
                    stats.error(f"{PUBLISH}:Timeout")
                    continue
                if response.status >= 300:
                    stats.error(f"{PUBLISH}:{error_from(response).code}")
                    continue
                end = time.perf_counter_ns()
                stats.record(PUBLISH, (end - start) // 1000)
                if pacer.open_loop:
                    stats.record(f"{PUBLISH}@intended", (end - intended) // 1000)
                stats.add("published")
        finally:
            client.close()

    async def consume(self, target: Target, stats: WorkerStats, pacer: Pacer, queue: str) -> None:
        client = AwsJsonClient(target)
        receive = orjson.dumps({"QueueUrl": queue, "MaxNumberOfMessages": 10, "WaitTimeSeconds": self.wait_seconds})
        try:
            while not pacer.stopping():
                got = await timed_call(client, RECEIVE, receive, stats)
                messages: list[dict[str, Any]] = [] if got is None else got.get("Messages") or []
                if not messages:
                    continue
                handles = check_deliveries(messages, stats)
                deleted = await timed_call(client, DELETE, orjson.dumps({"QueueUrl": queue, "Entries": [
                    {"Id": str(i), "ReceiptHandle": h} for i, h in enumerate(handles)]}), stats)
                if deleted is not None:
                    stats.add("deleted", len(deleted.get("Successful") or []))
                    for entry in deleted.get("Failed") or []:
                        stats.error(f"{DELETE}:{entry.get('Code', 'Unknown')}")
        finally:
            client.close()


def check_deliveries(messages: list[dict[str, Any]], stats: WorkerStats) -> list[str]:
    """Count deliveries, record each one's publish-to-receive latency, check MD5s; the receipt handles."""
    now = time.perf_counter_ns()
    handles = []
    for msg in messages:
        body = str(msg.get("Body", ""))
        sent = stamp_of(body)
        if sent is None:
            stats.error(f"{RECEIVE}:NoStamp")  # raw delivery was not honoured: the body is an SNS envelope
        else:
            stats.record("publish-to-receive", (now - sent) // 1000)
        if msg.get("MD5OfBody") != hashlib.md5(body.encode(), usedforsecurity=False).hexdigest():
            stats.error(f"{RECEIVE}:MD5Mismatch")
        handles.append(str(msg["ReceiptHandle"]))
    stats.add("delivered", len(handles))
    return handles


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--subscribers", type=int, default=4, help="K SQS queues subscribed to the topic")
    parser.add_argument("--consumers-per-queue", type=int, default=1, help="consumer connections per queue")
    parser.add_argument("--body-size", type=int, default=100, help="message size in characters (>= 32)")
    parser.add_argument("--wait-seconds", type=int, default=1, help="consumers' ReceiveMessage WaitTimeSeconds")


SPEC = ScenarioSpec("sns-fanout", "SNS Publish to a topic with K SQS subscribers; deliveries/s, end to end to every "
                    "queue", _add_arguments,
                    lambda a: SnsFanout(a.subscribers, a.consumers_per_queue, a.body_size, a.wait_seconds))
