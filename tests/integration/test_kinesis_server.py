"""Kinesis end to end: boto3 against a real ``raftmq serve`` process (LMDB, group commit, maintenance task).

Covers what only a real server shows: CBOR as the Java SDK sends it; records durable across kill -9 and restart
with identical sequence numbers; iterator expiry and status delays set through the environment; resharding while
producers write (no record lost, per-partition-key order kept across parent -> children).
"""

from __future__ import annotations

import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cbor2
import pytest
from botocore.exceptions import ClientError

from tests.integration.conftest import make_client, unique_name
from tests.integration.server import RaftMQServer


def _server(path: Path, **env: str) -> RaftMQServer:
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        srv = RaftMQServer(path)
        srv.start()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return srv


@pytest.fixture(scope="module")
def kserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RaftMQServer]:
    srv = _server(tmp_path_factory.mktemp("kinesis") / "data", RAFTMQ_KINESIS_ITERATOR_TTL_MS="2000")
    try:
        yield srv
        if srv.running:
            srv.stop()
    finally:
        srv.close()


@pytest.fixture(scope="module")
def kinesis(kserver: RaftMQServer) -> Any:
    return make_client("kinesis", kserver.endpoint)


def _drain(client: Any, stream: str, shard: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Every record of a shard from TRIM_HORIZON, and the last GetRecords page (ChildShards when closed)."""
    it = client.get_shard_iterator(StreamName=stream, ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    records: list[dict[str, Any]] = []
    while True:
        page = client.get_records(ShardIterator=it, Limit=1000)
        records.extend(page["Records"])
        it = page.get("NextShardIterator")
        if it is None or not page["Records"]:
            return records, page


def test_put_get_and_durable_across_kill9(tmp_path: Path) -> None:
    srv = _server(tmp_path / "data")
    try:
        client = make_client("kinesis", srv.endpoint)
        client.create_stream(StreamName="durable", ShardCount=2)
        sent = client.put_records(StreamName="durable", Records=[
            {"Data": f"r{i}".encode(), "PartitionKey": f"pk{i}"} for i in range(100)])
        assert sent["FailedRecordCount"] == 0
        before = {s: _drain(client, "durable", s)[0] for s in ("shardId-000000000000", "shardId-000000000001")}
        srv.kill9()
        srv.start()
        client = make_client("kinesis", srv.endpoint)
        after = {s: _drain(client, "durable", s)[0] for s in before}
        assert after == before
        assert sum(len(v) for v in after.values()) == 100
        more = client.put_record(StreamName="durable", Data=b"next", PartitionKey="pk0")
        last = max(int(r["SequenceNumber"]) for r in after[more["ShardId"]])
        assert int(more["SequenceNumber"]) > last
    finally:
        srv.close()


def test_iterator_expiry_configured_by_environment(kinesis: Any) -> None:
    name = unique_name("expiry")
    kinesis.create_stream(StreamName=name, ShardCount=1)
    it = kinesis.get_shard_iterator(StreamName=name, ShardId="shardId-000000000000",
                                    ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    kinesis.get_records(ShardIterator=it)
    time.sleep(2.2)  # the server's configured iterator lifetime is 2 s: nothing to wait on but the clock
    with pytest.raises(ClientError) as exc:
        kinesis.get_records(ShardIterator=it)
    assert exc.value.response["Error"]["Code"] == "ExpiredIteratorException"
    assert "tolerated delay of 2000 milliseconds" in exc.value.response["Error"]["Message"]


def test_reshard_while_producers_write(kinesis: Any, kserver: RaftMQServer) -> None:
    name = unique_name("reshard")
    kinesis.create_stream(StreamName=name, ShardCount=2)
    stop = threading.Event()
    acked: dict[str, list[int]] = {}
    errors: list[BaseException] = []

    def produce(worker: int) -> None:
        client = make_client("kinesis", kserver.endpoint)
        n = 0
        try:
            while not stop.is_set() or n < 20:
                batch = [(f"w{worker}-k{(n + i) % 5}", n + i) for i in range(10)]
                out = client.put_records(StreamName=name, Records=[
                    {"Data": f"{worker}:{seq}".encode(), "PartitionKey": key} for key, seq in batch])
                assert out["FailedRecordCount"] == 0
                for key, seq in batch:
                    acked.setdefault(key, []).append(seq)
                n += 10
        except BaseException as exc:  # surfaced in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=produce, args=(w,)) for w in range(3)]
    for t in threads:
        t.start()
    kinesis.split_shard(StreamName=name, ShardToSplit="shardId-000000000000", NewStartingHashKey=str(1 << 126))
    kinesis.merge_shards(StreamName=name, ShardToMerge="shardId-000000000002",
                         AdjacentShardToMerge="shardId-000000000003")
    kinesis.update_shard_count(StreamName=name, TargetShardCount=3, ScalingType="UNIFORM_SCALING")
    stop.set()
    for t in threads:
        t.join(60)
    assert not errors, errors
    # Read like a KCL: parents before children, following ChildShards from TRIM_HORIZON.
    shards = {s["ShardId"]: s for s in kinesis.list_shards(StreamName=name)["Shards"]}
    done: set[str] = set()
    order: list[str] = []
    pending = sorted(s for s, d in shards.items() if "ParentShardId" not in d)
    per_key: dict[str, list[int]] = {}
    while pending:
        shard = pending.pop(0)
        if shard in done:
            continue
        records, last = _drain(kinesis, name, shard)
        done.add(shard)
        order.append(shard)
        for rec in records:
            per_key.setdefault(rec["PartitionKey"], []).append(int(rec["Data"].split(b":")[1]))
        for child in last.get("ChildShards", []):
            if all(p in done for p in child["ParentShards"]):
                pending.append(child["ShardId"])
    assert done == set(shards)
    assert per_key == acked  # every acknowledged record once, in send order per partition key


def test_status_delay_from_environment(tmp_path: Path) -> None:
    srv = _server(tmp_path / "data", RAFTMQ_KINESIS_STATUS_DELAY_MS="300")
    try:
        client = make_client("kinesis", srv.endpoint)
        client.create_stream(StreamName="slow", ShardCount=1)
        assert client.describe_stream_summary(StreamName="slow")["StreamDescriptionSummary"][
            "StreamStatus"] == "CREATING"
        client.get_waiter("stream_exists").wait(StreamName="slow", WaiterConfig={"Delay": 0.2, "MaxAttempts": 50})
        assert client.describe_stream(StreamName="slow")["StreamDescription"]["StreamStatus"] == "ACTIVE"
    finally:
        srv.close()


def _cbor_call(endpoint: str, op: str, body: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
    """A request as the AWS SDK for Java sends it by default: CBOR body, X-Amz-Target, SigV4-style scope."""
    request = urllib.request.Request(endpoint + "/", data=cbor2.dumps(body), method="POST", headers={
        "Content-Type": "application/x-amz-cbor-1.1", "X-Amz-Target": f"Kinesis_20131202.{op}",
        "Authorization": "AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/kinesis/aws4_request, "
                         "SignedHeaders=host, Signature=0"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, headers, raw = response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        status, headers, raw = exc.code, dict(exc.headers), exc.read()
    assert headers["Content-Type"] == "application/x-amz-cbor-1.1"
    return status, headers, cbor2.loads(raw, semantic_decoders={1: lambda v, imm: cbor2.CBORTag(1, v)})


def test_cbor_as_the_java_sdk_sends_it(kinesis: Any, kserver: RaftMQServer) -> None:
    name = unique_name("cbor")
    status, _, _ = _cbor_call(kserver.endpoint, "CreateStream", {"StreamName": name, "ShardCount": 1})
    assert status == 200
    status, _, put = _cbor_call(kserver.endpoint, "PutRecord", {"StreamName": name, "Data": b"\x00\x01\xfe",
                                                                "PartitionKey": "pk"})
    assert status == 200 and len(put["SequenceNumber"]) == 56
    _, _, it = _cbor_call(kserver.endpoint, "GetShardIterator", {
        "StreamName": name, "ShardId": "shardId-000000000000", "ShardIteratorType": "AT_TIMESTAMP",
        "Timestamp": cbor2.CBORTag(1, int(time.time() * 1000) - 60_000)})
    _, _, page = _cbor_call(kserver.endpoint, "GetRecords", {"ShardIterator": it["ShardIterator"]})
    (record,) = page["Records"]
    assert record["Data"] == b"\x00\x01\xfe" and record["SequenceNumber"] == put["SequenceNumber"]
    assert record["ApproximateArrivalTimestamp"].tag == 1
    assert abs(record["ApproximateArrivalTimestamp"].value - time.time() * 1000) < 60_000
    # the JSON view of the same record agrees
    json_record = kinesis.get_records(ShardIterator=kinesis.get_shard_iterator(
        StreamName=name, ShardId="shardId-000000000000", ShardIteratorType="TRIM_HORIZON")["ShardIterator"])[
        "Records"][0]
    assert json_record["Data"] == b"\x00\x01\xfe"
    assert int(json_record["ApproximateArrivalTimestamp"].timestamp() * 1000) == record[
        "ApproximateArrivalTimestamp"].value
    status, headers, error = _cbor_call(kserver.endpoint, "DescribeStream", {"StreamName": name + "-missing"})
    assert status == 400 and error["__type"] == "ResourceNotFoundException"
    assert headers["x-amzn-ErrorType"] == "ResourceNotFoundException"


def test_subscribe_to_shard_with_boto3(kinesis: Any, kserver: RaftMQServer) -> None:
    """Enhanced fan-out over HTTP/1.1 chunked event streams: records already there, then records pushed live."""
    name = unique_name("efo")
    kinesis.create_stream(StreamName=name, ShardCount=1)
    arn = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamARN"]
    consumer = kinesis.register_stream_consumer(StreamARN=arn, ConsumerName="app")["Consumer"]["ConsumerARN"]
    kinesis.put_record(StreamName=name, Data=b"before", PartitionKey="k")
    response = kinesis.subscribe_to_shard(ConsumerARN=consumer, ShardId="shardId-000000000000",
                                          StartingPosition={"Type": "TRIM_HORIZON"})
    events = iter(response["EventStream"])
    first = next(events)["SubscribeToShardEvent"]
    assert [r["Data"] for r in first["Records"]] == [b"before"]
    producer = make_client("kinesis", kserver.endpoint)
    sent = producer.put_record(StreamName=name, Data=b"live", PartitionKey="k")
    for event in events:  # heartbeats may come before the live record
        records = event["SubscribeToShardEvent"]["Records"]
        if records:
            assert [r["Data"] for r in records] == [b"live"]
            assert event["SubscribeToShardEvent"]["ContinuationSequenceNumber"] == sent["SequenceNumber"]
            break
    response["EventStream"].close()
    with pytest.raises(ClientError) as exc:
        kinesis.subscribe_to_shard(ConsumerARN=consumer + "0", ShardId="shardId-000000000000",
                                   StartingPosition={"Type": "LATEST"})
    assert exc.value.response["Error"]["Code"] == "ResourceNotFoundException"
