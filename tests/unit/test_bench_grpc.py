"""The grpc-* scenarios against a fake gRPC broker with known behaviour: what the harness counts is what it saw."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Iterator

import grpc
import pytest

from benchmarks import cli, clientloop, grpcload, runner
from benchmarks.awsjson import Target
from benchmarks.fakegrpc import LAG_MS, MISSING, FakeBroker, serve
from benchmarks.pacing import closed
from benchmarks.scenarios.grpc_queues import GrpcBatch, GrpcStream, check_received
from benchmarks.scenarios.grpc_streams import GrpcStreamsPut, GrpcStreamsTail
from benchmarks.scenarios.sqs_cycle import stamp, stamp_of
from benchmarks.stats import WorkerStats
from proto.broker.v1 import queues_pb2 as pb

CONFIG = runner.RunConfig(processes=2, connections=2, duration=1.0, server_pid=os.getpid(), progress=False,
                          uvloop=True)


@pytest.fixture
def fake() -> Iterator[tuple[FakeBroker, Target]]:
    broker = FakeBroker(receive_count=7)
    server, port = serve(broker)
    try:
        yield broker, Target("http://127.0.0.1:1", grpc=f"127.0.0.1:{port}")
    finally:
        server.stop(None)


def test_batch_cycle_counts_what_the_server_saw(fake: tuple[FakeBroker, Target]) -> None:
    broker, target = fake
    result = runner.run(GrpcBatch(batch=20), target, CONFIG)
    assert result.failures == [] and result.errors == {}
    assert result.counters["sent"] == broker.entries["Send"] == 20 * broker.calls["Send"] > 0
    assert result.counters["received"] == broker.entries["Receive"] == 7 * broker.calls["Receive"]
    assert result.counters["deleted"] == broker.entries["Delete"] == result.total
    assert {k: result.latency[k].count for k in ("Send", "Receive", "Delete")} == {
        k: broker.calls[k] for k in ("Send", "Receive", "Delete")}
    assert result.latency["send-to-receive"].count == result.counters["received"]
    assert broker.calls["CreateQueue"] == broker.calls["DeleteQueue"] == 1
    assert result.server_cpu_us_per_unit is not None and result.rate == result.total / result.elapsed


def test_entry_failures_are_counted_by_code_and_not_as_throughput(fake: tuple[FakeBroker, Target]) -> None:
    broker, target = fake
    broker.fail_first = True
    result = runner.run(GrpcBatch(batch=10), target, CONFIG)
    deletes = broker.calls["Delete"]
    assert result.errors == {"Delete:ReceiptHandleIsInvalid": deletes} and deletes > 0
    assert result.total == broker.entries["Delete"] - deletes


def test_stream_consumers_ack_on_the_stream_and_producers_send(fake: tuple[FakeBroker, Target]) -> None:
    broker, target = fake
    scenario = GrpcStream(batch=10, consumers=2)
    assert [i for i in range(4) if scenario.is_consumer(i)] == [1, 3]
    result = runner.run(scenario, target, CONFIG)
    assert result.failures == [] and result.errors == {}
    assert broker.calls["Consume"] == 2  # one stream per consumer connection, held for the whole run
    assert result.counters["sent"] == broker.entries["Send"] > 0
    # the stream is cancelled at the deadline: an ack (of 7) or a push still on the wire then is not counted
    assert result.total == result.counters["deleted"] > 0
    assert 0 <= broker.entries["Ack"] - result.total <= 7 * 2
    assert 0 <= broker.entries["Pushed"] - result.counters["received"] <= 7 * 2
    assert result.latency["Ack"].count == result.total // 7
    assert result.latency["send-to-consume"].count == result.counters["received"]


def test_streams_put_counts_records(fake: tuple[FakeBroker, Target]) -> None:
    broker, target = fake
    result = runner.run(GrpcStreamsPut(shards=2, records=50), target, CONFIG)
    assert result.failures == [] and result.errors == {}
    assert result.total == broker.entries["Put"] == 50 * broker.calls["Put"] > 0
    assert result.latency["Put"].count == broker.calls["Put"]
    assert broker.calls["CreateStream"] == broker.calls["DeleteStream"] == 1


async def test_a_failed_call_is_counted_by_the_aws_code_of_its_detail(fake: tuple[FakeBroker, Target]) -> None:
    _, target = fake
    scenario = GrpcBatch(batch=3)
    scenario.queue_name = MISSING
    stats = WorkerStats("deleted")
    async with grpcload.channel(target) as chan:
        await scenario.send(grpcload.queues_stub(chan), 0, stats, None)
    assert stats.errors == {"Send:QueueDoesNotExist": 1} and "Send" not in stats.latency


async def test_without_a_detail_the_grpc_status_names_the_error() -> None:
    stats = WorkerStats("deleted")
    async with grpc.aio.insecure_channel("127.0.0.1:1") as chan:  # nothing listens on port 1
        stub = grpcload.queues_stub(chan)
        got = await grpcload.timed_rpc("Send", stub.Send, GrpcBatch().request(0)[0], stats, timeout=2)
    assert got is None and stats.errors == {"Send:UNAVAILABLE": 1}


def test_targets_without_a_grpc_address_are_refused() -> None:
    with pytest.raises(grpcload.NoGrpcAddress):
        asyncio.run(GrpcBatch().setup(Target("http://127.0.0.1:1")))


def test_connections_are_spread_over_the_grpc_addresses_of_a_cluster() -> None:
    target = Target("http://a:1", alternates=("http://b:1",), grpc="a:2", grpc_alternates=("b:2",))
    assert [(t.endpoint, t.grpc) for t in map(target.for_connection, range(3))] == [
        ("http://a:1", "a:2"), ("http://b:1", "b:2"), ("http://a:1", "a:2")]


def test_cli_runs_a_grpc_scenario_against_a_target_with_its_grpc_address(fake: tuple[FakeBroker, Target]) -> None:
    broker, target = fake
    code = cli.main(["run", "grpc-streams-put", "--target", "http://127.0.0.1:1", "--grpc-target", target.grpc,
                     "--server-pid", str(os.getpid()), "--duration", "0.5", "--processes", "1",
                     "--connections", "1", "--records", "5", "--no-progress"])
    assert code == 0 and broker.entries["Put"] == 5 * broker.calls["Put"] > 0


def test_closed_pacer_stops_a_quiet_consume_stream_at_the_deadline(fake: tuple[FakeBroker, Target]) -> None:
    broker, target = fake
    broker.receive_count = 0  # the stream pushes empty batches and waits for acks that never come: quiet
    scenario = GrpcStream(consumers=1)
    scenario.queue_name = "q"
    stats = WorkerStats("deleted")
    stop = asyncio.Event()

    async def run() -> None:
        loop = asyncio.get_running_loop()
        loop.call_later(0.3, stop.set)
        await asyncio.wait_for(scenario.run_connection(target, stats, closed(stop.is_set), 1), 5)

    asyncio.run(run())
    assert stats.errors == {} and broker.calls["Consume"] == 1


def test_rate_paces_only_the_producers_of_a_scenario_with_consumers() -> None:
    stream = GrpcStream(consumers=2)
    assert [runner.paced_slot(stream, 6, i) for i in range(6)] == [(0, 4), None, (1, 4), None, (2, 4), (3, 4)]
    assert [runner.paced_slot(GrpcBatch(), 3, i) for i in range(3)] == [(0, 3), (1, 3), (2, 3)]


def test_open_loop_stream_sends_at_the_offered_rate(fake: tuple[FakeBroker, Target]) -> None:
    broker, target = fake
    config = runner.RunConfig(processes=1, connections=4, duration=1.0, progress=False, rate=2000.0)
    result = runner.run(GrpcStream(batch=10, consumers=2), target, config)
    assert result.failures == [] and result.errors == {}
    # 2,000 msgs/s for 1 s in batches of 10, all of it on the 2 producers (the consumers are not paced). Never more
    # than the schedule; at least half of it even on a loaded machine (a generator that falls behind sends less).
    assert 1000 <= broker.entries["Send"] == result.counters["sent"] <= 2000 + 2 * 10
    assert result.latency["Send@intended"].count == broker.calls["Send"]


def test_tail_readers_get_what_producers_put_with_its_latency_and_lag(fake: tuple[FakeBroker, Target]) -> None:
    broker, target = fake
    scenario = GrpcStreamsTail(shards=2, records=10)
    result = runner.run(scenario, target, CONFIG)
    assert scenario.shard_ids == ["s0", "s1"] and result.failures == [] and result.errors == {}
    assert broker.calls["Tail"] == 2  # connections 1 and 3: one reader per shard (s0, s1) for the whole run
    assert result.counters["put"] == broker.entries["Put"] > 0
    # a push cancelled on the wire at the deadline is not counted; nothing is counted twice
    assert 0 < result.total == result.counters["consumed"] <= broker.entries["Tailed"] <= broker.entries["Put"]
    assert result.latency["put-to-get"].count == result.total
    lag = result.latency["consumer-lag"]
    assert lag.count > 0 and lag.summary()["p50"] == pytest.approx(LAG_MS * 1000, rel=0.01)


def test_each_send_is_stamped_anew_and_fifo_ids_never_repeat() -> None:
    scenario = GrpcBatch(batch=3, fifo=True)
    scenario.queue_name = "q.fifo"
    first, md5 = scenario.request(4)
    second, _ = scenario.request(4)
    bodies = {e.body for e in first.entries}
    assert len(bodies) == 1 and md5 == hashlib.md5(bodies.pop().encode()).hexdigest()
    assert stamp_of(first.entries[0].body) < stamp_of(second.entries[0].body)  # type: ignore[operator]
    ids = [e.deduplication_id for e in (*first.entries, *second.entries)]
    assert len(set(ids)) == 6 and {e.group_id for e in first.entries} == {"g4"}
    assert first.queue == "q.fifo" and len(first.entries[0].body) == scenario.body_size


def test_received_runs_share_a_stamp_yet_every_message_is_counted_and_checked() -> None:
    stats = WorkerStats("deleted")
    a, b = stamp(1_000_000) + "a" * 10, stamp(3_000_000) + "b" * 10
    good = {a: hashlib.md5(a.encode()).hexdigest(), b: hashlib.md5(b.encode()).hexdigest()}
    messages = [pb.Message(body=body, md5_of_body=good[body], receipt_handle=f"h{i}")
                for i, body in enumerate([a, a, b, b, b, a])]
    messages[3].md5_of_body = "0" * 32
    assert check_received(messages, "lat", stats) == [f"h{i}" for i in range(6)]
    assert stats.errors == {"Receive:MD5Mismatch": 1} and stats.counters == {"received": 6}
    hist = stats.latency["lat"]
    assert hist.count == 6 and hist.max - hist.min in range(1_999, 2_001)  # a's three and b's three, 2 ms apart


@pytest.mark.parametrize("wait", [True, False])
async def test_client_loops_send_and_ack_every_message_through_the_client(
        fake: tuple[FakeBroker, Target], wait: bool) -> None:
    broker, target = fake
    rates = await clientloop.measure(target.grpc, 35, wait=wait)
    assert rates.failed == 0 and rates.sent_per_s > 0 and rates.consumed_per_s > 0
    assert broker.entries["Send"] == 35 and broker.entries["Ack"] >= 35  # the fake pushes 7 at a time
    assert broker.calls["CreateQueue"] == broker.calls["DeleteQueue"] == 1
    if not wait:
        assert broker.calls["Send"] == 1  # queued without waiting: one batch
