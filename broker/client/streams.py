"""Streams through the v1 API: ``client.streams.put(...)``, ``read(...)`` and ``async for batch in tail(...)``."""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any

import grpc

from broker.client.errors import RaftMQError
from proto.broker.v1 import streams_pb2 as pb

if TYPE_CHECKING:
    from broker.client.aio import AsyncClient

streams_grpc: Any = importlib.import_module("proto.broker.v1.streams_pb2_grpc")
Position = pb.Position


def position(kind: str = "TRIM_HORIZON", sequence_number: str = "", timestamp_ms: int = 0) -> pb.Position:
    """``position("AFTER_SEQUENCE_NUMBER", seq)``, ``position("AT_TIMESTAMP", timestamp_ms=...)``, ..."""
    return pb.Position(type=pb.Position.Type.Value(kind), sequence_number=sequence_number, timestamp_ms=timestamp_ms)


class AsyncStreams:
    """The stream calls of one ``AsyncClient`` (same nodes, same retries)."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    def _stub(self, stub: Any) -> Any:
        return streams_grpc.StreamsStub(stub.channel)

    async def _unary(self, method: str, request: Any) -> Any:
        timeout = self._client.timeout_s
        return await self._client.retrying(
            lambda stub: getattr(self._stub(stub), method)(request, timeout=timeout))

    async def create(self, name: str, shard_count: int = 1) -> None:
        await self._unary("CreateStream", pb.CreateStreamRequest(stream=name, shard_count=shard_count))

    async def describe(self, name: str) -> pb.StreamDescription:
        description: pb.StreamDescription = await self._unary("DescribeStream", pb.StreamRef(stream=name))
        return description

    async def list_streams(self) -> list[str]:
        response: pb.ListStreamsResponse = await self._unary("ListStreams", pb.ListStreamsRequest())
        return list(response.streams)

    async def delete(self, name: str) -> None:
        await self._unary("DeleteStream", pb.StreamRef(stream=name))

    async def put(self, name: str, records: Sequence[tuple[bytes, str] | pb.PutRecord]) -> list[pb.PutResult]:
        """Put (data, partition key) pairs or PutRecords; results index-aligned, failed ones have ``error``."""
        request = pb.PutRequest(stream=name, records=[
            r if isinstance(r, pb.PutRecord) else pb.PutRecord(data=r[0], partition_key=r[1]) for r in records])
        response: pb.PutResponse = await self._unary("Put", request)
        return list(response.results)

    async def read(self, name: str, shard_id: str, start: pb.Position | None = None, *, next: str = "",
                   limit: int = 0) -> pb.ReadResponse:
        request = pb.ReadRequest(stream=name, shard_id=shard_id, position=start or position(), next=next,
                                 limit=limit)
        response: pb.ReadResponse = await self._unary("Read", request)
        return response

    async def tail(self, name: str, shard_id: str, start: pb.Position | None = None,
                   limit: int = 0) -> AsyncIterator[pb.ReadResponse]:
        """Batches of new records as they commit; resumes after the last record seen when a node fails."""
        request = pb.ReadRequest(stream=name, shard_id=shard_id, position=start or position(), limit=limit)
        attempt = 0
        while True:
            call = self._stub(self._client.stub()).Tail(request)
            try:
                async for response in call:
                    attempt = 0
                    if response.records:
                        request = pb.ReadRequest(stream=name, shard_id=shard_id, limit=limit, position=position(
                            "AFTER_SEQUENCE_NUMBER", response.records[-1].sequence_number))
                    yield response
                return
            except grpc.aio.AioRpcError as exc:
                error = RaftMQError.from_rpc(exc)
                if not error.retryable or attempt >= self._client.retries:
                    raise error from None
            finally:
                call.cancel()
            self._client.next_node()
            await self._client.sleep_backoff(attempt)
            attempt += 1
