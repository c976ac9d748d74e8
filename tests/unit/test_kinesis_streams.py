"""Kinesis stream lifecycle through botocore: create/describe/list/delete, modes, retention, tags, limits,
encryption, monitoring, policies, consumers; AWS's error codes and wording."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from broker.kinesis.config import KinesisConfig
from broker.model.kinesis_keys import HASH_MAX
from tests.unit.test_kinesis_harness import ACCOUNT, Env


@pytest.fixture
def env() -> Iterator[Env]:
    e = Env()
    yield e
    e.close()


def _error(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    err = exc.value.response["Error"]
    return err["Code"], err["Message"]


def test_create_describe_provisioned(env: Env) -> None:
    env.client.create_stream(StreamName="s", ShardCount=3)
    desc = env.client.describe_stream(StreamName="s")["StreamDescription"]
    assert desc["StreamStatus"] == "ACTIVE"
    assert desc["StreamARN"] == f"arn:aws:kinesis:us-east-1:{ACCOUNT}:stream/s"
    assert desc["StreamModeDetails"] == {"StreamMode": "PROVISIONED"}
    assert desc["RetentionPeriodHours"] == 24
    assert [s["ShardId"] for s in desc["Shards"]] == [f"shardId-00000000000{i}" for i in range(3)]
    step = (1 << 128) // 3
    ranges = [(int(s["HashKeyRange"]["StartingHashKey"]), int(s["HashKeyRange"]["EndingHashKey"]))
              for s in desc["Shards"]]
    assert ranges == [(0, step - 1), (step, 2 * step - 1), (2 * step, HASH_MAX)]
    for s in desc["Shards"]:
        start = s["SequenceNumberRange"]["StartingSequenceNumber"]
        assert len(start) == 56 and "EndingSequenceNumber" not in s["SequenceNumberRange"]
    assert desc["HasMoreShards"] is False
    assert desc["EncryptionType"] == "NONE"


def test_on_demand_has_four_shards_and_mode_details(env: Env) -> None:
    env.client.create_stream(StreamName="od", StreamModeDetails={"StreamMode": "ON_DEMAND"})
    summary = env.client.describe_stream_summary(StreamName="od")["StreamDescriptionSummary"]
    assert summary["OpenShardCount"] == 4
    assert summary["StreamModeDetails"] == {"StreamMode": "ON_DEMAND"}
    limits = env.client.describe_limits()
    assert limits["OnDemandStreamCount"] == 1 and limits["OpenShardCount"] == 4 and limits["ShardLimit"] == 500


def test_errors_use_aws_wording(env: Env) -> None:
    with pytest.raises(ClientError) as exc:
        env.client.describe_stream(StreamName="missing")
    assert _error(exc) == ("ResourceNotFoundException", f"Stream missing under account {ACCOUNT} not found.")
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    env.client.create_stream(StreamName="dup", ShardCount=1)
    with pytest.raises(ClientError) as exc:
        env.client.create_stream(StreamName="dup", ShardCount=1)
    assert _error(exc) == ("ResourceInUseException", f"Stream dup under account {ACCOUNT} already exists.")
    with pytest.raises(ClientError) as exc:
        env.client.create_stream(StreamName="bad name!", ShardCount=1)
    assert _error(exc)[0] == "ValidationException"


def test_shard_limit(env: Env) -> None:
    with pytest.raises(ClientError) as exc:
        env.client.create_stream(StreamName="big", ShardCount=501)
    code, message = _error(exc)
    assert code == "LimitExceededException"
    assert message.startswith(f"This request would exceed the shard limit for the account {ACCOUNT} in us-east-1. "
                              "Current shard count for the account: 0. Limit: 500. Number of additional shards that "
                              "would have resulted from this request: 501.")


def test_stream_arn_accepted_everywhere(env: Env) -> None:
    env.client.create_stream(StreamName="a", ShardCount=1)
    arn = f"arn:aws:kinesis:us-east-1:{ACCOUNT}:stream/a"
    assert env.client.describe_stream_summary(StreamARN=arn)["StreamDescriptionSummary"]["StreamName"] == "a"
    env.client.put_record(StreamARN=arn, Data=b"x", PartitionKey="k")
    assert len(env.client.list_shards(StreamARN=arn)["Shards"]) == 1
    with pytest.raises(ClientError) as exc:
        env.client.describe_stream_summary(StreamName="b", StreamARN=arn)
    assert _error(exc)[0] == "InvalidArgumentException"
    env.client.delete_stream(StreamARN=arn)
    assert env.client.list_streams()["StreamNames"] == []


def test_list_streams_pagination(env: Env) -> None:
    for name in ("c", "a", "b"):
        env.client.create_stream(StreamName=name, ShardCount=1)
    first = env.client.list_streams(Limit=2)
    assert first["StreamNames"] == ["a", "b"] and first["HasMoreStreams"] is True
    assert [s["StreamName"] for s in first["StreamSummaries"]] == ["a", "b"]
    rest = env.client.list_streams(NextToken=first["NextToken"])
    assert rest["StreamNames"] == ["c"] and rest["HasMoreStreams"] is False and "NextToken" not in rest
    assert env.client.list_streams(ExclusiveStartStreamName="a")["StreamNames"] == ["b", "c"]


def test_describe_stream_pages_shards(env: Env) -> None:
    env.client.create_stream(StreamName="p", ShardCount=5)
    page = env.client.describe_stream(StreamName="p", Limit=2)["StreamDescription"]
    assert len(page["Shards"]) == 2 and page["HasMoreShards"] is True
    rest = env.client.describe_stream(StreamName="p", ExclusiveStartShardId=page["Shards"][-1]["ShardId"])
    assert [s["ShardId"] for s in rest["StreamDescription"]["Shards"]] == [
        "shardId-000000000002", "shardId-000000000003", "shardId-000000000004"]


def test_status_transitions_with_delay() -> None:
    env = Env(KinesisConfig(account_id=ACCOUNT, status_delay_ms=5_000))
    try:
        env.client.create_stream(StreamName="d", ShardCount=1)
        assert env.client.describe_stream_summary(StreamName="d")["StreamDescriptionSummary"][
            "StreamStatus"] == "CREATING"
        with pytest.raises(ClientError) as exc:
            env.client.put_record(StreamName="d", Data=b"x", PartitionKey="k")
        assert _error(exc)[0] == "ResourceNotFoundException"
        assert env.maintain() == 0
        env.advance(5_000)
        assert env.maintain() == 1
        assert env.client.describe_stream(StreamName="d")["StreamDescription"]["StreamStatus"] == "ACTIVE"
        env.client.update_shard_count(StreamName="d", TargetShardCount=2, ScalingType="UNIFORM_SCALING")
        assert env.client.describe_stream(StreamName="d")["StreamDescription"]["StreamStatus"] == "UPDATING"
        with pytest.raises(ClientError) as exc:
            env.client.split_shard(StreamName="d", ShardToSplit="shardId-000000000001",
                                   NewStartingHashKey=str(1 << 120))
        assert _error(exc) == ("ResourceInUseException",
                               f"Stream d under account {ACCOUNT} not ACTIVE, instead in state UPDATING")
        env.advance(5_000)
        env.maintain()
        env.client.delete_stream(StreamName="d")
        assert env.client.describe_stream(StreamName="d")["StreamDescription"]["StreamStatus"] == "DELETING"
        env.advance(5_000)
        env.maintain()
        assert env.client.list_streams()["StreamNames"] == []
    finally:
        env.close()


def test_retention_bounds_and_direction(env: Env) -> None:
    env.client.create_stream(StreamName="r", ShardCount=1)
    env.client.increase_stream_retention_period(StreamName="r", RetentionPeriodHours=48)
    assert env.client.describe_stream_summary(StreamName="r")["StreamDescriptionSummary"][
        "RetentionPeriodHours"] == 48
    cases: list[tuple[Any, int, str]] = [
        (env.client.increase_stream_retention_period, 8761,
         "Maximum allowed retention period is 8760 hours. Requested retention period (8761 hours) is too long."),
        (env.client.decrease_stream_retention_period, 23,
         "Minimum allowed retention period is 24 hours. Requested retention period (23 hours) is too short."),
        (env.client.increase_stream_retention_period, 30,
         "Requested retention period (30 hours) for stream r can not be shorter than existing retention period "
         "(48 hours). Use DecreaseRetentionPeriod API."),
        (env.client.decrease_stream_retention_period, 72,
         "Requested retention period (72 hours) for stream r can not be longer than existing retention period "
         "(48 hours). Use IncreaseRetentionPeriod API."),
    ]
    for call, hours, message in cases:
        with pytest.raises(ClientError) as exc:
            call(StreamName="r", RetentionPeriodHours=hours)
        assert _error(exc) == ("InvalidArgumentException", message)
    env.client.decrease_stream_retention_period(StreamName="r", RetentionPeriodHours=24)


def test_tags_both_apis(env: Env) -> None:
    env.client.create_stream(StreamName="t", ShardCount=1, Tags={"a": "1"})
    env.client.add_tags_to_stream(StreamName="t", Tags={"b": "2", "c": "3"})
    page = env.client.list_tags_for_stream(StreamName="t", Limit=2)
    assert page["Tags"] == [{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}] and page["HasMoreTags"]
    rest = env.client.list_tags_for_stream(StreamName="t", ExclusiveStartTagKey="b")
    assert rest["Tags"] == [{"Key": "c", "Value": "3"}] and rest["HasMoreTags"] is False
    env.client.remove_tags_from_stream(StreamName="t", TagKeys=["a"])
    arn = f"arn:aws:kinesis:us-east-1:{ACCOUNT}:stream/t"
    env.client.tag_resource(ResourceARN=arn, Tags={"d": "4"})
    env.client.untag_resource(ResourceARN=arn, TagKeys=["b"])
    assert env.client.list_tags_for_resource(ResourceARN=arn)["Tags"] == [
        {"Key": "c", "Value": "3"}, {"Key": "d", "Value": "4"}]
    with pytest.raises(ClientError) as exc:
        env.client.add_tags_to_stream(StreamName="t", Tags={f"k{i}": "v" for i in range(49)})
    assert _error(exc)[0] == "InvalidArgumentException"


def test_mode_encryption_monitoring_policy_recorded(env: Env) -> None:
    env.client.create_stream(StreamName="m", ShardCount=1)
    arn = f"arn:aws:kinesis:us-east-1:{ACCOUNT}:stream/m"
    env.client.update_stream_mode(StreamARN=arn, StreamModeDetails={"StreamMode": "ON_DEMAND"})
    with pytest.raises(ClientError) as exc:
        env.client.update_stream_mode(StreamARN=arn, StreamModeDetails={"StreamMode": "ON_DEMAND"})
    assert _error(exc)[0] == "ResourceInUseException"
    env.client.start_stream_encryption(StreamName="m", EncryptionType="KMS", KeyId="alias/aws/kinesis")
    summary = env.client.describe_stream_summary(StreamName="m")["StreamDescriptionSummary"]
    assert (summary["EncryptionType"], summary["KeyId"]) == ("KMS", "alias/aws/kinesis")
    assert summary["StreamModeDetails"]["StreamMode"] == "ON_DEMAND"
    put = env.client.put_record(StreamName="m", Data=b"x", PartitionKey="k")
    assert put["EncryptionType"] == "KMS"
    env.client.stop_stream_encryption(StreamName="m", EncryptionType="KMS", KeyId="alias/aws/kinesis")
    assert env.client.describe_stream_summary(StreamName="m")["StreamDescriptionSummary"]["EncryptionType"] == "NONE"
    on = env.client.enable_enhanced_monitoring(StreamName="m", ShardLevelMetrics=["IncomingBytes"])
    assert on["CurrentShardLevelMetrics"] == [] and on["DesiredShardLevelMetrics"] == ["IncomingBytes"]
    all_on = env.client.enable_enhanced_monitoring(StreamName="m", ShardLevelMetrics=["ALL"])
    assert len(all_on["DesiredShardLevelMetrics"]) == 7
    off = env.client.disable_enhanced_monitoring(StreamName="m", ShardLevelMetrics=["IncomingBytes"])
    assert "IncomingBytes" not in off["DesiredShardLevelMetrics"] and len(off["DesiredShardLevelMetrics"]) == 6
    assert env.client.describe_stream(StreamName="m")["StreamDescription"]["EnhancedMonitoring"][0][
        "ShardLevelMetrics"] == off["DesiredShardLevelMetrics"]
    assert env.client.get_resource_policy(ResourceARN=arn)["Policy"] == "{}"
    policy = '{"Version": "2012-10-17", "Statement": []}'
    env.client.put_resource_policy(ResourceARN=arn, Policy=policy)
    assert env.client.get_resource_policy(ResourceARN=arn)["Policy"] == policy
    env.client.delete_resource_policy(ResourceARN=arn)
    assert env.client.get_resource_policy(ResourceARN=arn)["Policy"] == "{}"
    with pytest.raises(ClientError) as exc:
        env.client.put_resource_policy(ResourceARN=arn, Policy="not json")
    assert _error(exc)[0] == "InvalidArgumentException"


def test_consumers(env: Env) -> None:
    env.client.create_stream(StreamName="c", ShardCount=1)
    arn = f"arn:aws:kinesis:us-east-1:{ACCOUNT}:stream/c"
    consumer = env.client.register_stream_consumer(StreamARN=arn, ConsumerName="app")["Consumer"]
    assert consumer["ConsumerStatus"] == "ACTIVE"
    assert consumer["ConsumerARN"].startswith(f"{arn}/consumer/app:")
    with pytest.raises(ClientError) as exc:
        env.client.register_stream_consumer(StreamARN=arn, ConsumerName="app")
    assert _error(exc)[0] == "ResourceInUseException"
    by_arn = env.client.describe_stream_consumer(ConsumerARN=consumer["ConsumerARN"])["ConsumerDescription"]
    by_name = env.client.describe_stream_consumer(StreamARN=arn, ConsumerName="app")["ConsumerDescription"]
    assert by_arn == by_name and by_arn["StreamARN"] == arn
    for i in range(3):
        env.client.register_stream_consumer(StreamARN=arn, ConsumerName=f"z{i}")
    page = env.client.list_stream_consumers(StreamARN=arn, MaxResults=2)
    rest = env.client.list_stream_consumers(StreamARN=arn, NextToken=page["NextToken"])
    assert [c["ConsumerName"] for c in page["Consumers"] + rest["Consumers"]] == ["app", "z0", "z1", "z2"]
    with pytest.raises(ClientError) as exc:
        env.client.delete_stream(StreamName="c")
    assert _error(exc)[0] == "ResourceInUseException"
    env.client.deregister_stream_consumer(ConsumerARN=consumer["ConsumerARN"])
    with pytest.raises(ClientError) as exc:
        env.client.describe_stream_consumer(StreamARN=arn, ConsumerName="app")
    assert _error(exc)[0] == "ResourceNotFoundException"
    env.client.delete_stream(StreamName="c", EnforceConsumerDeletion=True)
    assert env.client.list_streams()["StreamNames"] == []


def test_consumer_limit_and_creating_status() -> None:
    env = Env(KinesisConfig(account_id=ACCOUNT, consumer_delay_ms=1_000))
    try:
        env.client.create_stream(StreamName="c", ShardCount=1)
        arn = f"arn:aws:kinesis:us-east-1:{ACCOUNT}:stream/c"
        first = env.client.register_stream_consumer(StreamARN=arn, ConsumerName="c0")["Consumer"]
        assert first["ConsumerStatus"] == "CREATING"
        env.advance(1_000)
        env.maintain()
        assert env.client.describe_stream_consumer(ConsumerARN=first["ConsumerARN"])["ConsumerDescription"][
            "ConsumerStatus"] == "ACTIVE"
        for i in range(1, 20):
            env.client.register_stream_consumer(StreamARN=arn, ConsumerName=f"c{i}")
        with pytest.raises(ClientError) as exc:
            env.client.register_stream_consumer(StreamARN=arn, ConsumerName="c20")
        assert _error(exc)[0] == "LimitExceededException"
    finally:
        env.close()


def test_update_max_record_size(env: Env) -> None:
    env.client.create_stream(StreamName="big", ShardCount=1)
    with pytest.raises(ClientError) as exc:
        env.client.put_record(StreamName="big", Data=b"x" * (1024 * 1024 + 1), PartitionKey="k")
    assert _error(exc)[0] == "ValidationException"
    env.client.update_max_record_size(StreamARN=f"arn:aws:kinesis:us-east-1:{ACCOUNT}:stream/big",
                                      MaxRecordSizeInKiB=2048)
    env.client.put_record(StreamName="big", Data=b"x" * (1024 * 1024 + 1), PartitionKey="k")
    assert env.client.describe_stream_summary(StreamName="big")["StreamDescriptionSummary"][
        "MaxRecordSizeInKiB"] == 2048


def test_create_and_target_argument_errors(env: Env) -> None:
    cases: list[tuple[Any, dict[str, Any], str]] = [
        (env.client.create_stream, {"StreamName": "p"}, "ShardCount is required for a stream in PROVISIONED mode."),
        (env.client.create_stream, {"StreamName": "p", "ShardCount": 2, "StreamModeDetails": {
            "StreamMode": "ON_DEMAND"}}, "ShardCount cannot be specified for a stream in ON_DEMAND mode."),
        (env.client.describe_stream_summary, {}, "Either StreamName or StreamARN should be provided."),
    ]
    for call, params, message in cases:
        with pytest.raises(ClientError) as exc:
            call(**params)
        assert _error(exc) == ("InvalidArgumentException", message)
    with pytest.raises(ClientError) as exc:
        env.client.delete_stream(StreamName="nope")
    assert _error(exc) == ("ResourceNotFoundException", f"Stream nope under account {ACCOUNT} not found.")
    with pytest.raises(ClientError) as exc:
        env.client.describe_account_settings()
    assert _error(exc)[0] == "UnknownOperationException"
