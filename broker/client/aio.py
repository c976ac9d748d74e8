"""The asyncio client of the RaftMQ v1 gRPC API.

It talks to one node at a time and moves to the next address when a call fails with a retryable error (the node is
down, stopping, or between leaders), retrying with exponential backoff; any node serves any call, so following the
leader needs nothing more. Retried sends are at-least-once, as with every SQS client.
"""

from __future__ import annotations

import asyncio
import importlib
import random
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import grpc

from broker.client.consumer import Consumer
from broker.client.credentials import Credentials, interceptors
from broker.client.errors import RaftMQError
from broker.client.groups import AsyncGroups
from broker.client.producer import Producer
from broker.client.streams import AsyncStreams
from broker.client.topics import AsyncTopics
from broker.tls import channel_credentials
from proto.broker.v1 import admin_pb2 as admin_pb
from proto.broker.v1 import queues_pb2 as pb

# Generated gRPC glue has no type hints; imported dynamically as the server side does.
queues_grpc: Any = importlib.import_module("proto.broker.v1.queues_pb2_grpc")
admin_grpc: Any = importlib.import_module("proto.broker.v1.admin_pb2_grpc")
T = TypeVar("T")
CHANNEL_OPTIONS = [("grpc.max_receive_message_length", 64 << 20), ("grpc.max_send_message_length", 64 << 20)]


