"""The ``raftmq.broker.v1.Topics`` servicer: protobuf in, SNS service calls out (``SnsService.handle``).

Semantics, validation and errors are the SNS API's by construction. Publish splits a batch into PublishBatch calls
of 10 (SNS's unit): concurrently on standard topics (the replicator coalesces them into one log append), one after
another on FIFO topics so the log keeps the client's order.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeAlias

import grpc

from broker.auth.grpc_auth import caller_account
from broker.grpc_api.convert import attribute_params
from broker.grpc_api.errors import abort, detail_of
from broker.ids import random_uuid
from broker.model import errors
from broker.service import RequestContext
from broker.sns.service import SnsService
from proto.broker.v1 import topics_pb2 as pb

Context: TypeAlias = grpc.aio.ServicerContext[Any, Any]
PUBLISH_CHUNK = 10


class TopicsServicer:
    """Serves topics once ``sns`` yields a service; UNAVAILABLE before (node starting)."""

    def __init__(self, sns: Callable[[], SnsService | None], account_id: str, region: str) -> None:
        self._sns = sns
        self._node_account = account_id
        self._region = region

    @property
    def _account(self) -> str:
        """The caller's account (set by gRPC authentication), else the node's: resources are per account."""
        return caller_account(self._node_account)

    def _arn(self, topic: str) -> str:
        if not topic:
            raise errors.MissingParameter("The request must contain the parameter topic.")
        return f"arn:aws:sns:{self._region}:{self._account}:{topic}"

    async def _call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        service = self._sns()
        if service is None:
            raise errors.ServiceUnavailable("Service is unable to handle request: the node is starting.")
        ctx = RequestContext(request_id=random_uuid(), account_id=self._account, region=self._region,
                             endpoint_url="", protocol="grpc")
        return await service.handle(operation, params, ctx)

    async def CreateTopic(self, request: pb.CreateTopicRequest, context: Context) -> pb.TopicRef:
        try:
            out = await self._call("CreateTopic", {"Name": request.topic, "Attributes": dict(request.attributes)})
        except Exception as exc:
            await abort(context, exc)
        return pb.TopicRef(topic=request.topic, arn=out["TopicArn"])

    async def DeleteTopic(self, request: pb.TopicRef, context: Context) -> pb.TopicEmpty:
        try:
            await self._call("DeleteTopic", {"TopicArn": request.arn or self._arn(request.topic)})
        except Exception as exc:
            await abort(context, exc)
        return pb.TopicEmpty()

    async def ListTopics(self, request: pb.ListTopicsRequest, context: Context) -> pb.ListTopicsResponse:
        arns: list[str] = []
        try:
            token: str | None = None
            while True:
                out = await self._call("ListTopics", {"NextToken": token} if token else {})
                arns += [t["TopicArn"] for t in out.get("Topics", [])]
                token = out.get("NextToken")
                if not token:
                    break
        except Exception as exc:
            await abort(context, exc)
        return pb.ListTopicsResponse(topics=[pb.TopicRef(topic=a.rpartition(":")[2], arn=a) for a in arns])

    async def Publish(self, request: pb.PublishRequest, context: Context) -> pb.PublishResponse:
        try:
            arn = self._arn(request.topic)
            if not request.entries:
                raise errors.BrokerError("The batch request doesn't contain any entries.", code="EmptyBatchRequest")
            entries = [_entry(str(i), e) for i, e in enumerate(request.entries)]
            chunks = [entries[i:i + PUBLISH_CHUNK] for i in range(0, len(entries), PUBLISH_CHUNK)]
            calls = [{"TopicArn": arn, "PublishBatchRequestEntries": chunk} for chunk in chunks]
            if request.topic.endswith(".fifo"):
                outs = [await self._call("PublishBatch", c) for c in calls]
            else:
                outs = await asyncio.gather(*(self._call("PublishBatch", c) for c in calls))
        except Exception as exc:
            await abort(context, exc)
        results = [pb.PublishResult() for _ in entries]
        for out in outs:
            for ok in out.get("Successful", []):
                result = results[int(ok["Id"])]
                result.message_id = ok["MessageId"]
                result.sequence_number = ok.get("SequenceNumber", "")
            for failed in out.get("Failed", []):
                error = errors.BrokerError(failed.get("Message", ""), code=failed["Code"],
                                           sender_fault=failed.get("SenderFault", True))
                results[int(failed["Id"])].error.CopyFrom(detail_of(error))
        return pb.PublishResponse(results=results)

    async def Subscribe(self, request: pb.SubscribeRequest, context: Context) -> pb.SubscriptionRef:
        try:
            out = await self._call("Subscribe", {
                "TopicArn": self._arn(request.topic), "Protocol": request.protocol, "Endpoint": request.endpoint,
                "Attributes": dict(request.attributes), "ReturnSubscriptionArn": True})
        except Exception as exc:
            await abort(context, exc)
        return pb.SubscriptionRef(arn=out["SubscriptionArn"])

    async def Unsubscribe(self, request: pb.SubscriptionRef, context: Context) -> pb.TopicEmpty:
        try:
            await self._call("Unsubscribe", {"SubscriptionArn": request.arn})
        except Exception as exc:
            await abort(context, exc)
        return pb.TopicEmpty()

    async def ListSubscriptions(self, request: pb.TopicRef, context: Context) -> pb.ListSubscriptionsResponse:
        found: list[pb.Subscription] = []
        try:
            arn = request.arn or self._arn(request.topic)
            token: str | None = None
            while True:
                params: dict[str, Any] = {"TopicArn": arn}
                if token:
                    params["NextToken"] = token
                out = await self._call("ListSubscriptionsByTopic", params)
                found += [pb.Subscription(arn=s["SubscriptionArn"], protocol=s["Protocol"], endpoint=s["Endpoint"])
                          for s in out.get("Subscriptions", [])]
                token = out.get("NextToken")
                if not token:
                    break
        except Exception as exc:
            await abort(context, exc)
        return pb.ListSubscriptionsResponse(subscriptions=found)


def _entry(entry_id: str, entry: pb.PublishEntry) -> dict[str, Any]:
    """One PublishEntry as an SNS PublishBatchRequestEntry (validated by the SNS service)."""
    out: dict[str, Any] = {"Id": entry_id, "Message": entry.message}
    if entry.subject:
        out["Subject"] = entry.subject
    if entry.group_id:
        out["MessageGroupId"] = entry.group_id
    if entry.deduplication_id:
        out["MessageDeduplicationId"] = entry.deduplication_id
    if entry.attributes:
        out["MessageAttributes"] = attribute_params(entry.attributes)
    return out
