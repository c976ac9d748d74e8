"""Request parameters of the Kinesis service that need more than the model's constraints: shard filters, hash
keys, tags and the opaque pagination tokens."""

from __future__ import annotations

import base64
from typing import Any

import orjson

from broker.model.kinesis_errors import InvalidArgumentException
from broker.model.kinesis_keys import HASH_MAX
from broker.model.kinesis_stream import Shard, Stream


def filter_wire(raw: dict[str, Any] | None) -> list[Any] | None:
    if raw is None:
        return None
    kind = raw["Type"]
    shard = raw.get("ShardId")
    when = raw.get("Timestamp")
    if kind == "AFTER_SHARD_ID" and shard is None:
        raise InvalidArgumentException("ShardFilter of type AFTER_SHARD_ID requires a ShardId.")
    if kind in ("AT_TIMESTAMP", "FROM_TIMESTAMP") and when is None:
        raise InvalidArgumentException(f"ShardFilter of type {kind} requires a Timestamp.")
    return [kind, shard, int(when.timestamp() * 1000) if when is not None else None]


def filtered(stream: Stream, filter_: list[Any] | None, now_ms: int) -> list[Shard]:
    shards = list(stream.shards.values())
    if filter_ is None:
        return shards
    kind, shard_id, ts = filter_
    if kind == "AFTER_SHARD_ID":
        return [s for s in shards if s.id > shard_id]
    if kind == "AT_LATEST":
        return [s for s in shards if s.is_open]
    if kind == "FROM_TRIM_HORIZON":
        return shards
    if kind == "AT_TRIM_HORIZON":
        ts = max(now_ms - stream.retention_ms, stream.created_ts)
    if kind in ("AT_TIMESTAMP", "AT_TRIM_HORIZON"):
        return [s for s in shards if s.created_ts <= max(ts, stream.created_ts)
                and (s.closed_ts is None or s.closed_ts > ts)]
    return [s for s in shards if s.closed_ts is None or s.closed_ts >= ts]  # FROM_TIMESTAMP


def parse_hash_key(text: str, member: str) -> int:
    value = int(text)
    if value > HASH_MAX:
        raise InvalidArgumentException(
            f"Invalid {member}. {member} must be in the range: [0, 2^128-1]. Specified value was {text}")
    return value


def check_tags(tags: dict[str, Any]) -> dict[str, str]:
    for key, value in tags.items():
        if not 1 <= len(key) <= 128 or len(value) > 256:
            raise InvalidArgumentException(f"Tag {key!r} is invalid: keys are 1-128 and values 0-256 characters.")
    if len(tags) > 50:
        raise InvalidArgumentException("A stream can have at most 50 tags.")
    return dict(tags)


def encode_token(parts: list[Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(parts)).decode("ascii")


def decode_token(token: str, member: str) -> list[Any]:
    try:
        parts = orjson.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, orjson.JSONDecodeError):
        raise InvalidArgumentException(f"{member} is invalid.") from None
    if not isinstance(parts, list) or not parts:
        raise InvalidArgumentException(f"{member} is invalid.")
    return parts