class AsyncClient:
    """``AsyncClient(["127.0.0.1:7000", "127.0.0.1:7001"])``; use as ``async with`` or call ``close()``."""

    def __init__(self, addresses: str | Sequence[str], *, retries: int = 8, backoff_s: float = 0.05,
                 max_backoff_s: float = 2.0, timeout_s: float = 60.0,
                 credentials: Credentials | tuple[str, str] | None = None, tls: bool = False,
                 tls_ca_file: str | None = None, tls_cert_file: str | None = None,
                 tls_key_file: str | None = None) -> None:
        """``credentials``: an access key and secret (else the AWS_* environment variables) to sign every call.
        ``tls`` (implied by ``tls_ca_file``): connect over TLS, trusting ``tls_ca_file`` or else the system roots;
        ``tls_cert_file``/``tls_key_file``: a client certificate (a cluster port, which requires one)."""
        self.addresses = [addresses] if isinstance(addresses, str) else list(addresses)
        if not self.addresses:
            raise ValueError("at least one node address is needed")
        self.retries = retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.timeout_s = timeout_s
        self.credentials = Credentials.resolve(credentials)
        self._tls = (channel_credentials(tls_ca_file, tls_cert_file, tls_key_file)
                     if tls or tls_ca_file or tls_cert_file else None)
        self._index = 0
        self._channels: dict[str, grpc.aio.Channel] = {}
        self.streams = AsyncStreams(self)
        self.topics = AsyncTopics(self)
        self.groups = AsyncGroups(self)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        channels, self._channels = list(self._channels.values()), {}
        for channel in channels:
            await channel.close()

    # -- connection and retries ------------------------------------------------------------------------------

    def stub(self) -> Any:
        """The Queues stub of the node currently in use."""
        address = self.addresses[self._index % len(self.addresses)]
        channel = self._channels.get(address)
        if channel is None:
            channel = self._channels[address] = (
                grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS,
                                          interceptors=interceptors(self.credentials)) if self._tls is None
                else grpc.aio.secure_channel(address, self._tls, options=CHANNEL_OPTIONS,
                                             interceptors=interceptors(self.credentials)))
        stub = queues_grpc.QueuesStub(channel)
        stub.channel = channel  # other services' stubs are built on the same channel
        return stub

    def next_node(self) -> None:
        """Move to the next address (after this one failed retryably)."""
        self._index += 1

    def backoff(self, attempt: int) -> float:
        """Full-jitter exponential backoff for retry number ``attempt`` (0-based)."""
        return random.uniform(0, min(self.max_backoff_s, self.backoff_s * (2 ** attempt)))

    async def sleep_backoff(self, attempt: int) -> None:
        await asyncio.sleep(self.backoff(attempt))

    async def retrying(self, attempt_call: Callable[[Any], Awaitable[T]]) -> T:
        """Run ``attempt_call(stub)``, retrying retryable failures on the next node with backoff."""
        attempt = 0
        while True:
            try:
                return await attempt_call(self.stub())
            except grpc.aio.AioRpcError as exc:
                error = RaftMQError.from_rpc(exc)
                if not error.retryable or attempt >= self.retries:
                    raise error from None
            self.next_node()
            await asyncio.sleep(self.backoff(attempt))
            attempt += 1

    async def _unary(self, method: str, request: Any) -> Any:
        return await self.retrying(lambda stub: getattr(stub, method)(request, timeout=self.timeout_s))

    # -- queues ------------------------------------------------------------------------------------------------

    async def create_queue(self, name: str, attributes: dict[str, str] | None = None,
                           tags: dict[str, str] | None = None) -> str:
        await self._unary("CreateQueue", pb.CreateQueueRequest(queue=name, attributes=attributes or {},
                                                               tags=tags or {}))
        return name

    async def get_queue(self, name: str) -> str:
        """The name back when the queue exists; RaftMQError(QueueDoesNotExist) otherwise."""
        ref: pb.QueueRef = await self._unary("GetQueue", pb.QueueRef(queue=name))
        return ref.queue

    async def list_queues(self, prefix: str = "") -> list[str]:
        response: pb.ListQueuesResponse = await self._unary("ListQueues", pb.ListQueuesRequest(prefix=prefix))
        return list(response.queues)

    async def delete_queue(self, name: str) -> None:
        await self._unary("DeleteQueue", pb.QueueRef(queue=name))

    async def purge_queue(self, name: str) -> None:
        await self._unary("PurgeQueue", pb.QueueRef(queue=name))

    async def get_queue_attributes(self, name: str, names: Sequence[str] = ()) -> dict[str, str]:
        response: pb.QueueAttributes = await self._unary(
            "GetQueueAttributes", pb.GetQueueAttributesRequest(queue=name, names=list(names)))
        return dict(response.attributes)

    async def set_queue_attributes(self, name: str, attributes: dict[str, str]) -> None:
        await self._unary("SetQueueAttributes", pb.SetQueueAttributesRequest(queue=name, attributes=attributes))

    # -- messages ----------------------------------------------------------------------------------------------

    async def send(self, queue: str, entries: Sequence[str | pb.SendEntry]) -> list[pb.SendResult]:
        """Send a batch in one replicated command; results index-aligned, a failed entry has ``error`` set."""
        request = pb.SendRequest(queue=queue, entries=[
            pb.SendEntry(body=e) if isinstance(e, str) else e for e in entries])
        response: pb.SendResponse = await self._unary("Send", request)
        return list(response.results)

    async def receive(self, queue: str, max_messages: int = 10, *, wait_seconds: int | None = None,
                      visibility_timeout: int | None = None, attempt_id: str = "") -> list[pb.Message]:
        request = pb.ReceiveRequest(queue=queue, max_messages=max_messages, attempt_id=attempt_id)
        if wait_seconds is not None:
            request.wait_seconds = wait_seconds
        if visibility_timeout is not None:
            request.visibility_timeout = visibility_timeout
        response: pb.ReceiveResponse = await self._unary("Receive", request)
        return list(response.messages)

    async def delete(self, queue: str, receipt_handles: Sequence[str]) -> list[pb.EntryFailure]:
        """Delete (acknowledge) messages; returns the failed entries (empty: all deleted)."""
        response: pb.BatchResponse = await self._unary(
            "Delete", pb.DeleteRequest(queue=queue, receipt_handles=list(receipt_handles)))
        return list(response.failures)

    async def change_visibility(self, queue: str, changes: Sequence[tuple[str, int]]) -> list[pb.EntryFailure]:
        request = pb.ChangeVisibilityRequest(queue=queue, changes=[
            pb.VisibilityChange(receipt_handle=h, visibility_timeout=t) for h, t in changes])
        response: pb.BatchResponse = await self._unary("ChangeVisibility", request)
        return list(response.failures)

    # -- cluster administration ------------------------------------------------------------------------------

    async def cluster_status(self) -> admin_pb.ClusterStatusResponse:
        """The view of the node currently in use (``peers`` is filled when it is the leader)."""
        status: admin_pb.ClusterStatusResponse = await self._admin("ClusterStatus", admin_pb.ClusterStatusRequest())
        return status

    async def add_node(self, node_id: str, address: str) -> None:
        await self._admin("AddNode", admin_pb.AddNodeRequest(node_id=node_id, address=address))

    async def remove_node(self, node_id: str) -> None:
        await self._admin("RemoveNode", admin_pb.NodeRef(node_id=node_id))

    async def transfer_leadership(self, node_id: str) -> None:
        await self._admin("TransferLeadership", admin_pb.NodeRef(node_id=node_id))

    async def _admin(self, method: str, request: Any) -> Any:
        return await self.retrying(lambda stub: getattr(admin_grpc.AdminStub(stub.channel), method)(
            request, timeout=self.timeout_s))

    def producer(self, queue: str, *, linger_ms: float = 2.0, max_batch: int = 500) -> Producer:
        """Sends batched automatically: ``await producer.send(body)`` resolves when its batch is durable."""
        return Producer(self, queue, linger_ms=linger_ms, max_batch=max_batch)

    def consumer(self, queue: str, *, max_in_flight: int = 100, max_batch: int = 100,
                 visibility_timeout: int | None = None) -> Consumer:
        """``async for message in consumer: ...; await message.ack()`` over one Consume stream (reconnecting)."""
        return Consumer(self, queue, max_in_flight=max_in_flight, max_batch=max_batch,
                        visibility_timeout=visibility_timeout)
