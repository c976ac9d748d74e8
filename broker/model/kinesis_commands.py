"""Replicated Kinesis commands (TYPE_IDs 200-299, append-only): frozen dataclasses encoded as CBOR arrays.

    200 CreateStream  201 DeleteStream  202 SetRetention  203 TagStream  204 UntagStream  205 UpdateStreamMode
    206 PutRecords  207 SplitShard  208 MergeShards  209 UpdateShardCount  210 Maintain  211 RegisterConsumer
    212 DeregisterConsumer  213 SetEncryption  214 SetMonitoring  215 SetPolicy  216 UpdateMaxRecordSize

Every command that names a stream carries (account, name); ``delay_ms`` is how long the stream stays in its
transitional status (CREATING/UPDATING/DELETING) before ``Maintain`` finishes the change (0: at once).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

from broker.model import commands
from broker.model.commands import PlainFields


def _pairs(items: list[Any]) -> tuple[tuple[str, str], ...]:
    return tuple((k, v) for k, v in items)


@dataclass(frozen=True, slots=True)
class CreateStream:
    """``secret`` is fresh random bytes from the service: the first one becomes the replicated iterator key."""

    TYPE_ID: ClassVar[int] = 200
    account: str
    name: str
    region: str
    shard_count: int
    mode: str  # PROVISIONED | ON_DEMAND
    tags: tuple[tuple[str, str], ...]
    secret: bytes
    delay_ms: int = 0
    shard_limit: int = 500
    max_record_kib: int = 1024

    def wire(self) -> list[Any]:
        return [self.account, self.name, self.region, self.shard_count, self.mode, self.tags, self.secret,
                self.delay_ms, self.shard_limit, self.max_record_kib]

    @classmethod
    def from_wire(cls, f: list[Any]) -> CreateStream:
        return cls(f[0], f[1], f[2], f[3], f[4], _pairs(f[5]), f[6], f[7], f[8], f[9])


@dataclass(frozen=True, slots=True)
class DeleteStream(PlainFields):
    TYPE_ID: ClassVar[int] = 201
    account: str
    name: str
    enforce_consumer_deletion: bool = False
    delay_ms: int = 0


@dataclass(frozen=True, slots=True)
class SetRetention(PlainFields):
    """Increase (``increase`` True) or decrease the retention period; the direction is checked as AWS does."""

    TYPE_ID: ClassVar[int] = 202
    account: str
    name: str
    hours: int
    increase: bool


@dataclass(frozen=True, slots=True)
class TagStream:
    TYPE_ID: ClassVar[int] = 203
    account: str
    name: str
    tags: tuple[tuple[str, str], ...]

    def wire(self) -> list[Any]:
        return [self.account, self.name, self.tags]

    @classmethod
    def from_wire(cls, f: list[Any]) -> TagStream:
        return cls(f[0], f[1], _pairs(f[2]))


@dataclass(frozen=True, slots=True)
class UntagStream:
    TYPE_ID: ClassVar[int] = 204
    account: str
    name: str
    keys: tuple[str, ...]

    def wire(self) -> list[Any]:
        return [self.account, self.name, self.keys]

    @classmethod
    def from_wire(cls, f: list[Any]) -> UntagStream:
        return cls(f[0], f[1], tuple(f[2]))


@dataclass(frozen=True, slots=True)
class UpdateStreamMode(PlainFields):
    TYPE_ID: ClassVar[int] = 205
    account: str
    name: str
    mode: str
    delay_ms: int = 0


class PutEntry(NamedTuple):
    """One record, validated by the service: ``hash_key`` is the explicit hash key or the partition key's MD5;
    ``sealed``: ``data`` is ciphertext (stream encryption, see ``broker.kinesis.sealing``)."""

    partition_key: str
    hash_key: int
    data: bytes
    sealed: bool = False


@dataclass(frozen=True, slots=True)
class PutRecords:
    """PutRecord (one entry, optional SequenceNumberForOrdering) and PutRecords (1-500 entries).

    The reply is one ``(shard index, sequence number)`` per entry, or a ``BrokerError`` for the whole call.
    """

    TYPE_ID: ClassVar[int] = 206
    account: str
    name: str
    entries: tuple[PutEntry, ...]
    ordering: str | None = None

    def wire(self) -> list[Any]:
        return [self.account, self.name, self.entries, self.ordering]

    @classmethod
    def from_wire(cls, f: list[Any]) -> PutRecords:
        return cls(f[0], f[1], tuple(PutEntry(e[0], e[1], e[2], len(e) > 3 and e[3]) for e in f[2]), f[3])


@dataclass(frozen=True, slots=True)
class SplitShard(PlainFields):
    TYPE_ID: ClassVar[int] = 207
    account: str
    name: str
    shard: str
    new_starting_hash_key: int
    delay_ms: int = 0
    shard_limit: int = 500


@dataclass(frozen=True, slots=True)
class MergeShards(PlainFields):
    TYPE_ID: ClassVar[int] = 208
    account: str
    name: str
    shard: str
    adjacent: str
    delay_ms: int = 0


@dataclass(frozen=True, slots=True)
class UpdateShardCount(PlainFields):
    TYPE_ID: ClassVar[int] = 209
    account: str
    name: str
    target: int
    delay_ms: int = 0
    shard_limit: int = 500


@dataclass(frozen=True, slots=True)
class Maintain(PlainFields):
    """Finish due status transitions and drop records past retention (at most ``limit``), at the entry's time."""

    TYPE_ID: ClassVar[int] = 210
    limit: int = 10_000


