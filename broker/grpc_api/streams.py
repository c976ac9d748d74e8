"""The ``raftmq.broker.v1.Streams`` servicer: protobuf in, Kinesis service calls out.

Every call goes through ``KinesisService.handle`` with Kinesis parameters, so validation, routing, sequence
numbers, throttling and errors are the Kinesis API's by construction. Put splits a large batch into PutRecords
calls of 500 (the model's unit), one after another so records of one partition key keep their order. Tail re-reads
the shard whenever the stream's wake-up fires after a durable put.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any, TypeAlias

import grpc

from broker.auth.grpc_auth import caller_account
from broker.grpc_api.errors import abort, detail_of
from broker.ids import random_uuid
from broker.kinesis.service import KinesisService
from broker.kinesis.subscriptions import kinesis_wake_key
from broker.model import errors
from broker.service import RequestContext
from proto.broker.v1 import streams_pb2 as pb

Context: TypeAlias = grpc.aio.ServicerContext[Any, Any]
PUT_CHUNK = 500
MAX_PUT_BYTES = 5 << 20
TAIL_IDLE_SECONDS = 1.0  # re-read at least this often (the wake-up is the fast path)
THROTTLED_PAUSE_SECONDS = 0.2  # a tail that exceeded the shard's read rate waits this long before reading again
_POSITIONS = {pb.Position.TRIM_HORIZON: "TRIM_HORIZON", pb.Position.LATEST: "LATEST",
              pb.Position.AT_SEQUENCE_NUMBER: "AT_SEQUENCE_NUMBER",
              pb.Position.AFTER_SEQUENCE_NUMBER: "AFTER_SEQUENCE_NUMBER", pb.Position.AT_TIMESTAMP: "AT_TIMESTAMP"}


class StreamsServicer:
    """Serves streams once ``kinesis`` yields a service; UNAVAILABLE before (node starting)."""

    def __init__(self, kinesis: Callable[[], KinesisService | None], account_id: str, region: str) -> None:
        self._kinesis = kinesis
        self._node_account = account_id
        self._region = region

    @property
    def _account(self) -> str:
        """The caller's account (set by gRPC authentication), else the node's: resources are per account."""
        return caller_account(self._node_account)

    def _service(self) -> KinesisService:
        service = self._kinesis()
        if service is None:
            raise errors.ServiceUnavailable("Service is unable to handle request: the node is starting.")
        return service

    async def _call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        ctx = RequestContext(request_id=random_uuid(), account_id=self._account, region=self._region,
                             endpoint_url="", protocol="grpc")
        return await self._service().handle(operation, params, ctx)

    @staticmethod
    def _name(stream: str) -> str:
        if not stream:
            raise errors.MissingParameter("The request must contain the parameter stream.")
        return stream

    async def CreateStream(self, request: pb.CreateStreamRequest, context: Context) -> pb.StreamRef:
        try:
            params: dict[str, Any] = {"StreamName": self._name(request.stream)}
            if request.shard_count:
                params["ShardCount"] = request.shard_count
            else:
                params["StreamModeDetails"] = {"StreamMode": "ON_DEMAND"}
            await self._call("CreateStream", params)
        except Exception as exc:
            await abort(context, exc)
        return pb.StreamRef(stream=request.stream)

    async def DescribeStream(self, request: pb.StreamRef, context: Context) -> pb.StreamDescription:
        try:
            out = (await self._call("DescribeStream", {"StreamName": self._name(request.stream)}))[
                "StreamDescription"]
        except Exception as exc:
            await abort(context, exc)
        shards = [pb.Shard(shard_id=s["ShardId"], parent_shard_id=s.get("ParentShardId", ""),
                           starting_hash_key=s["HashKeyRange"]["StartingHashKey"],
                           ending_hash_key=s["HashKeyRange"]["EndingHashKey"],
                           starting_sequence_number=s["SequenceNumberRange"]["StartingSequenceNumber"],
                           ending_sequence_number=s["SequenceNumberRange"].get("EndingSequenceNumber", ""))
                  for s in out["Shards"]]
        return pb.StreamDescription(stream=out["StreamName"], arn=out["StreamARN"], status=out["StreamStatus"],
                                    shards=shards, retention_hours=out["RetentionPeriodHours"])

    async def ListStreams(self, request: pb.ListStreamsRequest, context: Context) -> pb.ListStreamsResponse:
        names: list[str] = []
        try:
            while True:
                params: dict[str, Any] = {"Limit": 1000}
                if names:
                    params["ExclusiveStartStreamName"] = names[-1]
                out = await self._call("ListStreams", params)
                names += out.get("StreamNames", [])
                if not out.get("HasMoreStreams"):
                    break
        except Exception as exc:
            await abort(context, exc)
        return pb.ListStreamsResponse(streams=names)

    async def DeleteStream(self, request: pb.StreamRef, context: Context) -> pb.StreamEmpty:
        try:
            await self._call("DeleteStream", {"StreamName": self._name(request.stream),
                                              "EnforceConsumerDeletion": True})
        except Exception as exc:
            await abort(context, exc)
        return pb.StreamEmpty()

    async def Put(self, request: pb.PutRequest, context: Context) -> pb.PutResponse:
        try:
            name = self._name(request.stream)
            if not request.records:
                raise errors.InvalidParameterValue("There should be at least one record in the request.")
            total = sum(len(r.data) + len(r.partition_key.encode()) for r in request.records)
            if total > MAX_PUT_BYTES:
                raise errors.InvalidParameterValue(f"Records size exceeds {MAX_PUT_BYTES} bytes ({total}).")
            results: list[pb.PutResult] = []
            for start in range(0, len(request.records), PUT_CHUNK):
                chunk = request.records[start:start + PUT_CHUNK]
                records = []
                for record in chunk:
                    raw: dict[str, Any] = {"Data": record.data, "PartitionKey": record.partition_key}
                    if record.explicit_hash_key:
                        raw["ExplicitHashKey"] = record.explicit_hash_key
                    records.append(raw)
                out = await self._call("PutRecords", {"StreamName": name, "Records": records})
                for placed in out["Records"]:
                    if "ErrorCode" in placed:
                        error = errors.BrokerError(placed["ErrorMessage"], code=placed["ErrorCode"])
                        results.append(pb.PutResult(error=detail_of(error)))
                    else:
                        results.append(pb.PutResult(shard_id=placed["ShardId"],
                                                    sequence_number=placed["SequenceNumber"]))
        except Exception as exc:
            await abort(context, exc)
        return pb.PutResponse(results=results)

    async def _iterator(self, request: pb.ReadRequest) -> str:
        if request.next:
            return request.next
        position = request.position
        params: dict[str, Any] = {"StreamName": self._name(request.stream), "ShardId": request.shard_id,
                                  "ShardIteratorType": _POSITIONS[position.type]}
        if position.sequence_number:
            params["StartingSequenceNumber"] = position.sequence_number
        if position.type == pb.Position.AT_TIMESTAMP:
            params["Timestamp"] = datetime.fromtimestamp(position.timestamp_ms / 1000, UTC)
        out = await self._call("GetShardIterator", params)
        iterator: str = out["ShardIterator"]
        return iterator

    async def _read(self, iterator: str, limit: int) -> pb.ReadResponse:
        params: dict[str, Any] = {"ShardIterator": iterator}
        if limit:
            params["Limit"] = limit
        out = await self._call("GetRecords", params)
        records = [pb.Record(data=r["Data"], partition_key=r["PartitionKey"], sequence_number=r["SequenceNumber"],
                             arrival_timestamp_ms=round(r["ApproximateArrivalTimestamp"] * 1000))
                   for r in out["Records"]]
        return pb.ReadResponse(records=records, next=out.get("NextShardIterator", ""),
                               millis_behind_latest=out.get("MillisBehindLatest", 0))

    async def Read(self, request: pb.ReadRequest, context: Context) -> pb.ReadResponse:
        try:
            return await self._read(await self._iterator(request), request.limit)
        except Exception as exc:
            await abort(context, exc)

    async def Tail(self, request: pb.ReadRequest, context: Context) -> AsyncIterator[pb.ReadResponse]:
        try:
            iterator = await self._iterator(request)
            service = self._service()
        except Exception as exc:
            await abort(context, exc)
        wake = kinesis_wake_key(self._account, request.stream)
        notifier = service._notifier
        while iterator:
            try:
                response = await self._read(iterator, request.limit)
            except errors.BrokerError as exc:
                if exc.code != "ProvisionedThroughputExceededException":
                    await abort(context, exc)
                await asyncio.sleep(THROTTLED_PAUSE_SECONDS)  # the shard's read rate is exceeded: back off
                continue
            iterator = response.next
            if response.records or not iterator:
                yield response
            elif notifier.closed:
                await abort(context, errors.ServiceUnavailable("Service is unable to handle request: the node is "
                                                               "shutting down."))
            else:
                # No await between the read above and this wait: a put that commits later wakes it.
                await notifier.wait(wake, TAIL_IDLE_SECONDS)
