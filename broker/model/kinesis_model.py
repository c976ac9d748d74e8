"""The Kinesis state machine: streams, shards, routing, sequence numbers, resharding, consumers, retention.

``apply(command, meta, changes)`` reads time only from ``meta.ts`` and identity only from ``meta.index``; it returns
the reply or a ``BrokerError`` instance and records every changed row in ``changes``. Records are written to the
``kinesis_records`` table and never kept in memory: the service reads them back through a ``TableReader`` (which
holds only durable data). ``restore(reader)`` rebuilds streams, shards and the arrival index from the tables.

Decisions where AWS is unclear or impractical locally:
- Resharding takes effect when applied; the stream shows UPDATING for the configured delay (0: never).
- UpdateShardCount closes every open shard and opens ``target`` uniform ones. A child lists every parent whose range
  it overlaps in ChildShards; ``ParentShardId``/``AdjacentParentShardId`` name the first two.
- Retention drops whole seconds of records (records may outlive it by up to one second); a closed shard disappears
  once it is empty and closed for longer than the retention period.
- A deleted stream's records are removed in bounded batches by later ``Maintain`` commands.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from broker.model.kinesis_commands import (
    CreateStream,
    DeleteStream,
    DeregisterConsumer,
    Maintain,
    MergeShards,
    PutRecords,
    RegisterConsumer,
    SetEncryption,
    SetMonitoring,
    SetPolicy,
    SetRetention,
    SplitShard,
    TagStream,
    UntagStream,
    UpdateMaxRecordSize,
    UpdateShardCount,
    UpdateStreamMode,
)
from broker.model.kinesis_errors import (
    InvalidArgumentException,
    LimitExceededException,
    ResourceInUseException,
    ResourceNotFoundException,
    ValidationException,
    stream_in_use,
    stream_not_found,
)
from broker.model.kinesis_keys import (
    CHUNKS,
    META,
    RECORDS,
    SHARDS,
    STREAMS,
    record_key,
    record_value,
    shard_index,
    shard_key,
    stream_key,
    uniform_ranges,
)
from broker.model.kinesis_stream import (
    ACTIVE,
    CREATING,
    DELETING,
    ON_DEMAND,
    UPDATING,
    Consumer,
    Shard,
    Stream,
)
from broker.model.part import DispatchingPart, Meta
from storage import codec, keys
from storage.changes import ChangeSink, TableReader

ITERATOR_KEY = b"iterator_key"
MAX_CONSUMERS = 20
ON_DEMAND_SHARDS = 4
MAX_TAGS = 50



StreamKey = tuple[str, str]


def shard_limit_error(account: str, region: str, current: int, limit: int, extra: int) -> LimitExceededException:
    return LimitExceededException(
        f"This request would exceed the shard limit for the account {account} in {region}. Current shard count for "
        f"the account: {current}. Limit: {limit}. Number of additional shards that would have resulted from this "
        f"request: {extra}. Refer to the AWS Service Limits page (https://docs.aws.amazon.com/general/latest/gr/"
        "aws_service_limits.html) for current limits and how to request higher limits.")


class KinesisModel(DispatchingPart[StreamKey]):
    """All Kinesis streams of this node."""

    wake_prefix = "kinesis"  # wake-ups are (account, name) pairs: a stream got new records

    def __init__(self) -> None:
        self.streams: dict[StreamKey, Stream] = {}
        self.by_id: dict[int, Stream] = {}
        self.iterator_key: bytes | None = None
        # Shards of deleted streams whose records are still to be removed: stream id -> shards.
        self.graveyard: dict[int, list[Shard]] = {}
        self.wakeups: set[StreamKey] = set()
        self._handlers: dict[type[Any], Callable[[Any, Meta, ChangeSink], object]] = {
            CreateStream: self._create, DeleteStream: self._delete, SetRetention: self._retention,
            TagStream: self._tag, UntagStream: self._untag, UpdateStreamMode: self._mode, PutRecords: self._put,
            SplitShard: self._split, MergeShards: self._merge, UpdateShardCount: self._update_shard_count,
            Maintain: self._maintain, RegisterConsumer: self._register, DeregisterConsumer: self._deregister,
            SetEncryption: self._encryption, SetMonitoring: self._monitoring, SetPolicy: self._policy,
            UpdateMaxRecordSize: self._max_record_size,
        }

    # -- apply ------------------------------------------------------------------------------------------------



    # -- reads (also used by the service) ---------------------------------------------------------------------

    def stream(self, account: str, name: str) -> Stream:
        found = self.streams.get((account, name))
        if found is None:
            raise stream_not_found(name, account)
        return found

    def readable(self, account: str, name: str) -> Stream:
        """A stream that accepts records and reads (ACTIVE or UPDATING)."""
        found = self.stream(account, name)
        if found.status not in (ACTIVE, UPDATING):
            raise stream_not_found(name, account)
        return found

    def shard(self, stream: Stream, shard: str) -> Shard:
        index = shard_index(shard)
        found = stream.shards.get(index) if index is not None else None
        if found is None:
            raise ResourceNotFoundException(
                f"Could not find shard {shard} in stream {stream.name} under account {stream.account}.")
        return found

    def list_streams(self, account: str) -> list[Stream]:
        return sorted((s for (a, _), s in self.streams.items() if a == account), key=lambda s: s.name)

    def open_shard_count(self, account: str) -> int:
        return sum(len(s.open_shards) for (a, _), s in self.streams.items() if a == account)

    def on_demand_count(self, account: str) -> int:
        return sum(1 for (a, _), s in self.streams.items() if a == account and s.mode == ON_DEMAND)

    def next_due(self) -> int | None:
        """When the next ``Maintain`` has work (a status transition or records to expire); None: nothing pending."""
        due: list[int] = []
        for stream in self.streams.values():
            if stream.due_ts is not None:
                due.append(stream.due_ts)
            due.extend(c.due_ts for c in stream.consumers.values() if c.due_ts is not None)
            for shard in stream.shards.values():
                at = shard.next_expiry(stream.retention_ms)
                if at is not None:
                    due.append(at)
                elif shard.closed_ts is not None:
                    due.append(shard.closed_ts + stream.retention_ms)
        if self.graveyard:
            due.append(0)
        return min(due) if due else None

    # -- persistence ------------------------------------------------------------------------------------------

    def _save_stream(self, stream: Stream, changes: ChangeSink) -> None:
        changes.put(STREAMS, stream_key(stream.account, stream.name), codec.pack(stream.row()))

    def _save_shard(self, stream: Stream, shard: Shard, changes: ChangeSink) -> None:
        changes.put(SHARDS, shard_key(stream.stream_id, shard.index), codec.pack(shard.row()))

    def restore(self, reader: TableReader) -> None:
        self.streams.clear()
        self.by_id.clear()
        self.graveyard.clear()
        self.wakeups.clear()
        self.iterator_key = reader.get(META, ITERATOR_KEY)
        for key, value in reader.scan(STREAMS):
            account, name = keys.text_from(key)
            stream = Stream.from_row(account, name, codec.unpack(value))
            self.streams[(account, name)] = stream
            self.by_id[stream.stream_id] = stream
        shards: dict[tuple[int, int], Shard] = {}
        for key, value in reader.scan(SHARDS):
            stream_id, index = keys.u64_pair_from(key)
            shard = shards[(stream_id, index)] = Shard.from_row(index, codec.unpack(value))
            owner = self.by_id.get(stream_id)
            if owner is None:
                self.graveyard.setdefault(stream_id, []).append(shard)
            else:
                owner.shards[index] = shard
        for key, value in reader.scan(CHUNKS):
            found = shards.get(keys.u64_pair_from(key))
            if found is not None:  # deleted streams' shards too: their chunk rows are removed with their records
                found.chunks.append((keys.u64_from(key[16:]), codec.unpack(value)))
        for stream in self.streams.values():
            stream.reindex()

    # -- streams ----------------------------------------------------------------------------------------------

    def _create(self, cmd: CreateStream, meta: Meta, changes: ChangeSink) -> object:
        if self.iterator_key is None:
            self.iterator_key = cmd.secret
            changes.put(META, ITERATOR_KEY, cmd.secret)
        if (cmd.account, cmd.name) in self.streams:
            raise ResourceInUseException(f"Stream {cmd.name} under account {cmd.account} already exists.")
        count = ON_DEMAND_SHARDS if cmd.mode == ON_DEMAND else cmd.shard_count
        current = self.open_shard_count(cmd.account)
        if current + count > cmd.shard_limit:
            raise shard_limit_error(cmd.account, cmd.region, current, cmd.shard_limit, count)
        stream = Stream(meta.index, cmd.account, cmd.name, cmd.region, meta.ts, mode=cmd.mode,
                        tags=dict(cmd.tags), max_record_kib=cmd.max_record_kib)
        self._transition(stream, CREATING, cmd.delay_ms, meta.ts)
        for start, end in uniform_ranges(count):
            shard = stream.add_shard(start, end, meta.ts)
            self._save_shard(stream, shard, changes)
        self.streams[(cmd.account, cmd.name)] = stream
        self.by_id[stream.stream_id] = stream
        self._save_stream(stream, changes)
        return stream.arn

    @staticmethod
    def _transition(stream: Stream, status: str, delay_ms: int, ts: int) -> None:
        if delay_ms > 0:
            stream.status, stream.due_ts = status, ts + delay_ms
        else:
            stream.status, stream.due_ts = ACTIVE, None

    def _active(self, account: str, name: str) -> Stream:
        stream = self.stream(account, name)
        if stream.status != ACTIVE:
            raise stream_in_use(name, account, stream.status)
        return stream

    def _delete(self, cmd: DeleteStream, meta: Meta, changes: ChangeSink) -> object:
        stream = self.stream(cmd.account, cmd.name)
        if stream.status == DELETING:
            return None
        if stream.consumers and not cmd.enforce_consumer_deletion:
            raise ResourceInUseException(
                f"Stream {cmd.name} under account {cmd.account} has registered consumers. Set "
                "EnforceConsumerDeletion to true to delete the stream together with its consumers.")
        if cmd.delay_ms > 0:
            stream.status, stream.due_ts = DELETING, meta.ts + cmd.delay_ms
            self._save_stream(stream, changes)
        else:
            self._drop(stream, changes)
        return None

    def _drop(self, stream: Stream, changes: ChangeSink) -> None:
        del self.streams[(stream.account, stream.name)]
        del self.by_id[stream.stream_id]
        changes.delete(STREAMS, stream_key(stream.account, stream.name))
        self.graveyard[stream.stream_id] = list(stream.shards.values())
        self.wakeups.add((stream.account, stream.name))  # subscribers learn that the stream is gone

    def _retention(self, cmd: SetRetention, meta: Meta, changes: ChangeSink) -> object:
        stream = self._active(cmd.account, cmd.name)
        current = stream.retention_hours
        if cmd.increase and cmd.hours < current:
            raise InvalidArgumentException(
                f"Requested retention period ({cmd.hours} hours) for stream {cmd.name} can not be shorter than "
                f"existing retention period ({current} hours). Use DecreaseRetentionPeriod API.")
        if not cmd.increase and cmd.hours > current:
            raise InvalidArgumentException(
                f"Requested retention period ({cmd.hours} hours) for stream {cmd.name} can not be longer than "
                f"existing retention period ({current} hours). Use IncreaseRetentionPeriod API.")
        stream.retention_hours = cmd.hours
        self._save_stream(stream, changes)
        return None

    def _tag(self, cmd: TagStream, meta: Meta, changes: ChangeSink) -> object:
        stream = self.stream(cmd.account, cmd.name)
        merged = {**stream.tags, **dict(cmd.tags)}
        if len(merged) > MAX_TAGS:
            raise InvalidArgumentException(
                f"Failed to add tags to stream {cmd.name} under account {cmd.account} because a given stream "
                f"cannot have more than {MAX_TAGS} tags.")
        stream.tags = merged
        self._save_stream(stream, changes)
        return None

    def _untag(self, cmd: UntagStream, meta: Meta, changes: ChangeSink) -> object:
        stream = self.stream(cmd.account, cmd.name)
        for key in cmd.keys:
            stream.tags.pop(key, None)
        self._save_stream(stream, changes)
        return None

    def _mode(self, cmd: UpdateStreamMode, meta: Meta, changes: ChangeSink) -> object:
        stream = self._active(cmd.account, cmd.name)
        if stream.mode == cmd.mode:
            raise ResourceInUseException(f"Stream {cmd.name} under account {cmd.account} is already in "
                                         f"{cmd.mode} mode.")
        stream.mode = cmd.mode
        self._transition(stream, UPDATING, cmd.delay_ms, meta.ts)
        self._save_stream(stream, changes)
        return None

    def _encryption(self, cmd: SetEncryption, meta: Meta, changes: ChangeSink) -> object:
        stream = self._active(cmd.account, cmd.name)
        stream.encryption, stream.key_id = cmd.encryption, cmd.key_id
        self._transition(stream, UPDATING, cmd.delay_ms, meta.ts)
        self._save_stream(stream, changes)
        return None

    def _monitoring(self, cmd: SetMonitoring, meta: Meta, changes: ChangeSink) -> object:
        stream = self.stream(cmd.account, cmd.name)
        current = list(stream.metrics)
        wanted = set(current) | set(cmd.metrics) if cmd.enable else set(current) - set(cmd.metrics)
        desired = sorted(wanted)
        stream.metrics = desired
        self._save_stream(stream, changes)
        return current, desired

    def _policy(self, cmd: SetPolicy, meta: Meta, changes: ChangeSink) -> object:
        stream = self.stream(cmd.account, cmd.name)
        if cmd.consumer is None:
            stream.policy = cmd.policy
        else:
            self._consumer(stream, cmd.consumer).policy = cmd.policy
        self._save_stream(stream, changes)
        return None

    def _max_record_size(self, cmd: UpdateMaxRecordSize, meta: Meta, changes: ChangeSink) -> object:
        stream = self._active(cmd.account, cmd.name)
        stream.max_record_kib = cmd.kib
        self._save_stream(stream, changes)
        return None

    # -- records ----------------------------------------------------------------------------------------------

    def _put(self, cmd: PutRecords, meta: Meta, changes: ChangeSink) -> object:
        """Append the records; the reply is (arrival ms, [(shard index, counter)]): the service formats sequence
        numbers from it, so followers (which discard replies) never pay for that."""
        stream = self.readable(cmd.account, cmd.name)
        ts = meta.ts
        sid = stream.stream_id
        route = stream.route
        put = changes.put
        put_record = changes.put_payload  # record data is read back from LMDB on demand, never restored
        first: dict[int, int] = {}  # shard index -> its first counter in this command
        placed: list[tuple[int, int]] = []
        for partition_key, hash_key, data, sealed in cmd.entries:
            shard = route(hash_key)
            counter = shard.counter = shard.counter + 1
            index = shard.index
            if index not in first:
                first[index] = counter
            put_record(RECORDS, record_key(sid, index, counter), record_value(ts, partition_key.encode(), data,
                                                                             sealed))
            placed.append((index, counter))
        for index, counter in first.items():
            shard = stream.shards[index]
            if shard.note_arrival(counter, ts):
                put(CHUNKS, record_key(sid, index, counter), codec.pack(ts))
            self._save_shard(stream, shard, changes)
        self.wakeups.add((cmd.account, cmd.name))
        return ts, placed

    # -- resharding -------------------------------------------------------------------------------------------

    def _check_limit(self, stream: Stream, extra: int, limit: int) -> None:
        current = self.open_shard_count(stream.account)
        if current + extra > limit:
            raise shard_limit_error(stream.account, stream.region, current, limit, extra)

    def _open_shard(self, stream: Stream, shard_name: str) -> Shard:
        shard = self.shard(stream, shard_name)
        if not shard.is_open:
            raise ResourceInUseException(
                f"Shard {shard.id} in stream {stream.name} under account {stream.account} has already been merged "
                "or split, and thus is not eligible for merging or splitting.")
        return shard

    def _close(self, stream: Stream, shard: Shard, ts: int, changes: ChangeSink) -> None:
        shard.closed_ts = ts
        self._save_shard(stream, shard, changes)

    def _split(self, cmd: SplitShard, meta: Meta, changes: ChangeSink) -> object:
        stream = self._active(cmd.account, cmd.name)
        shard = self._open_shard(stream, cmd.shard)
        new = cmd.new_starting_hash_key
        if not shard.start_hash + 1 < new < shard.end_hash:
            raise InvalidArgumentException(
                f"NewStartingHashKey {new} used in SplitShard() on shard {shard.id} in stream {stream.name} under "
                f"account {stream.account} is not both greater than one plus the shard's StartingHashKey "
                f"{shard.start_hash} and less than the shard's EndingHashKey {shard.end_hash}.")
        self._check_limit(stream, 1, cmd.shard_limit)
        self._close(stream, shard, meta.ts, changes)
        for start, end in ((shard.start_hash, new - 1), (new, shard.end_hash)):
            child = stream.add_shard(start, end, meta.ts, [shard.index])
            self._save_shard(stream, child, changes)
        self._transition(stream, UPDATING, cmd.delay_ms, meta.ts)
        self._save_stream(stream, changes)
        self.wakeups.add((cmd.account, cmd.name))
        return None

    def _merge(self, cmd: MergeShards, meta: Meta, changes: ChangeSink) -> object:
        stream = self._active(cmd.account, cmd.name)
        shard = self._open_shard(stream, cmd.shard)
        adjacent = self._open_shard(stream, cmd.adjacent)
        if shard.end_hash + 1 != adjacent.start_hash and adjacent.end_hash + 1 != shard.start_hash:
            raise InvalidArgumentException(
                f"Shard {adjacent.id} in stream {stream.name} under account {stream.account} is not an adjacent "
                f"shard to {shard.id}")
        self._close(stream, shard, meta.ts, changes)
        self._close(stream, adjacent, meta.ts, changes)
        child = stream.add_shard(min(shard.start_hash, adjacent.start_hash), max(shard.end_hash, adjacent.end_hash),
                                 meta.ts, [shard.index, adjacent.index])
        self._save_shard(stream, child, changes)
        self._transition(stream, UPDATING, cmd.delay_ms, meta.ts)
        self._save_stream(stream, changes)
        self.wakeups.add((cmd.account, cmd.name))
        return None

    def _update_shard_count(self, cmd: UpdateShardCount, meta: Meta, changes: ChangeSink) -> object:
        stream = self._active(cmd.account, cmd.name)
        if stream.mode == ON_DEMAND:
            raise ValidationException(f"UpdateShardCount is not supported for stream {cmd.name} under account "
                                      f"{cmd.account} in ON_DEMAND capacity mode.")
        old = list(stream.open_shards)
        current = len(old)
        if cmd.target > 2 * current:
            raise ValidationException(
                "UpdateShardCount cannot scale up over double your current open shard count. Current open shard "
                f"count: {current} Target shard count: {cmd.target}")
        if 2 * cmd.target < current:
            raise ValidationException(
                "UpdateShardCount cannot scale down below half your current open shard count. Current open shard "
                f"count: {current} Target shard count: {cmd.target}")
        self._check_limit(stream, cmd.target - current, cmd.shard_limit)
        for shard in old:
            self._close(stream, shard, meta.ts, changes)
        for start, end in uniform_ranges(cmd.target):
            parents = [s.index for s in old if s.start_hash <= end and s.end_hash >= start]
            child = stream.add_shard(start, end, meta.ts, parents)
            self._save_shard(stream, child, changes)
        self._transition(stream, UPDATING, cmd.delay_ms, meta.ts)
        self._save_stream(stream, changes)
        self.wakeups.add((cmd.account, cmd.name))
        return current, cmd.target

    # -- consumers --------------------------------------------------------------------------------------------

    @staticmethod
    def _consumer(stream: Stream, name: str) -> Consumer:
        consumer = stream.consumers.get(name)
        if consumer is None:
            raise ResourceNotFoundException(f"Consumer {name}, under stream {stream.name} under account "
                                            f"{stream.account} not found.")
        return consumer

    def _register(self, cmd: RegisterConsumer, meta: Meta, changes: ChangeSink) -> object:
        stream = self.stream(cmd.account, cmd.name)
        if cmd.consumer in stream.consumers:
            raise ResourceInUseException(f"Consumer {cmd.consumer} under stream {cmd.name} under account "
                                         f"{cmd.account} already exists.")
        if len(stream.consumers) >= MAX_CONSUMERS:
            raise LimitExceededException(f"Consumer limit of {MAX_CONSUMERS} for stream {cmd.name} under account "
                                         f"{cmd.account} has been reached.")
        consumer = Consumer(cmd.consumer, meta.ts, CREATING if cmd.delay_ms > 0 else ACTIVE,
                            meta.ts + cmd.delay_ms if cmd.delay_ms > 0 else None)
        stream.consumers[cmd.consumer] = consumer
        self._save_stream(stream, changes)
        return consumer

    def _deregister(self, cmd: DeregisterConsumer, meta: Meta, changes: ChangeSink) -> object:
        stream = self.stream(cmd.account, cmd.name)
        self._consumer(stream, cmd.consumer)
        del stream.consumers[cmd.consumer]
        self._save_stream(stream, changes)
        self.wakeups.add((cmd.account, cmd.name))
        return None

    # -- maintenance ------------------------------------------------------------------------------------------

    def _maintain(self, cmd: Maintain, meta: Meta, changes: ChangeSink) -> object:
        """Finish due transitions, expire records, forget old closed shards, clean deleted streams' records."""
        ts = meta.ts
        budget = cmd.limit
        done = 0
        for stream in list(self.streams.values()):
            if stream.due_ts is not None and stream.due_ts <= ts:
                done += 1
                if stream.status == DELETING:
                    self._drop(stream, changes)
                    continue
                stream.status, stream.due_ts = ACTIVE, None
                self._save_stream(stream, changes)
            for consumer in stream.consumers.values():
                if consumer.due_ts is not None and consumer.due_ts <= ts:
                    consumer.status, consumer.due_ts = ACTIVE, None
                    self._save_stream(stream, changes)
                    done += 1
            cutoff = ts - stream.retention_ms
            for shard in list(stream.shards.values()):
                if budget <= 0:
                    break
                keep = min(shard.expired_before(cutoff), shard.trim + budget)
                if keep > shard.trim:
                    removed = self._trim(stream.stream_id, shard, keep, changes)
                    budget -= removed
                    done += removed
                    self._save_shard(stream, shard, changes)
                if (shard.closed_ts is not None and shard.trim > shard.counter
                        and shard.closed_ts + stream.retention_ms <= ts):
                    del stream.shards[shard.index]
                    changes.delete(SHARDS, shard_key(stream.stream_id, shard.index))
                    done += 1
        for stream_id in list(self.graveyard):
            shards = self.graveyard[stream_id]
            while shards and budget > 0:
                shard = shards[-1]
                keep = min(shard.counter + 1, shard.trim + budget)
                removed = self._trim(stream_id, shard, keep, changes)
                budget -= removed
                done += removed
                if shard.trim > shard.counter:
                    shards.pop()
                    changes.delete(SHARDS, shard_key(stream_id, shard.index))
                    done += 1
            if not shards:
                del self.graveyard[stream_id]
        return done

    @staticmethod
    def _trim(stream_id: int, shard: Shard, keep: int, changes: ChangeSink) -> int:
        """Delete records trim..keep-1 and the chunks that lie wholly below ``keep``."""
        for counter in range(shard.trim, keep):
            changes.delete_payload(RECORDS, record_key(stream_id, shard.index, counter))
        removed = keep - shard.trim
        shard.trim = keep
        chunks = shard.chunks
        while chunks and (chunks[1][0] <= keep if len(chunks) > 1 else keep > shard.counter):
            changes.delete(CHUNKS, record_key(stream_id, shard.index, chunks[0][0]))
            chunks.pop(0)
        return removed
