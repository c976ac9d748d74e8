"""Topics through the v1 API: ``client.topics.create(...)``, ``publish(...)``, ``subscribe(...)``."""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from proto.broker.v1 import topics_pb2 as pb

if TYPE_CHECKING:
    from broker.client.aio import AsyncClient

topics_grpc: Any = importlib.import_module("proto.broker.v1.topics_pb2_grpc")


class AsyncTopics:
    """The topic calls of one ``AsyncClient`` (same nodes, same retries)."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def _unary(self, method: str, request: Any) -> Any:
        timeout = self._client.timeout_s
        return await self._client.retrying(
            lambda stub: getattr(topics_grpc.TopicsStub(stub.channel), method)(request, timeout=timeout))

    async def create(self, name: str, attributes: dict[str, str] | None = None) -> str:
        """Create (or get) a topic; returns its ARN."""
        ref: pb.TopicRef = await self._unary("CreateTopic", pb.CreateTopicRequest(topic=name,
                                                                                  attributes=attributes or {}))
        return ref.arn

    async def delete(self, name: str) -> None:
        await self._unary("DeleteTopic", pb.TopicRef(topic=name))

    async def list_topics(self) -> list[str]:
        response: pb.ListTopicsResponse = await self._unary("ListTopics", pb.ListTopicsRequest())
        return [t.topic for t in response.topics]

    async def publish(self, name: str, entries: Sequence[str | pb.PublishEntry]) -> list[pb.PublishResult]:
        """Publish a batch; results index-aligned, a failed entry has ``error`` set."""
        request = pb.PublishRequest(topic=name, entries=[
            pb.PublishEntry(message=e) if isinstance(e, str) else e for e in entries])
        response: pb.PublishResponse = await self._unary("Publish", request)
        return list(response.results)

    async def subscribe(self, name: str, protocol: str, endpoint: str,
                        attributes: dict[str, str] | None = None) -> str:
        ref: pb.SubscriptionRef = await self._unary("Subscribe", pb.SubscribeRequest(
            topic=name, protocol=protocol, endpoint=endpoint, attributes=attributes or {}))
        return ref.arn

    async def unsubscribe(self, subscription_arn: str) -> None:
        await self._unary("Unsubscribe", pb.SubscriptionRef(arn=subscription_arn))

    async def list_subscriptions(self, name: str) -> list[pb.Subscription]:
        response: pb.ListSubscriptionsResponse = await self._unary("ListSubscriptions", pb.TopicRef(topic=name))
        return list(response.subscriptions)
