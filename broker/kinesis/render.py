"""Model objects -> the output structures of the Kinesis service model (plain dicts; the codec encodes them).

Timestamps are epoch seconds as floats (the codecs turn them into what each wire expects).
"""

from __future__ import annotations

from typing import Any

from broker.kinesis.records import StoredRecord
from broker.model.kinesis_stream import Consumer, Shard, Stream


def ts(ms: int) -> float:
    return ms / 1000


def shard(s: Shard) -> dict[str, Any]:
    out: dict[str, Any] = {
        "ShardId": s.id,
        "HashKeyRange": {"StartingHashKey": str(s.start_hash), "EndingHashKey": str(s.end_hash)},
        "SequenceNumberRange": {"StartingSequenceNumber": s.starting_sequence_number},
    }
    if s.parent is not None:
        out["ParentShardId"] = f"shardId-{s.parent:012d}"
    if s.adjacent_parent is not None:
        out["AdjacentParentShardId"] = f"shardId-{s.adjacent_parent:012d}"
    end = s.ending_sequence_number
    if end is not None:
        out["SequenceNumberRange"]["EndingSequenceNumber"] = end
    return out


def child_shards(stream: Stream, parent: Shard) -> list[dict[str, Any]]:
    return [{"ShardId": c.id, "ParentShards": [f"shardId-{p:012d}" for p in c.parents],
             "HashKeyRange": {"StartingHashKey": str(c.start_hash), "EndingHashKey": str(c.end_hash)}}
            for c in stream.children(parent)]


def monitoring(stream: Stream) -> list[dict[str, Any]]:
    return [{"ShardLevelMetrics": list(stream.metrics)}]


def _encryption(stream: Stream, out: dict[str, Any]) -> dict[str, Any]:
    out["EncryptionType"] = stream.encryption
    if stream.key_id is not None and stream.encryption != "NONE":
        out["KeyId"] = stream.key_id
    return out


def description(stream: Stream, shards: list[Shard], has_more: bool) -> dict[str, Any]:
    return _encryption(stream, {
        "StreamName": stream.name, "StreamARN": stream.arn, "StreamStatus": stream.status,
        "StreamModeDetails": {"StreamMode": stream.mode}, "Shards": [shard(s) for s in shards],
        "HasMoreShards": has_more, "RetentionPeriodHours": stream.retention_hours,
        "StreamCreationTimestamp": ts(stream.created_ts), "EnhancedMonitoring": monitoring(stream),
    })


def summary(stream: Stream) -> dict[str, Any]:
    return _encryption(stream, {
        "StreamName": stream.name, "StreamARN": stream.arn, "StreamStatus": stream.status,
        "StreamModeDetails": {"StreamMode": stream.mode}, "RetentionPeriodHours": stream.retention_hours,
        "StreamCreationTimestamp": ts(stream.created_ts), "EnhancedMonitoring": monitoring(stream),
        "OpenShardCount": len(stream.open_shards), "ConsumerCount": len(stream.consumers),
        "MaxRecordSizeInKiB": stream.max_record_kib,
    })


def stream_summary(stream: Stream) -> dict[str, Any]:
    return {"StreamName": stream.name, "StreamARN": stream.arn, "StreamStatus": stream.status,
            "StreamModeDetails": {"StreamMode": stream.mode}, "StreamCreationTimestamp": ts(stream.created_ts)}


def consumer(stream: Stream, c: Consumer, *, with_stream: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"ConsumerName": c.name, "ConsumerARN": stream.consumer_arn(c),
                           "ConsumerStatus": c.status, "ConsumerCreationTimestamp": ts(c.created_ts)}
    if with_stream:
        out["StreamARN"] = stream.arn
    return out


def record(s: Shard, r: StoredRecord) -> dict[str, Any]:
    out = {"SequenceNumber": s.seq(r.counter, r.arrival_ms), "ApproximateArrivalTimestamp": r.arrival_ms / 1000,
           "Data": r.data, "PartitionKey": r.partition_key}
    if r.encrypted:
        out["EncryptionType"] = "KMS"
    return out
