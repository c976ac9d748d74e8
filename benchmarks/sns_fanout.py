"""SNS fan-out benchmark: publish rate and end-to-end latency from Publish to K subscribed SQS queues.

    python -m benchmarks.sns_fanout --subscribers 4 --connections 16 --duration 10            # spawns raftmq serve
    python -m benchmarks.sns_fanout --target http://127.0.0.1:4566 --subscribers 8 --json out.json

Publishers are closed loops of Query ``Publish`` calls on keep-alive connections (each message carries its send
time in ns); ``--consumers-per-queue`` consumers per queue long-poll (AWS JSON 1.0 ``ReceiveMessage``, raw
delivery) and delete in batches. Latency is publish-sent -> received by the consumer, so it includes the
consumer's polling. Reported: publishes/s, deliveries/s (= publishes x K when nothing is lost), delivery latency
percentiles, errors.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any
from urllib.parse import urlencode, urlsplit

import boto3

from benchmarks.http1 import HttpConnection
from benchmarks.server import SpawnedServer


def _head(host: str, content_type: str, length: int, extra: str = "") -> bytes:
    return (f"POST / HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\nContent-Length: {length}\r\n"
            f"{extra}\r\n").encode()


async def _publisher(endpoint: str, topic: str, stop: asyncio.Event, counts: dict[str, int]) -> None:
    parts = urlsplit(endpoint)
    conn = HttpConnection(parts.hostname or "127.0.0.1", parts.port or 80)
    try:
        while not stop.is_set():
            body = urlencode({"Action": "Publish", "Version": "2010-03-31", "TopicArn": topic,
                              "Message": str(time.time_ns())}).encode()
            try:
                response = await conn.request(_head(parts.netloc, "application/x-www-form-urlencoded",
                                                    len(body)), body)
            except (ConnectionError, TimeoutError):
                counts["errors"] += 1
                continue
            counts["published" if response.status == 200 else "errors"] += 1
    finally:
        conn.close()


async def _consumer(endpoint: str, queue_url: str, stop: asyncio.Event, latencies: list[float],
                    counts: dict[str, int]) -> None:
    parts = urlsplit(endpoint)
    conn = HttpConnection(parts.hostname or "127.0.0.1", parts.port or 80)

    async def call(op: str, payload: dict[str, Any]) -> dict[str, Any]:
        body = json.dumps(payload).encode()
        response = await conn.request(_head(parts.netloc, "application/x-amz-json-1.0", len(body),
                                            f"X-Amz-Target: AmazonSQS.{op}\r\n"), body)
        result: dict[str, Any] = json.loads(response.body or b"{}")
        return result

    try:
        while not stop.is_set():
            out = await call("ReceiveMessage", {"QueueUrl": queue_url, "MaxNumberOfMessages": 10,
                                                "WaitTimeSeconds": 1})
            messages = out.get("Messages", [])
            now = time.time_ns()
            for m in messages:
                latencies.append((now - int(m["Body"])) / 1e6)
            counts["delivered"] += len(messages)
            if messages:
                await call("DeleteMessageBatch", {"QueueUrl": queue_url, "Entries": [
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]})
    finally:
        conn.close()


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(endpoint: str, subscribers: int, connections: int, duration: float,
              consumers_per_queue: int = 2) -> dict[str, Any]:
    options: dict[str, Any] = {"region_name": "us-east-1", "aws_access_key_id": "x", "aws_secret_access_key": "x",
                               "endpoint_url": endpoint}
    sns = boto3.client("sns", **options)
    sqs = boto3.client("sqs", **options)
    tag = str(time.time_ns())
    topic = sns.create_topic(Name=f"bench-{tag}")["TopicArn"]
    urls = []
    for i in range(subscribers):
        url = sqs.create_queue(QueueName=f"bench-{tag}-{i}")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"})
        urls.append(url)
    counts = {"published": 0, "delivered": 0, "errors": 0}
    latencies: list[float] = []
    stop_publishing, stop_consuming = asyncio.Event(), asyncio.Event()
    consumers = [asyncio.create_task(_consumer(endpoint, url, stop_consuming, latencies, counts))
                 for url in urls for _ in range(consumers_per_queue)]
    publishers = [asyncio.create_task(_publisher(endpoint, topic, stop_publishing, counts))
                  for _ in range(connections)]
    started = time.monotonic()
    await asyncio.sleep(duration)  # the measured window
    stop_publishing.set()
    await asyncio.gather(*publishers)
    elapsed = time.monotonic() - started
    expected = counts["published"] * subscribers
    deadline = time.monotonic() + 30
    while counts["delivered"] < expected and time.monotonic() < deadline:
        await asyncio.sleep(0.1)  # let the consumers drain what was published in the window
    stop_consuming.set()
    await asyncio.gather(*consumers)
    for url in urls:
        sqs.delete_queue(QueueUrl=url)
    sns.delete_topic(TopicArn=topic)
    return {"subscribers": subscribers, "connections": connections, "consumers_per_queue": consumers_per_queue,
            "seconds": round(elapsed, 2),
            "publishes_per_s": round(counts["published"] / elapsed, 1),
            "deliveries_per_s": round(counts["delivered"] / elapsed, 1), "published": counts["published"],
            "delivered": counts["delivered"], "expected_deliveries": expected, "errors": counts["errors"],
            "latency_ms": {f"p{int(q * 1000) / 10:g}": round(_percentile(latencies, q), 2)
                           for q in (0.5, 0.95, 0.99, 0.999)}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sns_fanout", description=__doc__.splitlines()[0])
    parser.add_argument("--target", help="endpoint of a running server (default: spawn raftmq serve)")
    parser.add_argument("--subscribers", type=int, default=4, help="K subscribed queues")
    parser.add_argument("--connections", type=int, default=16, help="publisher connections")
    parser.add_argument("--consumers-per-queue", type=int, default=2)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--json", help="write the result here too")
    args = parser.parse_args(argv)
    if args.target:
        result = asyncio.run(run(args.target, args.subscribers, args.connections, args.duration,
                                 args.consumers_per_queue))
    else:
        with SpawnedServer() as server:
            result = asyncio.run(run(server.endpoint, args.subscribers, args.connections, args.duration,
                                     args.consumers_per_queue))
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        with open(args.json, "w") as out:
            out.write(text + "\n")
    return 0 if result["delivered"] >= result["expected_deliveries"] else 1


if __name__ == "__main__":
    sys.exit(main())
