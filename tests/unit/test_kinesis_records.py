"""Kinesis records through botocore: routing, sequence numbers, iterators of every type, replay, expiry,
resharding with ChildShards, ListShards filters, retention and throughput limits."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from broker.kinesis.config import KinesisConfig
from broker.kinesis.service import KinesisService
from broker.model.kinesis_keys import HASH_MAX, parse_sequence_number
from broker.model.kinesis_model import KinesisModel
from broker.notify import Notifier
from broker.service import RequestContext
from tests.unit.test_kinesis_harness import ACCOUNT, Env


@pytest.fixture
def env() -> Iterator[Env]:
    e = Env()
    yield e
    e.close()


def _error(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    err = exc.value.response["Error"]
    return err["Code"], err["Message"]


def _md5(key: str) -> int:
    return int.from_bytes(hashlib.md5(key.encode()).digest(), "big")


def _read_all(env: Env, stream: str, shard: str, kind: str = "TRIM_HORIZON", **extra: Any) -> list[dict[str, Any]]:
    it = env.client.get_shard_iterator(StreamName=stream, ShardId=shard, ShardIteratorType=kind,
                                       **extra)["ShardIterator"]
    out: list[dict[str, Any]] = []
    while it:
        page = env.client.get_records(ShardIterator=it)
        out.extend(page["Records"])
        if not page["Records"]:
            break
        it = page.get("NextShardIterator")
    return out


def test_routing_by_md5_and_explicit_hash_key(env: Env) -> None:
    env.client.create_stream(StreamName="s", ShardCount=4)
    shards = env.client.list_shards(StreamName="s")["Shards"]
    for key in ("alpha", "beta", "gamma", "delta", "épsilon"):
        put = env.client.put_record(StreamName="s", Data=key.encode(), PartitionKey=key)
        expected = next(s["ShardId"] for s in shards
                        if int(s["HashKeyRange"]["StartingHashKey"]) <= _md5(key)
                        <= int(s["HashKeyRange"]["EndingHashKey"]))
        assert put["ShardId"] == expected
    put = env.client.put_record(StreamName="s", Data=b"x", PartitionKey="k", ExplicitHashKey=str(HASH_MAX))
    assert put["ShardId"] == "shardId-000000000003"
    with pytest.raises(ClientError) as exc:
        env.client.put_record(StreamName="s", Data=b"x", PartitionKey="k", ExplicitHashKey=str(HASH_MAX + 1))
    assert _error(exc) == ("InvalidArgumentException", "Invalid ExplicitHashKey. ExplicitHashKey must be in the "
                           f"range: [0, 2^128-1]. Specified value was {HASH_MAX + 1}")
    with pytest.raises(ClientError) as exc:
        env.client.put_record(StreamName="s", Data=b"x", PartitionKey="k", ExplicitHashKey="-1")
    assert _error(exc)[0] == "ValidationException"


def test_sequence_numbers_increase_and_encode_shard(env: Env) -> None:
    env.client.create_stream(StreamName="s", ShardCount=2)
    seqs: dict[str, list[str]] = {}
    for i in range(50):
        put = env.client.put_record(StreamName="s", Data=b"%d" % i, PartitionKey=f"pk{i}")
        seqs.setdefault(put["ShardId"], []).append(put["SequenceNumber"])
    shards = {s["ShardId"]: s for s in env.client.list_shards(StreamName="s")["Shards"]}
    for shard_id, numbers in seqs.items():
        assert all(len(n) == 56 and n.isdigit() for n in numbers)
        assert [int(n) for n in numbers] == sorted({int(n) for n in numbers})
        start = int(shards[shard_id]["SequenceNumberRange"]["StartingSequenceNumber"])
        assert start < int(numbers[0])
        assert {parse_sequence_number(n)[1] for n in numbers} == {int(shard_id[-12:])}  # type: ignore[index]


def test_put_records_batch_and_replay_identical(env: Env) -> None:
    env.client.create_stream(StreamName="s", ShardCount=1)
    records = [{"Data": bytes([i % 256]) * (i % 50 + 1), "PartitionKey": f"k{i % 7}"} for i in range(500)]
    out = env.client.put_records(StreamName="s", Records=records)
    assert out["FailedRecordCount"] == 0 and len(out["Records"]) == 500
    first = _read_all(env, "s", "shardId-000000000000")
    second = _read_all(env, "s", "shardId-000000000000")
    assert first == second
    assert [r["Data"] for r in first] == [r["Data"] for r in records]
    assert [r["SequenceNumber"] for r in first] == [r["SequenceNumber"] for r in out["Records"]]
    assert all(isinstance(r["ApproximateArrivalTimestamp"], datetime) for r in first)
    with pytest.raises(ClientError) as exc:
        env.client.put_records(StreamName="s", Records=records + records[:1])
    assert _error(exc)[0] == "ValidationException"
    with pytest.raises(ClientError) as exc:
        env.client.put_records(StreamName="s", Records=[{"Data": b"x" * 1_000_000, "PartitionKey": "k"}] * 6)
    assert _error(exc) == ("InvalidArgumentException", "Records size exceeds 5 MB limit")


def test_iterator_types_and_limit(env: Env) -> None:
    env.client.create_stream(StreamName="s", ShardCount=1)
    shard = "shardId-000000000000"
    seqs = [env.client.put_record(StreamName="s", Data=b"%d" % i, PartitionKey="k")["SequenceNumber"]
            for i in range(10)]
    assert [r["SequenceNumber"] for r in _read_all(env, "s", shard, "AT_SEQUENCE_NUMBER",
                                                    StartingSequenceNumber=seqs[3])] == seqs[3:]
    assert [r["SequenceNumber"] for r in _read_all(env, "s", shard, "AFTER_SEQUENCE_NUMBER",
                                                    StartingSequenceNumber=seqs[3])] == seqs[4:]
    latest = env.client.get_shard_iterator(StreamName="s", ShardId=shard,
                                           ShardIteratorType="LATEST")["ShardIterator"]
    empty = env.client.get_records(ShardIterator=latest)
    assert empty["Records"] == [] and empty["MillisBehindLatest"] == 0
    env.client.put_record(StreamName="s", Data=b"new", PartitionKey="k")
    assert [r["Data"] for r in env.client.get_records(ShardIterator=empty["NextShardIterator"])["Records"]] == [
        b"new"]
    it = env.client.get_shard_iterator(StreamName="s", ShardId=shard,
                                       ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    page = env.client.get_records(ShardIterator=it, Limit=3)
    assert [r["Data"] for r in page["Records"]] == [b"0", b"1", b"2"]
    assert page["MillisBehindLatest"] >= 0
    at = env.client.get_shard_iterator(StreamName="s", ShardId=shard, ShardIteratorType="AT_TIMESTAMP",
                                       Timestamp=datetime(2000, 1, 1, tzinfo=UTC))["ShardIterator"]
    assert len(env.client.get_records(ShardIterator=at)["Records"]) == 11


def test_at_timestamp_skips_earlier_records(env: Env) -> None:
    env.client.create_stream(StreamName="s", ShardCount=1)
    shard = "shardId-000000000000"
    env.client.put_record(StreamName="s", Data=b"old", PartitionKey="k")
    env.advance(1_500)
    middle = env.rep.now_ms()
    env.client.put_record(StreamName="s", Data=b"new", PartitionKey="k")
    records = _read_all(env, "s", shard, "AT_TIMESTAMP", Timestamp=datetime.fromtimestamp(middle / 1000, UTC))
    assert [r["Data"] for r in records] == [b"new"]
    with pytest.raises(ClientError) as exc:
        env.client.get_shard_iterator(StreamName="s", ShardId=shard, ShardIteratorType="AT_TIMESTAMP",
                                      Timestamp=datetime(2100, 1, 1, tzinfo=UTC))
    assert _error(exc)[1].startswith("The timestampInMillis parameter cannot be greater than the "
                                     "currentTimestampInMillis.")


def test_iterator_errors(env: Env) -> None:
    env.client.create_stream(StreamName="s", ShardCount=2)
    seq = env.client.put_record(StreamName="s", Data=b"x", PartitionKey="k", ExplicitHashKey="0")["SequenceNumber"]
    with pytest.raises(ClientError) as exc:
        env.client.get_shard_iterator(StreamName="s", ShardId="shardId-000000000001",
                                      ShardIteratorType="AT_SEQUENCE_NUMBER", StartingSequenceNumber=seq)
    assert _error(exc) == ("InvalidArgumentException", "Invalid StartingSequenceNumber. It encodes "
                           "shardId-000000000000, while it was used in a call to a shard with shardId-000000000001")
    with pytest.raises(ClientError) as exc:
        env.client.get_shard_iterator(StreamName="s", ShardId="shardId-000000000000",
                                      ShardIteratorType="AT_SEQUENCE_NUMBER")
    assert _error(exc)[0] == "InvalidArgumentException"
    with pytest.raises(ClientError) as exc:
        env.client.get_shard_iterator(StreamName="s", ShardId="shardId-000000000009",
                                      ShardIteratorType="LATEST")
    assert _error(exc) == ("ResourceNotFoundException",
                           f"Could not find shard shardId-000000000009 in stream s under account {ACCOUNT}.")
    it = env.client.get_shard_iterator(StreamName="s", ShardId="shardId-000000000000",
                                       ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    tampered = it[:-4] + ("AAAA" if it[-4:] != "AAAA" else "BBBB")
    for bad in (tampered, "garbage", "Zm9v"):
        with pytest.raises(ClientError) as exc:
            env.client.get_records(ShardIterator=bad)
        assert _error(exc) == ("InvalidArgumentException", "Invalid ShardIterator.")


def test_iterator_expires_after_ttl() -> None:
    env = Env(KinesisConfig(account_id=ACCOUNT, iterator_ttl_ms=300_000))
    try:
        env.client.create_stream(StreamName="s", ShardCount=1)
        it = env.client.get_shard_iterator(StreamName="s", ShardId="shardId-000000000000",
                                           ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        env.advance(299_000)
        env.client.get_records(ShardIterator=it)
        env.advance(2_000)
        with pytest.raises(ClientError) as exc:
            env.client.get_records(ShardIterator=it)
        code, message = _error(exc)
        assert code == "ExpiredIteratorException"
        assert message.startswith("Iterator expired. The iterator was created at time ")
        assert message.endswith("which is further in the future than the tolerated delay of 300000 milliseconds.")
    finally:
        env.close()


def test_split_merge_child_shards_and_closed_parent(env: Env) -> None:
    env.client.create_stream(StreamName="s", ShardCount=2)
    env.client.put_record(StreamName="s", Data=b"before", PartitionKey="k", ExplicitHashKey="5")
    parent_it = env.client.get_shard_iterator(StreamName="s", ShardId="shardId-000000000000",
                                              ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    half = (1 << 128) // 2
    env.client.split_shard(StreamName="s", ShardToSplit="shardId-000000000000", NewStartingHashKey=str(half // 2))
    shards = {s["ShardId"]: s for s in env.client.list_shards(StreamName="s")["Shards"]}
    assert set(shards) == {f"shardId-00000000000{i}" for i in range(4)}
    parent = shards["shardId-000000000000"]
    assert "EndingSequenceNumber" in parent["SequenceNumberRange"]
    assert shards["shardId-000000000002"]["ParentShardId"] == "shardId-000000000000"
    assert shards["shardId-000000000002"]["HashKeyRange"] == {"StartingHashKey": "0",
                                                              "EndingHashKey": str(half // 2 - 1)}
    page = env.client.get_records(ShardIterator=parent_it)
    assert [r["Data"] for r in page["Records"]] == [b"before"]
    assert "NextShardIterator" not in page
    assert [c["ShardId"] for c in page["ChildShards"]] == ["shardId-000000000002", "shardId-000000000003"]
    assert page["ChildShards"][0]["ParentShards"] == ["shardId-000000000000"]
    put = env.client.put_record(StreamName="s", Data=b"after", PartitionKey="k", ExplicitHashKey="5")
    assert put["ShardId"] == "shardId-000000000002"
    assert int(parent["SequenceNumberRange"]["EndingSequenceNumber"]) >= int(page["Records"][0]["SequenceNumber"])
    with pytest.raises(ClientError) as exc:
        env.client.split_shard(StreamName="s", ShardToSplit="shardId-000000000000", NewStartingHashKey="7")
    assert _error(exc)[0] == "ResourceInUseException"
    with pytest.raises(ClientError) as exc:
        env.client.split_shard(StreamName="s", ShardToSplit="shardId-000000000002", NewStartingHashKey="1")
    assert _error(exc)[0] == "InvalidArgumentException"
    with pytest.raises(ClientError) as exc:
        env.client.merge_shards(StreamName="s", ShardToMerge="shardId-000000000002",
                                AdjacentShardToMerge="shardId-000000000001")
    assert _error(exc) == ("InvalidArgumentException", f"Shard shardId-000000000001 in stream s under account "
                           f"{ACCOUNT} is not an adjacent shard to shardId-000000000002")
    env.client.merge_shards(StreamName="s", ShardToMerge="shardId-000000000002",
                            AdjacentShardToMerge="shardId-000000000003")
    merged = env.client.list_shards(StreamName="s", ShardFilter={"Type": "AT_LATEST"})["Shards"]
    assert [(s["ShardId"], s.get("ParentShardId"), s.get("AdjacentParentShardId")) for s in merged] == [
        ("shardId-000000000001", None, None), ("shardId-000000000004", "shardId-000000000002",
                                               "shardId-000000000003")]


def test_update_shard_count_limits_and_lineage(env: Env) -> None:
    env.client.create_stream(StreamName="s", ShardCount=2)
    with pytest.raises(ClientError) as exc:
        env.client.update_shard_count(StreamName="s", TargetShardCount=5, ScalingType="UNIFORM_SCALING")
    assert _error(exc) == ("ValidationException", "UpdateShardCount cannot scale up over double your current open "
                           "shard count. Current open shard count: 2 Target shard count: 5")
    out = env.client.update_shard_count(StreamName="s", TargetShardCount=3, ScalingType="UNIFORM_SCALING")
    assert (out["CurrentShardCount"], out["TargetShardCount"]) == (2, 3)
    open_ = env.client.list_shards(StreamName="s", ShardFilter={"Type": "AT_LATEST"})["Shards"]
    assert len(open_) == 3 and open_[1]["ParentShardId"] == "shardId-000000000000"
    assert open_[1]["AdjacentParentShardId"] == "shardId-000000000001"
    with pytest.raises(ClientError) as exc:
        env.client.update_shard_count(StreamName="s", TargetShardCount=1, ScalingType="UNIFORM_SCALING")
    assert _error(exc)[1].startswith("UpdateShardCount cannot scale down below half your current open shard count.")
    env.client.create_stream(StreamName="od", StreamModeDetails={"StreamMode": "ON_DEMAND"})
    with pytest.raises(ClientError) as exc:
        env.client.update_shard_count(StreamName="od", TargetShardCount=5, ScalingType="UNIFORM_SCALING")
    assert _error(exc)[0] == "ValidationException"


def test_list_shards_pagination_and_filters(env: Env) -> None:
    env.client.create_stream(StreamName="s", ShardCount=3)
    page = env.client.list_shards(StreamName="s", MaxResults=2)
    assert len(page["Shards"]) == 2
    rest = env.client.list_shards(NextToken=page["NextToken"])
    assert [s["ShardId"] for s in rest["Shards"]] == ["shardId-000000000002"] and "NextToken" not in rest
    with pytest.raises(ClientError) as exc:
        env.client.list_shards(StreamName="s", NextToken=page["NextToken"])
    assert _error(exc)[0] == "InvalidArgumentException"
    env.advance(300_001)
    with pytest.raises(ClientError) as exc:
        env.client.list_shards(NextToken=page["NextToken"])
    assert _error(exc) == ("ExpiredNextTokenException", "The pagination token passed to the operation is expired.")
    assert [s["ShardId"] for s in env.client.list_shards(StreamName="s", ExclusiveStartShardId="shardId-000000000000")[
        "Shards"]] == ["shardId-000000000001", "shardId-000000000002"]
    before_split = datetime.fromtimestamp(env.rep.now_ms() / 1000, UTC)
    env.advance(1_000)
    env.client.split_shard(StreamName="s", ShardToSplit="shardId-000000000000", NewStartingHashKey=str(1 << 100))

    def ids(kind: str, **extra: Any) -> list[str]:
        shards = env.client.list_shards(StreamName="s", ShardFilter={"Type": kind, **extra})["Shards"]
        return [s["ShardId"][-1] for s in shards]

    assert ids("AT_LATEST") == ["1", "2", "3", "4"]
    assert ids("AT_TRIM_HORIZON") == ["0", "1", "2"]
    assert ids("FROM_TRIM_HORIZON") == ["0", "1", "2", "3", "4"]
    assert ids("AFTER_SHARD_ID", ShardId="shardId-000000000002") == ["3", "4"]
    assert ids("AT_TIMESTAMP", Timestamp=before_split) == ["0", "1", "2"]
    assert ids("FROM_TIMESTAMP", Timestamp=before_split) == ["0", "1", "2", "3", "4"]
    env.advance(1_000)
    assert ids("FROM_TIMESTAMP", Timestamp=datetime.fromtimestamp(env.rep.now_ms() / 1000, UTC)) == [
        "1", "2", "3", "4"]


def test_retention_expiry_and_closed_shard_removal(env: Env) -> None:
    env.client.create_stream(StreamName="s", ShardCount=1)
    env.client.put_record(StreamName="s", Data=b"old", PartitionKey="k")
    env.advance(2_000)
    env.client.put_record(StreamName="s", Data=b"young", PartitionKey="k")
    env.client.split_shard(StreamName="s", ShardToSplit="shardId-000000000000", NewStartingHashKey=str(1 << 100))
    env.advance(24 * 3_600_000 - 1_000)
    assert env.maintain() == 1
    assert [r["Data"] for r in _read_all(env, "s", "shardId-000000000000")] == [b"young"]
    env.advance(2_000)
    env.maintain()
    assert [s["ShardId"] for s in env.client.list_shards(StreamName="s")["Shards"]] == [
        "shardId-000000000001", "shardId-000000000002"]
    assert env.model.next_due() is None


def test_deleted_stream_records_are_removed(env: Env) -> None:
    env.client.create_stream(StreamName="s", ShardCount=2)
    env.client.put_records(StreamName="s", Records=[{"Data": b"x", "PartitionKey": str(i)} for i in range(20)])
    env.client.delete_stream(StreamName="s")
    assert env.model.next_due() == 0
    env.model.restore(env.rep.tables)  # a restart before the clean-up: the graveyard comes back from the tables
    assert env.model.next_due() == 0
    env.maintain()
    for table in ("kinesis_records", "kinesis_shards", "kinesis_chunks", "kinesis_streams"):
        assert env.rep.tables.tables.get(table) == {}, table
    assert env.model.next_due() is None


def test_throughput_limits() -> None:
    env = Env(KinesisConfig(account_id=ACCOUNT, throughput_limits=True))
    try:
        env.client.create_stream(StreamName="s", ShardCount=1)
        env.advance(1_000 - env.rep.now_ms() % 1_000)  # start of a fresh second, which the test does not leave
        records = [{"Data": b"x", "PartitionKey": "k"} for _ in range(500)]
        assert env.client.put_records(StreamName="s", Records=records)["FailedRecordCount"] == 0
        assert env.client.put_records(StreamName="s", Records=records)["FailedRecordCount"] == 0
        out = env.client.put_records(StreamName="s", Records=records[:3])
        assert out["FailedRecordCount"] == 3
        assert out["Records"][0] == {
            "ErrorCode": "ProvisionedThroughputExceededException",
            "ErrorMessage": f"Rate exceeded for shard shardId-000000000000 in stream s under account {ACCOUNT}."}
        with pytest.raises(ClientError) as exc:
            env.client.put_record(StreamName="s", Data=b"x", PartitionKey="k")
        assert _error(exc)[0] == "ProvisionedThroughputExceededException"
        it = env.client.get_shard_iterator(StreamName="s", ShardId="shardId-000000000000",
                                           ShardIteratorType="LATEST")["ShardIterator"]
        for _ in range(5):
            it = env.client.get_records(ShardIterator=it)["NextShardIterator"]
        with pytest.raises(ClientError) as exc:
            env.client.get_records(ShardIterator=it)
        assert _error(exc) == ("ProvisionedThroughputExceededException",
                               f"Rate exceeded for Shard - {ACCOUNT}/s/shardId-000000000000")
        env.advance(1_000)
        env.client.put_record(StreamName="s", Data=b"x", PartitionKey="k")
        env.client.get_records(ShardIterator=it)
    finally:
        env.close()


def test_records_encrypted_at_rest_while_encryption_is_on(env: Env) -> None:
    env.client.create_stream(StreamName="e", ShardCount=1)
    env.client.put_record(StreamName="e", Data=b"plain-before", PartitionKey="k")
    env.client.start_stream_encryption(StreamName="e", EncryptionType="KMS", KeyId="alias/aws/kinesis")
    secret = b"very secret payload"
    env.client.put_records(StreamName="e", Records=[{"Data": secret, "PartitionKey": "k"}])
    env.client.stop_stream_encryption(StreamName="e", EncryptionType="KMS", KeyId="alias/aws/kinesis")
    env.client.put_record(StreamName="e", Data=b"plain-after", PartitionKey="k")
    stored = b"".join(env.rep.tables.tables["kinesis_records"].values())
    assert b"plain-before" in stored and b"plain-after" in stored
    assert secret not in stored  # ciphertext in the records table (and so in snapshots)
    records = _read_all(env, "e", "shardId-000000000000")
    assert [r["Data"] for r in records] == [b"plain-before", secret, b"plain-after"]
    assert [r.get("EncryptionType") for r in records] == [None, "KMS", None]
    # Another node (fresh model and service over the same tables) opens them: the key is replicated state.
    model = KinesisModel()
    model.restore(env.rep.tables)
    other = KinesisService(model, env.rep, env.rep.tables, Notifier(), env.config)
    ctx = RequestContext(request_id="r", account_id=ACCOUNT, region="us-east-1", endpoint_url="", protocol="json")
    it = env.loop.run_until_complete(other.handle("GetShardIterator", {
        "StreamName": "e", "ShardId": "shardId-000000000000", "ShardIteratorType": "TRIM_HORIZON"}, ctx))
    page = env.loop.run_until_complete(other.handle("GetRecords", {"ShardIterator": it["ShardIterator"]}, ctx))
    assert [r["Data"] for r in page["Records"]] == [b"plain-before", secret, b"plain-after"]
