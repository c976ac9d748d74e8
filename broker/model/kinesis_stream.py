"""In-memory Kinesis stream and shard metadata, and their persisted row forms.

Records themselves are not held here (they live in the ``kinesis_records`` table); a shard keeps its counters, its
hash range, its lineage and a coarse arrival-time index (``chunks``: the first counter of each second with writes)
that serves AT_TIMESTAMP lookups and retention without reading records.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Any

from broker.model.kinesis_keys import ending_sequence_number, sequence_number, shard_id

ACTIVE = "ACTIVE"
CREATING = "CREATING"
UPDATING = "UPDATING"
DELETING = "DELETING"
PROVISIONED = "PROVISIONED"
ON_DEMAND = "ON_DEMAND"
HOUR_MS = 3_600_000


def _second_end(arrival_ms: int) -> int:
    """Every record of a chunk arrived before the end of its first record's second."""
    return (arrival_ms // 1000 + 1) * 1000


@dataclass(slots=True)
class Shard:
    index: int
    start_hash: int
    end_hash: int
    created_ts: int
    parents: list[int] = field(default_factory=list)  # the shards this one was created from (0, 1, 2 or more)
    counter: int = 0  # last counter handed out (records are 1..counter)
    trim: int = 1  # first counter not yet removed by retention
    closed_ts: int | None = None
    last_arrival: int = 0
    chunks: list[tuple[int, int]] = field(default_factory=list)  # (first counter, its arrival ms), increasing

    @property
    def id(self) -> str:
        return shard_id(self.index)

    @property
    def parent(self) -> int | None:
        return self.parents[0] if self.parents else None

    @property
    def adjacent_parent(self) -> int | None:
        return self.parents[1] if len(self.parents) > 1 else None

    @property
    def is_open(self) -> bool:
        return self.closed_ts is None

    @property
    def created_s(self) -> int:
        return self.created_ts // 1000

    def seq(self, counter: int, arrival_ms: int) -> str:
        return sequence_number(self.created_s, self.index, counter, arrival_ms)

    @property
    def starting_sequence_number(self) -> str:
        return sequence_number(self.created_s, self.index, 0, 0)

    @property
    def ending_sequence_number(self) -> str | None:
        return None if self.closed_ts is None else ending_sequence_number(self.created_s, self.index, self.counter)

    def note_arrival(self, counter: int, arrival_ms: int) -> bool:
        """Index a new record; True when it starts a new chunk (a new second with writes)."""
        self.last_arrival = arrival_ms
        if not self.chunks or self.chunks[-1][1] // 1000 != arrival_ms // 1000:
            self.chunks.append((counter, arrival_ms))
            return True
        return False

    def counter_at(self, ts_ms: int) -> int:
        """A counter at or before the first record that arrived at or after ``ts_ms`` (exact to the chunk)."""
        if not self.chunks or self.last_arrival < ts_ms:
            return self.counter + 1
        i = bisect.bisect_right(self.chunks, ts_ms, key=lambda c: c[1]) - 1
        return max(self.trim, self.chunks[i][0] if i >= 0 else self.trim)

    def expired_before(self, cutoff_ms: int) -> int:
        """The first counter to keep when records that arrived before ``cutoff_ms`` expire (whole chunks only)."""
        first = self.trim
        chunks = self.chunks
        for i, (_, arrival) in enumerate(chunks):
            if _second_end(arrival) > cutoff_ms:
                break
            first = chunks[i + 1][0] if i + 1 < len(chunks) else self.counter + 1
        return max(first, self.trim)

    def next_expiry(self, retention_ms: int) -> int | None:
        """When the oldest chunk becomes wholly expired (None when there is nothing to expire)."""
        if self.trim > self.counter or not self.chunks:
            return None
        return _second_end(self.chunks[0][1]) + retention_ms

    def row(self) -> list[Any]:
        return [self.start_hash, self.end_hash, self.created_ts, self.parents, self.counter,
                self.trim, self.closed_ts, self.last_arrival]

    @classmethod
    def from_row(cls, index: int, f: list[Any]) -> Shard:
        return cls(index, f[0], f[1], f[2], list(f[3]), f[4], f[5], f[6], f[7])


@dataclass(slots=True)
class Consumer:
    name: str
    created_ts: int
    status: str
    due_ts: int | None = None
    policy: str | None = None

    def row(self) -> list[Any]:
        return [self.name, self.created_ts, self.status, self.due_ts, self.policy]

    @classmethod
    def from_row(cls, f: list[Any]) -> Consumer:
        return cls(f[0], f[1], f[2], f[3], f[4])


@dataclass(slots=True)
class Stream:
    stream_id: int
    account: str
    name: str
    region: str
    created_ts: int
    status: str = ACTIVE
    due_ts: int | None = None  # when the transitional status ends
    retention_hours: int = 24
    mode: str = PROVISIONED
    next_index: int = 0
    tags: dict[str, str] = field(default_factory=dict)
    encryption: str = "NONE"
    key_id: str | None = None
    metrics: list[str] = field(default_factory=list)
    consumers: dict[str, Consumer] = field(default_factory=dict)
    policy: str | None = None
    max_record_kib: int = 1024
    shards: dict[int, Shard] = field(default_factory=dict)  # by index, in index order
    _open: list[Shard] = field(default_factory=list)  # open shards by starting hash key
    _starts: list[int] = field(default_factory=list)

    @property
    def arn(self) -> str:
        return f"arn:aws:kinesis:{self.region}:{self.account}:stream/{self.name}"

    def consumer_arn(self, consumer: Consumer) -> str:
        return f"{self.arn}/consumer/{consumer.name}:{consumer.created_ts // 1000}"

    @property
    def retention_ms(self) -> int:
        return self.retention_hours * HOUR_MS

    def add_shard(self, start: int, end: int, ts: int, parents: list[int] | None = None) -> Shard:
        shard = Shard(self.next_index, start, end, ts, parents or [])
        self.next_index += 1
        self.shards[shard.index] = shard
        self.reindex()
        return shard

    def reindex(self) -> None:
        """Rebuild the routing table of open shards (after a reshard or restore)."""
        self._open = sorted((s for s in self.shards.values() if s.is_open), key=lambda s: s.start_hash)
        self._starts = [s.start_hash for s in self._open]

    @property
    def open_shards(self) -> list[Shard]:
        return self._open

    def children(self, shard: Shard) -> list[Shard]:
        """Shards created from ``shard`` by a split, merge or UpdateShardCount (empty while it is open)."""
        if shard.is_open:
            return []
        return [s for s in self.shards.values() if shard.index in s.parents]

    def route(self, hash_key: int) -> Shard:
        """The open shard whose hash key range holds ``hash_key`` (open ranges always cover 0..2^128-1)."""
        return self._open[bisect.bisect_right(self._starts, hash_key) - 1]

    def row(self) -> list[Any]:
        return [self.stream_id, self.region, self.created_ts, self.status, self.due_ts, self.retention_hours,
                self.mode, self.next_index, self.tags, self.encryption, self.key_id, self.metrics,
                [c.row() for c in self.consumers.values()], self.policy, self.max_record_kib]

    @classmethod
    def from_row(cls, account: str, name: str, f: list[Any]) -> Stream:
        consumers = [Consumer.from_row(c) for c in f[12]]
        return cls(f[0], account, name, f[1], f[2], f[3], f[4], f[5], f[6], f[7], dict(f[8]), f[9], f[10],
                   list(f[11]), {c.name: c for c in consumers}, f[13], f[14])
