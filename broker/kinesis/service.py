"""The Kinesis service (``broker.service.AwsService`` named "kinesis"): request params -> commands -> replies.

Stateless rules (sizes, hash keys, sequence numbers, iterator tokens) are checked here before proposing; rules that
depend on stream state are the model's. Reads (describe/list calls, GetShardIterator, GetRecords) wait for
``read_barrier`` and then read the model's metadata and the durable records table, so only committed records are
ever returned and a replay from one position returns the same records.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import orjson

from broker.kinesis import render
from broker.kinesis.arns import is_consumer_arn, parse_consumer_arn, parse_stream_arn
from broker.kinesis.config import KinesisConfig
from broker.kinesis.iterators import Position, check_fresh, decode_iterator, encode_iterator
from broker.kinesis.params import (
    check_tags,
    decode_token,
    encode_token,
    filter_wire,
    filtered,
    parse_hash_key,
)
from broker.kinesis.records import first_at_or_after, read_records
from broker.kinesis.sealing import RecordSealer
from broker.kinesis.subscriptions import FanOut, Subscription
from broker.kinesis.throttle import ShardThrottle
from broker.kms.sealer import KINESIS_MANAGED, Sealer
from broker.model import errors
from broker.model.commands import Command
from broker.model.kinesis_commands import (
    CreateStream,
    DeleteStream,
    DeregisterConsumer,
    Maintain,
    MergeShards,
    PutEntry,
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
    ExpiredNextTokenException,
    InvalidArgumentException,
    ProvisionedThroughputExceededException,
    ResourceInUseException,
    ResourceNotFoundException,
    ValidationException,
    rate_exceeded,
    stream_not_found,
)
from broker.model.kinesis_keys import (
    parse_sequence_number,
    partition_hash,
    sequence_base,
    shard_id,
)
from broker.model.kinesis_model import KinesisModel
from broker.model.kinesis_stream import ON_DEMAND, PROVISIONED, Consumer, Shard, Stream
from broker.notify import Notifier
from broker.replication import propose
from broker.service import RequestContext
from cluster.api import Replicator
from storage.changes import TableReader

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any], RequestContext], Awaitable[dict[str, Any]]]

MAX_PUT_RECORDS_BYTES = 5 << 20
LIST_SHARDS_TOKEN_MS = 300_000  # a ListShards NextToken is good for 300 seconds, as AWS documents
MIN_RETENTION_HOURS = 24
MAX_RETENTION_HOURS = 8760
ALL_METRICS = ("IncomingBytes", "IncomingRecords", "OutgoingBytes", "OutgoingRecords",
               "WriteProvisionedThroughputExceeded", "ReadProvisionedThroughputExceeded", "IteratorAgeMilliseconds")


class KinesisService:
    """Kinesis Data Streams over the replicated model."""

    name = "kinesis"

    def __init__(self, model: KinesisModel, replicator: Replicator, reader: TableReader, notifier: Notifier,
                 config: KinesisConfig | None = None, *, is_leader: Callable[[], bool] = lambda: True,
                 sealer: Sealer | None = None) -> None:
        self._model = model
        self._is_leader = is_leader  # only the leader proposes maintenance; followers would propose the same
        self._rep = replicator
        self._reader = reader
        self._notifier = notifier
        self._config = config or KinesisConfig()
        self._throttle = ShardThrottle(self._config.throughput_limits)
        self._maintenance: asyncio.Task[None] | None = None
        # ``sealer``: the node's broker.kms sealer (key file + managed roots); alone, only alias/aws/kinesis.
        self._records = RecordSealer(sealer or Sealer(roots={KINESIS_MANAGED: lambda: model.iterator_key}))
        self._fanout = FanOut(model, replicator, reader, notifier, self._config, self.unsealer)
        self._ops: dict[str, Handler] = {
            "CreateStream": self.create_stream, "DeleteStream": self.delete_stream,
            "DescribeStream": self.describe_stream, "DescribeStreamSummary": self.describe_stream_summary,
            "ListStreams": self.list_streams, "DescribeLimits": self.describe_limits,
            "IncreaseStreamRetentionPeriod": self.increase_retention,
            "DecreaseStreamRetentionPeriod": self.decrease_retention,
            "AddTagsToStream": self.add_tags, "RemoveTagsFromStream": self.remove_tags,
            "ListTagsForStream": self.list_tags_for_stream, "TagResource": self.tag_resource,
            "UntagResource": self.untag_resource, "ListTagsForResource": self.list_tags_for_resource,
            "UpdateStreamMode": self.update_stream_mode, "StartStreamEncryption": self.start_encryption,
            "StopStreamEncryption": self.stop_encryption, "EnableEnhancedMonitoring": self.enable_monitoring,
            "DisableEnhancedMonitoring": self.disable_monitoring, "PutResourcePolicy": self.put_policy,
            "GetResourcePolicy": self.get_policy, "DeleteResourcePolicy": self.delete_policy,
            "UpdateMaxRecordSize": self.update_max_record_size, "ListShards": self.list_shards,
            "SplitShard": self.split_shard, "MergeShards": self.merge_shards,
            "UpdateShardCount": self.update_shard_count, "PutRecord": self.put_record,
            "PutRecords": self.put_records, "GetShardIterator": self.get_shard_iterator,
            "GetRecords": self.get_records, "RegisterStreamConsumer": self.register_consumer,
            "DescribeStreamConsumer": self.describe_consumer, "ListStreamConsumers": self.list_consumers,
            "DeregisterStreamConsumer": self.deregister_consumer,
        }

    @property
    def operations(self) -> frozenset[str]:
        return frozenset(self._ops)

    async def handle(self, operation: str, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        handler = self._ops.get(operation)
        if handler is None:
            raise errors.UnknownOperationException(f"The operation {operation} is not supported by RaftMQ.")
        return await handler(params, ctx)

    # -- helpers ----------------------------------------------------------------------------------------------

    def _account(self, ctx: RequestContext) -> str:
        return ctx.account_id or self._config.account_id

    def _target(self, params: dict[str, Any], ctx: RequestContext) -> tuple[str, str]:
        """(account, stream name) from StreamName and/or StreamARN, as AWS accepts either."""
        name = params.get("StreamName")
        arn = params.get("StreamARN")
        if arn is not None:
            account, arn_name = parse_stream_arn(arn)
            if name is not None and name != arn_name:
                raise InvalidArgumentException(
                    f"StreamName {name} and StreamARN {arn} do not refer to the same stream.")
            return account, arn_name
        if name is None:
            raise InvalidArgumentException("Either StreamName or StreamARN should be provided.")
        return self._account(ctx), name

    async def _propose(self, command: Command) -> Any:
        return await propose(self._rep, command)

    async def _stream(self, params: dict[str, Any], ctx: RequestContext) -> Stream:
        account, name = self._target(params, ctx)
        await self._rep.read_barrier()
        return self._model.stream(account, name)

    # -- streams ----------------------------------------------------------------------------------------------

    async def create_stream(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        name = params["StreamName"]
        mode = (params.get("StreamModeDetails") or {}).get("StreamMode", PROVISIONED)
        count = params.get("ShardCount")
        if mode == PROVISIONED and count is None:
            raise InvalidArgumentException("ShardCount is required for a stream in PROVISIONED mode.")
        if mode == ON_DEMAND:
            if count is not None:
                raise InvalidArgumentException("ShardCount cannot be specified for a stream in ON_DEMAND mode.")
            await self._rep.read_barrier()
            if self._model.on_demand_count(self._account(ctx)) >= self._config.on_demand_stream_limit:
                raise errors.BrokerError(
                    f"This request would exceed the ON_DEMAND stream limit of {self._config.on_demand_stream_limit}"
                    f" for the account {self._account(ctx)}.", code="LimitExceededException")
        tags = check_tags(params.get("Tags") or {})
        await self._propose(CreateStream(
            self._account(ctx), name, ctx.region or self._config.region, count or 0, mode,
            tuple(sorted(tags.items())), os.urandom(32), self._config.status_delay_ms, self._config.shard_limit,
            params.get("MaxRecordSizeInKiB") or 1024))
        return {}

    async def delete_stream(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        account, name = self._target(params, ctx)
        await self._propose(DeleteStream(account, name, bool(params.get("EnforceConsumerDeletion")),
                                         self._config.status_delay_ms))
        return {}

    async def describe_stream(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        stream = await self._stream(params, ctx)
        limit = params.get("Limit") or 100
        shards = list(stream.shards.values())
        start = params.get("ExclusiveStartShardId")
        if start is not None:
            shards = [s for s in shards if s.id > start]
        page = shards[:limit]
        return {"StreamDescription": render.description(stream, page, len(shards) > limit)}

    async def describe_stream_summary(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        stream = await self._stream(params, ctx)
        return {"StreamDescriptionSummary": render.summary(stream)}

    async def list_streams(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        limit = params.get("Limit") or 100
        token = params.get("NextToken")
        after = params.get("ExclusiveStartStreamName")
        if token is not None:
            after = decode_token(token, "NextToken")[0]
        await self._rep.read_barrier()
        streams = self._model.list_streams(self._account(ctx))
        if after is not None:
            streams = [s for s in streams if s.name > after]
        page = streams[:limit]
        out: dict[str, Any] = {"StreamNames": [s.name for s in page], "HasMoreStreams": len(streams) > limit,
                               "StreamSummaries": [render.stream_summary(s) for s in page]}
        if len(streams) > limit:
            out["NextToken"] = encode_token([page[-1].name])
        return out

    async def describe_limits(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        await self._rep.read_barrier()
        account = self._account(ctx)
        return {"ShardLimit": self._config.shard_limit, "OpenShardCount": self._model.open_shard_count(account),
                "OnDemandStreamCount": self._model.on_demand_count(account),
                "OnDemandStreamCountLimit": self._config.on_demand_stream_limit}

    async def _retention(self, params: dict[str, Any], ctx: RequestContext, increase: bool) -> dict[str, Any]:
        account, name = self._target(params, ctx)
        hours = params["RetentionPeriodHours"]
        if hours < MIN_RETENTION_HOURS:
            raise InvalidArgumentException(f"Minimum allowed retention period is {MIN_RETENTION_HOURS} hours. "
                                           f"Requested retention period ({hours} hours) is too short.")
        if hours > MAX_RETENTION_HOURS:
            raise InvalidArgumentException(f"Maximum allowed retention period is {MAX_RETENTION_HOURS} hours. "
                                           f"Requested retention period ({hours} hours) is too long.")
        await self._propose(SetRetention(account, name, hours, increase))
        return {}

    async def increase_retention(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        return await self._retention(params, ctx, True)

    async def decrease_retention(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        return await self._retention(params, ctx, False)

    async def update_stream_mode(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        account, name = self._target(params, ctx)
        mode = params["StreamModeDetails"]["StreamMode"]
        await self._propose(UpdateStreamMode(account, name, mode, self._config.status_delay_ms))
        return {}

    async def update_max_record_size(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        account, name = self._target(params, ctx)
        await self._propose(UpdateMaxRecordSize(account, name, params["MaxRecordSizeInKiB"]))
        return {}

    # -- tags, encryption, monitoring, policies --------------------------------------------------------------

    async def add_tags(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        account, name = self._target(params, ctx)
        tags = check_tags(params["Tags"])
        await self._propose(TagStream(account, name, tuple(sorted(tags.items()))))
        return {}

    async def remove_tags(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        account, name = self._target(params, ctx)
        await self._propose(UntagStream(account, name, tuple(params["TagKeys"])))
        return {}

    async def list_tags_for_stream(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        stream = await self._stream(params, ctx)
        items = sorted(stream.tags.items())
        start = params.get("ExclusiveStartTagKey")
        if start is not None:
            items = [(k, v) for k, v in items if k > start]
        limit = params.get("Limit") or 50
        return {"Tags": [{"Key": k, "Value": v} for k, v in items[:limit]], "HasMoreTags": len(items) > limit}

    def _resource(self, arn: str) -> tuple[str, str]:
        if is_consumer_arn(arn):
            raise InvalidArgumentException(f"Tagging of consumer {arn} is not supported by RaftMQ; tag the stream.")
        return parse_stream_arn(arn)

    async def tag_resource(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        account, name = self._resource(params["ResourceARN"])
        tags = check_tags(params["Tags"])
        await self._propose(TagStream(account, name, tuple(sorted(tags.items()))))
        return {}

    async def untag_resource(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        account, name = self._resource(params["ResourceARN"])
        await self._propose(UntagStream(account, name, tuple(params["TagKeys"])))
        return {}

    async def list_tags_for_resource(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        account, name = self._resource(params["ResourceARN"])
        await self._rep.read_barrier()
        stream = self._model.stream(account, name)
        return {"Tags": [{"Key": k, "Value": v} for k, v in sorted(stream.tags.items())]}

    async def start_encryption(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        account, name = self._target(params, ctx)
        if params["EncryptionType"] != "KMS":
            raise InvalidArgumentException("EncryptionType must be KMS to start stream encryption.")
        self._records.check(params["KeyId"])  # KMSNotFoundException / KMSDisabledException, as AWS answers
        await self._propose(SetEncryption(account, name, "KMS", params["KeyId"], self._config.status_delay_ms))
        return {}

    async def stop_encryption(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        account, name = self._target(params, ctx)
        await self._propose(SetEncryption(account, name, "NONE", None, self._config.status_delay_ms))
        return {}

    async def _monitoring(self, params: dict[str, Any], ctx: RequestContext, enable: bool) -> dict[str, Any]:
        account, name = self._target(params, ctx)
        wanted = params["ShardLevelMetrics"]
        metrics = ALL_METRICS if "ALL" in wanted else tuple(wanted)
        current, desired = await self._propose(SetMonitoring(account, name, metrics, enable))
        await self._rep.read_barrier()
        arn = self._model.stream(account, name).arn
        return {"StreamName": name, "StreamARN": arn, "CurrentShardLevelMetrics": current,
                "DesiredShardLevelMetrics": desired}

    async def enable_monitoring(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        return await self._monitoring(params, ctx, True)

    async def disable_monitoring(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        return await self._monitoring(params, ctx, False)

    @staticmethod
    def _policy_target(arn: str) -> tuple[str, str, str | None]:
        if is_consumer_arn(arn):
            account, name, consumer, _ = parse_consumer_arn(arn)
            return account, name, consumer
        account, name = parse_stream_arn(arn)
        return account, name, None

    async def put_policy(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        policy = params["Policy"]
        try:
            orjson.loads(policy)
        except orjson.JSONDecodeError:
            raise InvalidArgumentException("Policy is not a valid JSON document.") from None
        await self._propose(SetPolicy(*self._policy_target(params["ResourceARN"]), policy))
        return {}

    async def get_policy(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        account, name, consumer = self._policy_target(params["ResourceARN"])
        await self._rep.read_barrier()
        stream = self._model.stream(account, name)
        policy = stream.policy if consumer is None else self._consumer_of(stream, consumer).policy
        return {"Policy": policy if policy is not None else "{}"}

    async def delete_policy(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        await self._propose(SetPolicy(*self._policy_target(params["ResourceARN"]), None))
        return {}

    # -- shards -----------------------------------------------------------------------------------------------

    async def list_shards(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        token = params.get("NextToken")
        limit = params.get("MaxResults") or 1000
        if token is not None:
            if params.get("StreamName") is not None or params.get("StreamARN") is not None:
                raise InvalidArgumentException("NextToken and StreamName cannot be provided together.")
            account, name, after, filter_, issued = decode_token(token, "NextToken")
            if self._rep.now_ms() - issued > LIST_SHARDS_TOKEN_MS:
                raise ExpiredNextTokenException("The pagination token passed to the operation is expired.")
            if params.get("ShardFilter") is not None:
                raise InvalidArgumentException("NextToken and ShardFilter cannot be provided together.")
        else:
            account, name = self._target(params, ctx)
            after = params.get("ExclusiveStartShardId")
            filter_ = filter_wire(params.get("ShardFilter"))
        await self._rep.read_barrier()
        stream = self._model.stream(account, name)
        shards = filtered(stream, filter_, self._rep.now_ms())
        if after is not None:
            shards = [s for s in shards if s.id > after]
        page = shards[:limit]
        out: dict[str, Any] = {"Shards": [render.shard(s) for s in page]}
        if len(shards) > limit:
            out["NextToken"] = encode_token([account, name, page[-1].id, filter_, self._rep.now_ms()])
        return out

    async def split_shard(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        account, name = self._target(params, ctx)
        new = parse_hash_key(params["NewStartingHashKey"], "NewStartingHashKey")
        await self._propose(SplitShard(account, name, params["ShardToSplit"], new, self._config.status_delay_ms,
                                       self._config.shard_limit))
        return {}

    async def merge_shards(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        account, name = self._target(params, ctx)
        await self._propose(MergeShards(account, name, params["ShardToMerge"], params["AdjacentShardToMerge"],
                                        self._config.status_delay_ms))
        return {}

    async def update_shard_count(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        account, name = self._target(params, ctx)
        target = params["TargetShardCount"]
        current, target = await self._propose(
            UpdateShardCount(account, name, target, self._config.status_delay_ms, self._config.shard_limit))
        await self._rep.read_barrier()
        arn = self._model.stream(account, name).arn
        return {"StreamName": name, "CurrentShardCount": current, "TargetShardCount": target, "StreamARN": arn}

    # -- records ----------------------------------------------------------------------------------------------

    def _entry(self, raw: dict[str, Any], max_bytes: int, where: str) -> PutEntry:
        data: bytes = raw["Data"]
        key: str = raw["PartitionKey"]
        if len(data) > max_bytes:
            raise ValidationException(
                f"1 validation error detected: Value at '{where}data' failed to satisfy constraint: Member must "
                f"have length less than or equal to {max_bytes}")
        explicit = raw.get("ExplicitHashKey")
        hash_key = partition_hash(key) if explicit is None else parse_hash_key(explicit, "ExplicitHashKey")
        return PutEntry(key, hash_key, data)

    def _seal(self, stream: Stream, entry: PutEntry) -> PutEntry:
        """Encrypt the data when the stream has encryption on (checked again for every call, as AWS does)."""
        if stream.encryption != "KMS":
            return entry
        data = self._records.seal(stream.stream_id, entry.data, stream.key_id or KINESIS_MANAGED)
        return entry._replace(data=data, sealed=True)

    def unsealer(self, stream_id: int) -> Callable[[bytes], bytes]:
        """Opens records of one stream stored encrypted (for readers of the records table)."""
        return lambda sealed: self._records.open(stream_id, sealed)

    async def _writable(self, account: str, name: str) -> Stream:
        """The stream records go to (for size limits and throttling; the model decides again when applying).

        Local state is read without a barrier, the fast path; only a miss waits for this node to catch up.
        """
        try:
            return self._model.readable(account, name)
        except ResourceNotFoundException:
            await self._rep.read_barrier()
            return self._model.readable(account, name)

    def _admit(self, stream: Stream, entries: list[PutEntry]) -> list[tuple[Shard, bool]]:
        now = self._rep.now_ms()
        return [(shard, self._throttle.admit_write((stream.stream_id, shard.index), len(e.data) + len(
            e.partition_key.encode()), now)) for e in entries for shard in (stream.route(e.hash_key),)]

    async def put_record(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        account, name = self._target(params, ctx)
        stream = await self._writable(account, name)
        entry = self._entry(params, stream.max_record_kib * 1024, "")
        ordering = params.get("SequenceNumberForOrdering")
        if ordering is not None and ordering != "0" and parse_sequence_number(ordering) is None:
            raise InvalidArgumentException(
                f"ExclusiveMinimumSequenceNumber {ordering} used in PutRecord on stream {name} under account "
                f"{account} is invalid.")
        ((shard, admitted),) = self._admit(stream, [entry])
        if not admitted:
            raise rate_exceeded(shard.id, name, account)
        entry = self._seal(stream, entry)
        arrival, ((index, counter),) = await self._propose(PutRecords(account, name, (entry,), ordering))
        stream = self._model.streams.get((account, name), stream)  # the one the records went to
        return {"ShardId": f"shardId-{index:012d}", "SequenceNumber": _sequence(stream, index, counter, arrival),
                "EncryptionType": stream.encryption}

    async def put_records(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        account, name = self._target(params, ctx)
        stream = await self._writable(account, name)
        max_bytes = stream.max_record_kib * 1024
        entries = [self._entry(raw, max_bytes, f"records.{i}.member.")
                   for i, raw in enumerate(params["Records"], 1)]
        total = sum(len(e.data) + len(e.partition_key.encode()) for e in entries)
        if total > MAX_PUT_RECORDS_BYTES:
            raise InvalidArgumentException("Records size exceeds 5 MB limit")
        admitted = self._admit(stream, entries)
        accepted = tuple(self._seal(stream, e) for e, (_, ok) in zip(entries, admitted, strict=True) if ok)
        arrival, placed = await self._propose(PutRecords(account, name, accepted)) if accepted else (0, [])
        stream = self._model.streams.get((account, name), stream)  # the one the records went to
        results = iter(placed)
        bases: dict[int, int] = {}
        out: list[dict[str, Any]] = []
        failed = 0
        for shard, ok in admitted:
            if ok:
                index, counter = next(results)
                base = bases.get(index)
                if base is None:
                    base = bases[index] = _sequence_base(stream, index)
                out.append({"SequenceNumber": str(base | counter << 48 | arrival), "ShardId": shard_id(index)})
            else:
                failed += 1
                error = rate_exceeded(shard.id, name, account)
                out.append({"ErrorCode": error.code, "ErrorMessage": error.message})
        return {"FailedRecordCount": failed, "Records": out, "EncryptionType": stream.encryption}

    async def get_shard_iterator(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        stream = await self._stream(params, ctx)
        if stream.status not in ("ACTIVE", "UPDATING"):
            raise stream_not_found(stream.name, stream.account)
        shard = self._model.shard(stream, params["ShardId"])
        counter = self._start_counter(stream, shard, params["ShardIteratorType"], params.get("StartingSequenceNumber"),
                                      params.get("Timestamp"))
        return {"ShardIterator": self._iterator(stream, shard, counter)}

    def _iterator(self, stream: Stream, shard: Shard, counter: int) -> str:
        key = self._model.iterator_key
        assert key is not None  # set by the first CreateStream
        return encode_iterator(key, Position(stream.stream_id, shard.index, counter, self._rep.now_ms(),
                                             stream.account, stream.name))

    def _start_counter(self, stream: Stream, shard: Shard, kind: str, seq: str | None,
                       when: datetime | None) -> int:
        if kind in ("AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER"):
            if seq is None:
                raise InvalidArgumentException(
                    "Must either specify (1) AT_SEQUENCE_NUMBER or AFTER_SEQUENCE_NUMBER and StartingSequenceNumber "
                    f"or (2) TRIM_HORIZON or LATEST and no StartingSequenceNumber. Request specified {kind} and no "
                    "StartingSequenceNumber.")
            parsed = parse_sequence_number(seq)
            if parsed is None:
                raise InvalidArgumentException(
                    f"StartingSequenceNumber {seq} used in GetShardIterator on shard {shard.id} in stream "
                    f"{stream.name} under account {stream.account} is invalid.")
            if parsed[1] != shard.index or parsed[0] != shard.created_s:
                raise InvalidArgumentException(
                    f"Invalid StartingSequenceNumber. It encodes shardId-{parsed[1]:012d}, while it was used in a "
                    f"call to a shard with {shard.id}")
            counter = parsed[2] if kind == "AT_SEQUENCE_NUMBER" else parsed[2] + 1
            return max(counter, shard.trim)
        if seq is not None:
            raise InvalidArgumentException(
                "Must either specify (1) AT_SEQUENCE_NUMBER or AFTER_SEQUENCE_NUMBER and StartingSequenceNumber or "
                f"(2) TRIM_HORIZON or LATEST and no StartingSequenceNumber. Request specified {kind} and also a "
                "StartingSequenceNumber.")
        if kind == "TRIM_HORIZON":
            return shard.trim
        if kind == "LATEST":
            return shard.counter + 1
        if when is None:
            raise InvalidArgumentException("Must specify timestampInMillis parameter for iterator of type "
                                           "AT_TIMESTAMP. Current request has no timestamp parameter.")
        ts_ms = int(when.timestamp() * 1000)
        now = self._rep.now_ms()
        if ts_ms > now:
            raise InvalidArgumentException("The timestampInMillis parameter cannot be greater than the "
                                           f"currentTimestampInMillis. timestampInMillis: {ts_ms}, "
                                           f"currentTimestampInMillis: {now}")
        start = shard.counter_at(ts_ms)
        return first_at_or_after(self._reader, stream.stream_id, shard.index, start, shard.counter, ts_ms)

    async def get_records(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        pos = decode_iterator(self._model.iterator_key, params["ShardIterator"])
        now = self._rep.now_ms()
        check_fresh(pos, now, self._config.iterator_ttl_ms)
        limit = params.get("Limit") or 10_000
        await self._rep.read_barrier()
        stream = self._model.by_id.get(pos.stream_id)
        if stream is None:
            raise stream_not_found(pos.name, pos.account)
        shard = stream.shards.get(pos.shard_index)
        if shard is None:
            raise ResourceNotFoundException(f"Shard shardId-{pos.shard_index:012d} in stream {stream.name} under "
                                            f"account {stream.account} has been trimmed.")
        key = (stream.stream_id, shard.index)
        if not self._throttle.admit_read(key, now):
            raise ProvisionedThroughputExceededException(
                f"Rate exceeded for Shard - {stream.account}/{stream.name}/{shard.id}")
        return self._read(stream, shard, pos.counter, limit, now)

    def _read(self, stream: Stream, shard: Shard, counter: int, limit: int, now: int) -> dict[str, Any]:
        start = max(counter, shard.trim)
        found = read_records(self._reader, stream.stream_id, shard.index, start, shard.counter, limit,
                             unseal=self.unsealer(stream.stream_id))
        size = sum(len(r.data) + len(r.partition_key) for r in found)
        self._throttle.note_read_bytes((stream.stream_id, shard.index), size, now)
        next_counter = found[-1].counter + 1 if found else start
        out: dict[str, Any] = {"Records": [render.record(shard, r) for r in found]}
        at_end = next_counter > shard.counter
        if at_end and not shard.is_open:
            out["ChildShards"] = render.child_shards(stream, shard)
            out["MillisBehindLatest"] = 0
            return out
        out["NextShardIterator"] = self._iterator(stream, shard, next_counter)
        out["MillisBehindLatest"] = 0 if at_end or not found else max(0, now - found[-1].arrival_ms)
        return out

    # -- consumers --------------------------------------------------------------------------------------------

    @staticmethod
    def _consumer_of(stream: Stream, name: str) -> Consumer:
        consumer = stream.consumers.get(name)
        if consumer is None:
            raise ResourceNotFoundException(f"Consumer {name}, under stream {stream.name} under account "
                                            f"{stream.account} not found.")
        return consumer

    async def _consumer_target(self, params: dict[str, Any]) -> tuple[Stream, Consumer]:
        arn = params.get("ConsumerARN")
        if arn is not None:
            account, name, consumer_name, created_s = parse_consumer_arn(arn)
            await self._rep.read_barrier()
            stream = self._model.stream(account, name)
            consumer = self._consumer_of(stream, consumer_name)
            if consumer.created_ts // 1000 != created_s:
                raise ResourceNotFoundException(f"Consumer {arn} not found.")
            return stream, consumer
        stream_arn, by_name = params.get("StreamARN"), params.get("ConsumerName")
        if stream_arn is None or by_name is None:
            raise InvalidArgumentException("Either ConsumerARN or both ConsumerName and StreamARN must be provided.")
        account, name = parse_stream_arn(stream_arn)
        await self._rep.read_barrier()
        stream = self._model.stream(account, name)
        return stream, self._consumer_of(stream, by_name)

    async def register_consumer(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        account, name = parse_stream_arn(params["StreamARN"])
        consumer = await self._propose(RegisterConsumer(account, name, params["ConsumerName"],
                                                        self._config.consumer_delay_ms))
        await self._rep.read_barrier()
        return {"Consumer": render.consumer(self._model.stream(account, name), consumer)}

    async def describe_consumer(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        stream, consumer = await self._consumer_target(params)
        return {"ConsumerDescription": render.consumer(stream, consumer, with_stream=True)}

    async def list_consumers(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        token = params.get("NextToken")
        account, name = parse_stream_arn(params["StreamARN"])
        after = decode_token(token, "NextToken")[0] if token is not None else None
        limit = params.get("MaxResults") or 100
        await self._rep.read_barrier()
        stream = self._model.stream(account, name)
        consumers = sorted(stream.consumers.values(), key=lambda c: c.name)
        if after is not None:
            consumers = [c for c in consumers if c.name > after]
        page = consumers[:limit]
        out: dict[str, Any] = {"Consumers": [render.consumer(stream, c) for c in page]}
        if len(consumers) > limit:
            out["NextToken"] = encode_token([page[-1].name])
        return out

    async def deregister_consumer(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        stream, consumer = await self._consumer_target(params)
        await self._propose(DeregisterConsumer(stream.account, stream.name, consumer.name))
        return {}

    # -- enhanced fan-out -------------------------------------------------------------------------------------

    async def subscribe(self, params: dict[str, Any], ctx: RequestContext) -> Subscription:
        """SubscribeToShard: check the request (raising before anything is streamed), then return its events
        (see ``broker.kinesis.subscriptions``)."""
        stream, consumer = await self._consumer_target({"ConsumerARN": params["ConsumerARN"]})
        if consumer.status != "ACTIVE":
            raise ResourceInUseException(f"Consumer {consumer.name} under stream {stream.name} under account "
                                         f"{stream.account} is not in ACTIVE state.")
        shard = self._model.shard(stream, params["ShardId"])
        start = params["StartingPosition"]
        counter = self._start_counter(stream, shard, start["Type"], start.get("SequenceNumber"),
                                      start.get("Timestamp"))
        return self._fanout.open(stream, consumer, shard, counter)

    # -- background -------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the maintenance task; it ends by itself once the notifier is closed (node shutdown)."""
        self._maintenance = asyncio.get_running_loop().create_task(self.run_maintenance(), name="kinesis-maint")

    async def run_maintenance(self, stop: asyncio.Event | None = None) -> None:
        """Propose ``Maintain`` whenever a status transition or a retention expiry is due; until stop/shutdown."""
        interval = self._config.maintenance_interval_s
        while not self._notifier.closed and not (stop is not None and stop.is_set()):
            due = self._model.next_due() if self._is_leader() else None
            now = self._rep.now_ms()
            if due is not None and due <= now:
                try:
                    done = await self._propose(Maintain())
                except Exception:  # not leader, shutting down: try again later
                    log.debug("kinesis maintenance not applied", exc_info=True)
                    done = 0
                if done:
                    continue
            pause = interval if due is None or due <= now else min(interval, (due - now) / 1000 + 0.001)
            if stop is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), pause)
            else:
                await self._notifier.wait(("kinesis-maintenance",), pause)


def _sequence_base(stream: Stream, index: int) -> int:
    shard = stream.shards.get(index)
    return sequence_base(shard.created_s if shard is not None else 0, index)


def _sequence(stream: Stream, index: int, counter: int, arrival_ms: int) -> str:
    return str(_sequence_base(stream, index) | counter << 48 | arrival_ms)
