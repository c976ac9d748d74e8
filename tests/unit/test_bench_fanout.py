"""sns-fanout against a fake SNS+SQS that really fans out; FIFO variant of sqs-cycle; Query client details."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator

import orjson
import pytest

from benchmarks import report, runner
from benchmarks.awsjson import AwsError, Target
from benchmarks.awsquery import AwsQueryClient, xml_value
from benchmarks.fakesns import FakeSns
from benchmarks.fakesqs import start
from benchmarks.scenarios.sns_fanout import SnsFanout
from benchmarks.scenarios.sqs_cycle import PLACEHOLDER, SqsCycle, stamp


@pytest.fixture
def fake_sns() -> Iterator[tuple[FakeSns, Target]]:
    """The fake on its own loop in a thread, because the runner blocks and spawns processes."""
    sns = FakeSns()
    ready = threading.Event()
    port: list[int] = []
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    async def serve() -> None:
        server = await start(sns)
        port.append(server.sockets[0].getsockname()[1])
        ready.set()
        async with server:
            await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),))
    thread.start()
    assert ready.wait(10)
    try:
        yield sns, Target(f"http://127.0.0.1:{port[0]}")
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.close()


def test_fanout_counts_every_delivery_the_server_handed_out(fake_sns: tuple[FakeSns, Target]) -> None:
    sns, target = fake_sns
    scenario = SnsFanout(subscribers=2, wait_seconds=0)
    config = runner.RunConfig(processes=1, connections=6, duration=1.0, server_pid=os.getpid(), progress=False)
    result = runner.run(scenario, target, config)
    assert result.failures == [] and result.errors == {}
    published = result.counters["published"]
    assert published == sns.entries["published"] == sns.calls["Publish"] > 0
    assert result.total == result.counters["delivered"] == sns.entries["delivered"] > 0
    assert result.total <= 2 * published  # every publish reaches both queues; what is left was still queued
    assert result.counters["deleted"] == sns.entries["deleted"] == result.total
    assert result.latency["publish-to-receive"].count == result.total
    assert result.latency["Publish"].count == published
    assert sns.calls["CreateTopic"] == sns.calls["DeleteTopic"] == 1 and sns.calls["Subscribe"] == 2
    assert sns.queues == {} and sns.topics == {}  # teardown removed everything it made
    assert "CPU-us/delivery" in report.summary(result)


def test_connections_alternate_publishers_and_consumers_of_each_queue() -> None:
    scenario = SnsFanout(subscribers=2, consumers_per_queue=2, queue_urls=["q0", "q1"])
    assert [scenario.consumer_queue(i) for i in range(10)] == [
        None, "q0", None, "q1", None, "q0", None, "q1", None, None]


async def test_query_errors_carry_the_xml_code(fake_sns: tuple[FakeSns, Target]) -> None:
    _, target = fake_sns
    client = AwsQueryClient(target)
    try:
        with pytest.raises(AwsError) as info:
            await client.call("Publish", {"TopicArn": "arn:aws:sns:us-east-1:0:none", "Message": "m"})
        arn = xml_value(await client.call("CreateTopic", {"Name": "t"}), "TopicArn")
    finally:
        client.close()
    assert info.value.code == "NotFound" and info.value.status == 400
    assert arn == "arn:aws:sns:us-east-1:000000000000:t"


def test_fifo_entries_have_a_group_per_connection_and_fresh_deduplication_ids() -> None:
    cycle = SqsCycle(batch=3, fifo=True)
    template = orjson.dumps({"Entries": cycle.entries(7, "body")})
    first = orjson.loads(template.replace(PLACEHOLDER, stamp(1).encode()))["Entries"]
    second = orjson.loads(template.replace(PLACEHOLDER, stamp(2).encode()))["Entries"]
    assert {e["MessageGroupId"] for e in first + second} == {"g7"}
    ids = [e["MessageDeduplicationId"] for e in first + second]
    assert len(set(ids)) == 6 and all(len(i) <= 128 for i in ids)
    assert "MessageGroupId" not in SqsCycle(batch=3).entries(7, "body")[0]
    with pytest.raises(ValueError, match="fifo"):
        SqsCycle(fifo=True, body_size=16)
