"""Hypothesis state machine: the Kinesis model's shard routing, resharding and sequence numbers agree with a
small reference model, and a model restored from its tables is indistinguishable from the live one."""

from __future__ import annotations

import hashlib
import itertools
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from broker.model.kinesis_commands import (
    CreateStream,
    Maintain,
    MergeShards,
    PutEntry,
    PutRecords,
    SplitShard,
    UpdateShardCount,
)
from broker.model.kinesis_keys import HASH_MAX, RECORDS, parse_record_value, parse_sequence_number, record_key
from broker.model.kinesis_model import KinesisModel
from storage.changes import ChangeSet, MemoryTables

HOUR = 3_600_000


class Meta:
    def __init__(self, index: int, ts: int) -> None:
        self.index = index
        self.ts = ts
        self.reply = True


class RefShard:
    def __init__(self, index: int, start: int, end: int, parents: list[int]) -> None:
        self.index, self.start, self.end, self.parents = index, start, end, parents
        self.open = True
        self.records: list[tuple[str, bytes, str]] = []  # (partition key, data, sequence number)


class KinesisMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.model = KinesisModel()
        self.tables = MemoryTables()
        self.index = 0
        self.ts = 1_700_000_000_000
        self.shards: dict[int, RefShard] = {}

    def apply(self, command: Any) -> object:
        self.index += 1
        changes = ChangeSet()
        reply = self.model.apply(command, Meta(self.index, self.ts), changes)
        self.tables.apply(changes)
        return reply

    def open_shards(self) -> list[RefShard]:
        return sorted((s for s in self.shards.values() if s.open), key=lambda s: s.start)

    def add(self, start: int, end: int, parents: list[int]) -> None:
        index = len(self.shards)
        self.shards[index] = RefShard(index, start, end, parents)

    @initialize(count=st.integers(1, 6))
    def create(self, count: int) -> None:
        assert self.apply(CreateStream("a", "s", "us-east-1", count, "PROVISIONED", (), b"k" * 32)) is not None
        step = (1 << 128) // count
        for i in range(count):
            self.add(step * i, HASH_MAX if i == count - 1 else step * (i + 1) - 1, [])

    @rule(keys=st.lists(st.one_of(st.text(min_size=1, max_size=8), st.integers(0, HASH_MAX)), min_size=1,
                        max_size=20))
    def put(self, keys: list[str | int]) -> None:
        entries = tuple(PutEntry(k, int.from_bytes(hashlib.md5(k.encode()).digest(), "big"), k.encode())
                        if isinstance(k, str) else PutEntry("explicit", k, b"%d" % k) for k in keys)
        reply = self.apply(PutRecords("a", "s", entries))
        assert isinstance(reply, tuple)
        arrival, placed = reply
        assert arrival == self.ts
        stream = self.model.stream("a", "s")
        for entry, (index, counter) in zip(entries, placed, strict=True):
            seq = stream.shards[index].seq(counter, arrival)
            (expected,) = [s for s in self.open_shards() if s.start <= entry.hash_key <= s.end]
            assert index == expected.index
            parsed = parse_sequence_number(seq)
            assert parsed is not None and parsed[1] == index and parsed[3] == self.ts
            expected.records.append((entry.partition_key, entry.data, seq))

    @rule(data=st.data())
    def put_at_boundary(self, data: st.DataObject) -> None:
        """Explicit hash keys on and next to shard boundaries, where routing mistakes hide."""
        shard = data.draw(st.sampled_from(self.open_shards()))
        key = data.draw(st.sampled_from([shard.start, shard.end, max(0, shard.start - 1),
                                         min(HASH_MAX, shard.end + 1)]))
        self.put([key])

    @rule(data=st.data())
    def split(self, data: st.DataObject) -> None:
        shard = data.draw(st.sampled_from(self.open_shards()))
        new = data.draw(st.integers(shard.start, shard.end))
        reply = self.apply(SplitShard("a", "s", f"shardId-{shard.index:012d}", new))
        if not shard.start + 1 < new < shard.end:
            assert type(reply).__name__ == "InvalidArgumentException"
            return
        assert reply is None
        shard.open = False
        self.add(shard.start, new - 1, [shard.index])
        self.add(new, shard.end, [shard.index])

    @precondition(lambda self: len(self.open_shards()) > 1)
    @rule(data=st.data(), adjacent=st.booleans())
    def merge(self, data: st.DataObject, adjacent: bool) -> None:
        shards = self.open_shards()
        i = data.draw(st.integers(0, len(shards) - 2))
        a, b = (shards[i], shards[i + 1]) if adjacent else (shards[i], data.draw(st.sampled_from(shards)))
        reply = self.apply(MergeShards("a", "s", f"shardId-{a.index:012d}", f"shardId-{b.index:012d}"))
        if a.end + 1 != b.start and b.end + 1 != a.start:
            assert type(reply).__name__ == "InvalidArgumentException"
            return
        assert reply is None
        a.open = b.open = False
        self.add(min(a.start, b.start), max(a.end, b.end), [a.index, b.index])

    @rule(count=st.integers(1, 12))
    def update_shard_count(self, count: int) -> None:
        target = count
        old = self.open_shards()
        reply = self.apply(UpdateShardCount("a", "s", target))
        if target > 2 * len(old) or 2 * target < len(old):
            assert type(reply).__name__ == "ValidationException"
            return
        assert reply == (len(old), target)
        for s in old:
            s.open = False
        step = (1 << 128) // target
        for i in range(target):
            start, end = step * i, HASH_MAX if i == target - 1 else step * (i + 1) - 1
            self.add(start, end, [s.index for s in old if s.start <= end and s.end >= start])

    @rule(ms=st.integers(0, 2_000))
    def tick(self, ms: int) -> None:
        self.ts += ms
        assert self.apply(Maintain()) == 0  # nothing is due within retention

    @rule()
    def restore(self) -> None:
        fresh = KinesisModel()
        fresh.restore(self.tables)
        self.compare(fresh)
        self.model = fresh

    def compare(self, other: KinesisModel) -> None:
        live = self.model.stream("a", "s")
        restored = other.stream("a", "s")
        assert [s.row() for s in live.shards.values()] == [s.row() for s in restored.shards.values()]
        assert [s.chunks for s in live.shards.values()] == [s.chunks for s in restored.shards.values()]
        assert live.row() == restored.row()

    @invariant()
    def agrees_with_reference(self) -> None:
        stream = self.model.streams.get(("a", "s"))
        if stream is None:
            return
        assert sorted(stream.shards) == sorted(self.shards)
        for index, ref in self.shards.items():
            shard = stream.shards[index]
            assert (shard.start_hash, shard.end_hash, shard.parents, shard.is_open) == (
                ref.start, ref.end, ref.parents, ref.open)
            assert shard.counter == len(ref.records)
            seqs = [int(r[2]) for r in ref.records]
            assert seqs == sorted(set(seqs))
            assert all(int(shard.starting_sequence_number) < s for s in seqs)
            if not shard.is_open and seqs:
                assert int(shard.ending_sequence_number or 0) >= seqs[-1]
            stored = [parse_record_value(self.tables.get(RECORDS, record_key(stream.stream_id, index, c)) or b"")
                      for c in range(1, shard.counter + 1)]
            assert [(r[0], r[1]) for r in stored] == [(r[0], r[1]) for r in ref.records]
        # open shards partition the hash key space exactly
        open_ = self.open_shards()
        assert open_[0].start == 0 and open_[-1].end == HASH_MAX
        assert all(a.end + 1 == b.start for a, b in itertools.pairwise(open_))
        due = self.model.next_due()
        assert due is None or due > self.ts


TestKinesisModel = KinesisMachine.TestCase
TestKinesisModel.settings = settings(max_examples=60, stateful_step_count=25, deadline=None)