@dataclass(frozen=True, slots=True)
class RegisterConsumer(PlainFields):
    TYPE_ID: ClassVar[int] = 211
    account: str
    name: str
    consumer: str
    delay_ms: int = 0


@dataclass(frozen=True, slots=True)
class DeregisterConsumer(PlainFields):
    TYPE_ID: ClassVar[int] = 212
    account: str
    name: str
    consumer: str


@dataclass(frozen=True, slots=True)
class SetEncryption(PlainFields):
    """Start (``encryption`` KMS) or stop (NONE) server-side encryption; recorded, the stream goes UPDATING."""

    TYPE_ID: ClassVar[int] = 213
    account: str
    name: str
    encryption: str
    key_id: str | None
    delay_ms: int = 0


@dataclass(frozen=True, slots=True)
class SetMonitoring:
    """Enable or disable shard-level metrics (ALL expanded by the service); the reply is (current, desired)."""

    TYPE_ID: ClassVar[int] = 214
    account: str
    name: str
    metrics: tuple[str, ...]
    enable: bool

    def wire(self) -> list[Any]:
        return [self.account, self.name, self.metrics, self.enable]

    @classmethod
    def from_wire(cls, f: list[Any]) -> SetMonitoring:
        return cls(f[0], f[1], tuple(f[2]), f[3])


@dataclass(frozen=True, slots=True)
class SetPolicy(PlainFields):
    """Store (``policy`` text) or delete (None) the resource policy of a stream or one of its consumers."""

    TYPE_ID: ClassVar[int] = 215
    account: str
    name: str
    consumer: str | None
    policy: str | None


@dataclass(frozen=True, slots=True)
class UpdateMaxRecordSize(PlainFields):
    TYPE_ID: ClassVar[int] = 216
    account: str
    name: str
    kib: int


ALL: tuple[type[commands.Command], ...] = (
    CreateStream, DeleteStream, SetRetention, TagStream, UntagStream, UpdateStreamMode, PutRecords, SplitShard,
    MergeShards, UpdateShardCount, Maintain, RegisterConsumer, DeregisterConsumer, SetEncryption, SetMonitoring,
    SetPolicy, UpdateMaxRecordSize)

commands.register(*ALL)
