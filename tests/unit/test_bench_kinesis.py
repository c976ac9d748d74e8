"""Kinesis scenarios: records carry their send time, shards get one consumer each, counts and latencies add up
against a real ``raftmq serve`` (the only Kinesis server the harness can measure without network access)."""

from __future__ import annotations

import base64

import orjson

from benchmarks import runner
from benchmarks.awsjson import Target
from benchmarks.scenarios.kinesis import STAMP_BYTES, KinesisCycle, KinesisPut, stamp, stamp_of
from benchmarks.server import SpawnedServer
from benchmarks.stats import WorkerStats


def test_the_stamp_round_trips_and_its_base64_is_a_prefix_of_the_record() -> None:
    assert len(stamp(123)) == STAMP_BYTES and stamp_of(stamp(123) + b"xyz") == 123
    assert stamp_of(b"no stamp here, but long enough") is None and stamp_of(b"t=1;") is None
    scenario = KinesisPut(records=3, record_size=40)
    scenario.stream_name = "s"
    body = scenario.put_template(7).replace(b"@" * 32, base64.b64encode(stamp(99)))
    request = orjson.loads(body)
    assert request["StreamName"] == "s"
    assert [r["PartitionKey"] for r in request["Records"]] == ["c7-r0", "c7-r1", "c7-r2"]
    data = base64.b64decode(request["Records"][0]["Data"])
    assert len(data) == 40 and stamp_of(data) == 99


def test_odd_connections_consume_one_shard_each_while_shards_remain() -> None:
    scenario = KinesisCycle(shards=2)
    scenario.shard_ids = ["s0", "s1"]
    assert [scenario.consumer_shard(i) for i in range(6)] == [None, "s0", None, "s1", None, None]


def test_put_entries_with_an_error_code_are_errors_not_records() -> None:
    stats = WorkerStats("put")
    KinesisPut._count_put({"FailedRecordCount": 1, "Records": [
        {"SequenceNumber": "1", "ShardId": "a"}, {"ErrorCode": "ProvisionedThroughputExceededException"},
        {"SequenceNumber": "2", "ShardId": "b"}]}, stats)
    assert stats.counters == {"put": 2}
    assert stats.errors == {"PutRecords:ProvisionedThroughputExceededException": 1}


def test_got_records_give_end_to_end_latency_and_lag() -> None:
    stats = WorkerStats("consumed")
    records = [{"Data": base64.b64encode(stamp(0) + b"x" * 10).decode()},
               {"Data": base64.b64encode(b"plain record without a stamp").decode()}]
    assert KinesisCycle._count_got({"Records": records, "MillisBehindLatest": 7}, stats) == 2
    assert stats.counters == {"consumed": 2} and stats.errors == {"GetRecords:NoStamp": 1}
    assert stats.latency["put-to-get"].count == 1 and stats.latency["put-to-get"].min > 0
    assert stats.latency["consumer-lag"].max == 7000


def test_kinesis_cycle_against_raftmq_consumes_what_was_put() -> None:
    with SpawnedServer() as server:
        config = runner.RunConfig(processes=1, connections=4, duration=1.0, server_pid=server.pid, progress=False)
        result = runner.run(KinesisCycle(shards=2, records=20), Target(server.endpoint), config)
    assert result.failures == [] and result.errors == {}
    assert 0 < result.total <= result.counters["put"]
    assert result.counters["put"] == 20 * result.latency["PutRecords"].count  # 2 producers x 20 records a call
    assert result.latency["put-to-get"].count == result.total
    assert result.latency["GetShardIterator"].count == 2  # one per consumer, iterators never expired
    assert result.server_cpu_us_per_unit is not None


def test_kinesis_put_open_loop_keeps_the_rate() -> None:
    with SpawnedServer() as server:
        config = runner.RunConfig(processes=1, connections=2, duration=1.0, progress=False, rate=400.0)
        result = runner.run(KinesisPut(shards=1, records=10), Target(server.endpoint), config)
    assert result.errors == {}
    # 40 calls of 10 scheduled in 1 s (+1 started at the deadline per conn); a closed loop would put ~100x more.
    # Fewer when the shared machine stalls the server: the schedule is a ceiling, not a promise.
    assert 100 <= result.total <= 420
    intended = result.latency["PutRecords@intended"]
    assert intended.count == result.latency["PutRecords"].count
    # timed from the schedule: never less (give or take the event loop's 1 ms timer resolution)
    assert intended.max + 1000 >= result.latency["PutRecords"].max


def test_a_consumer_starts_at_trim_horizon_and_resumes_after_the_last_record_it_counted() -> None:
    scenario = KinesisCycle()
    scenario.stream_name = "s"
    assert orjson.loads(scenario.iterator_request("shard-1", None)) == {
        "StreamName": "s", "ShardId": "shard-1", "ShardIteratorType": "TRIM_HORIZON"}
    assert orjson.loads(scenario.iterator_request("shard-1", "4960")) == {
        "StreamName": "s", "ShardId": "shard-1", "ShardIteratorType": "AFTER_SEQUENCE_NUMBER",
        "StartingSequenceNumber": "4960"}
