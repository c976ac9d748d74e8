"""The SNS service (``broker.service.AwsService`` named "sns"): request params -> validated commands -> replies.

Stateless checks run here (``params``); state rules run in ``SnsModel.apply``. Reads follow ``read_barrier``.
Random ids, the envelope Timestamp and the RSA signature are made here, before proposing, so the replicated
command carries them and every node stores the same fan-out.

Decisions: Unsubscribe of an unknown subscription is NotFound; DeleteTopic of an unknown topic succeeds (AWS);
TargetArn must be a topic ARN (mobile endpoints are not supported); the signing key is created on first use by a
replicated command, and the first one committed wins on every node. An SQS envelope's signature (RSA, ~0.8 ms) is
computed only when the topic has an SQS subscriber without raw delivery when the publish is validated; a
subscription that commits between that check and the publish gets that one message with an empty Signature.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

from broker.ids import random_uuid
from broker.model import errors
from broker.model.commands import Command
from broker.model.sns_commands import (
    AddTopicPermission,
    ConfirmSubscription,
    CreateTopic,
    DeleteTopic,
    Publish,
    PublishEntry,
    RemoveTopicPermission,
    SetSubscriptionAttribute,
    SetTopicAttribute,
    Subscribe,
    TagResource,
    Unsubscribe,
    UntagResource,
)
from broker.model.sns_envelope import iso_timestamp, notification_fields, string_to_sign
from broker.model.sns_filter import SCOPE_ATTRIBUTES, parse_policy
from broker.model.sns_model import SnsModel, Subscription, Topic
from broker.model.sns_policy import effective_topic_policy, retry_policy
from broker.model.sqs_validation import attributes_size
from broker.replication import propose
from broker.service import RequestContext
from broker.sns import params as p
from broker.sns.keys import SigningKeys
from broker.sns.signing import Signer
from cluster.api import Replicator

Handler = Callable[[dict[str, Any], RequestContext], Awaitable[dict[str, Any]]]
PAGE = 100
_FIFO_ID = re.compile(r"[\x21-\x7e]{1,128}")


def default_policy(arn: str, account: str) -> str:
    return ('{"Version":"2008-10-17","Id":"__default_policy_ID","Statement":[{"Sid":"__default_statement_ID",'
            '"Effect":"Allow","Principal":{"AWS":"*"},"Action":["SNS:GetTopicAttributes","SNS:SetTopicAttributes",'
            '"SNS:AddPermission","SNS:RemovePermission","SNS:DeleteTopic","SNS:Subscribe",'
            '"SNS:ListSubscriptionsByTopic","SNS:Publish"],"Resource":"' + arn + '","Condition":{"StringEquals":'
            '{"AWS:SourceOwner":"' + account + '"}}}]}')


class SnsService:
    """SNS topics and subscriptions over the replicated model."""

    name = "sns"

    def __init__(self, model: SnsModel, replicator: Replicator, keys: SigningKeys, account_id: str = "000000000000",
                 region: str = "us-east-1", on_delivery: Callable[[], None] = lambda: None) -> None:
        self._model = model
        self._rep = replicator
        self.signer = keys.signer
        self._account_id = account_id
        self._region = region
        self._on_delivery = on_delivery  # wakes the HTTP delivery worker after a command that recorded deliveries
        self._ops: dict[str, Handler] = {
            "CreateTopic": self.create_topic, "DeleteTopic": self.delete_topic, "ListTopics": self.list_topics,
            "GetTopicAttributes": self.get_topic_attributes, "SetTopicAttributes": self.set_topic_attributes,
            "Subscribe": self.subscribe, "ConfirmSubscription": self.confirm_subscription,
            "Unsubscribe": self.unsubscribe, "ListSubscriptions": self.list_subscriptions,
            "ListSubscriptionsByTopic": self.list_subscriptions_by_topic,
            "GetSubscriptionAttributes": self.get_subscription_attributes,
            "SetSubscriptionAttributes": self.set_subscription_attributes, "Publish": self.publish,
            "PublishBatch": self.publish_batch, "TagResource": self.tag_resource,
            "UntagResource": self.untag_resource, "ListTagsForResource": self.list_tags_for_resource,
            "AddPermission": self.add_permission, "RemovePermission": self.remove_permission,
            "GetDataProtectionPolicy": self.get_data_protection_policy,
            "PutDataProtectionPolicy": self.put_data_protection_policy,
        }

    @property
    def operations(self) -> frozenset[str]:
        return frozenset(self._ops)

    async def handle(self, operation: str, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        handler = self._ops.get(operation)
        if handler is None:
            raise errors.InvalidAction(f"The action {operation} is not valid for this endpoint.")
        return await handler(params, ctx)

    # -- helpers ------------------------------------------------------------------------------------------------

    def _account(self, ctx: RequestContext) -> str:
        return ctx.account_id or self._account_id

    async def _propose(self, command: Command) -> Any:
        return await propose(self._rep, command)

    async def _topic(self, arn: object, param: str = "TopicArn") -> Topic:
        checked = p.check_topic_arn(arn, param)
        await self._rep.read_barrier()
        return self._model.topic(checked)

    # -- topics -------------------------------------------------------------------------------------------------

    async def create_topic(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        attributes = p.check_topic_attributes(params.get("Attributes") or {}, creating=True)
        name = p.check_topic_name(params.get("Name"), attributes)
        if name.endswith(".fifo") and "FifoTopic" not in attributes:
            raise p.invalid("Topic Name")
        if params.get("DataProtectionPolicy"):
            attributes["DataProtectionPolicy"] = p.check_topic_attribute(
                "DataProtectionPolicy", params["DataProtectionPolicy"])
        tags = p.check_tags(params.get("Tags") or [])
        arn = p.topic_arn(ctx.region or self._region, self._account(ctx), name)
        await self._propose(CreateTopic(arn, tuple(sorted(attributes.items())), tags))
        return {"TopicArn": arn}

    async def delete_topic(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        await self._propose(DeleteTopic(p.check_topic_arn(params.get("TopicArn"))))
        return {}

    async def list_topics(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        await self._rep.read_barrier()
        arns = sorted(self._model.topics)
        page, token = _page(arns, params.get("NextToken"))
        out: dict[str, Any] = {"Topics": [{"TopicArn": arn} for arn in page]}
        if token:
            out["NextToken"] = token
        return out

    async def get_topic_attributes(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        topic = await self._topic(params.get("TopicArn"))
        account = topic.arn.split(":")[4]
        subs = list(topic.subs.values())
        attrs = {"TopicArn": topic.arn, "Owner": account, "DisplayName": "",
                 "Policy": default_policy(topic.arn, account),
                 "SubscriptionsConfirmed": str(sum(s.confirmed for s in subs)),
                 "SubscriptionsPending": str(sum(not s.confirmed for s in subs)),
                 "SubscriptionsDeleted": str(topic.deleted),
                 "EffectiveDeliveryPolicy": effective_topic_policy(topic.attributes.get("DeliveryPolicy"))}
        if topic.fifo:
            attrs.update({"FifoTopic": "true", "ContentBasedDeduplication": "false"})
        attrs.update({k: v for k, v in topic.attributes.items() if k != "DataProtectionPolicy"})
        return {"Attributes": attrs}

    async def set_topic_attributes(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        arn = p.check_topic_arn(params.get("TopicArn"))
        name = p.required(params, "AttributeName")
        if name not in p.TOPIC_ATTRIBUTES or name == "DataProtectionPolicy":
            raise p.invalid("AttributeName")
        value = p.check_topic_attribute(name, str(params.get("AttributeValue") or ""))
        await self._propose(SetTopicAttribute(arn, name, value))
        return {}

    # -- tags, permissions, data protection ---------------------------------------------------------------------

    async def tag_resource(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        arn = p.check_topic_arn(params.get("ResourceArn"), "ResourceArn")
        await self._propose(TagResource(arn, p.check_tags(params.get("Tags") or [])))
        return {}

    async def untag_resource(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        arn = p.check_topic_arn(params.get("ResourceArn"), "ResourceArn")
        keys = params.get("TagKeys") or []
        await self._propose(UntagResource(arn, tuple(str(k) for k in keys)))
        return {}

    async def list_tags_for_resource(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        arn = p.check_topic_arn(params.get("ResourceArn"), "ResourceArn")
        await self._rep.read_barrier()
        topic = self._model.topics.get(arn)
        if topic is None:
            raise errors.ResourceNotFoundException("Resource does not exist")
        return {"Tags": [{"Key": k, "Value": v} for k, v in sorted(topic.tags.items())]}

    async def add_permission(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        arn = p.check_topic_arn(params.get("TopicArn"))
        label = p.required(params, "Label")
        accounts = params.get("AWSAccountId") or []
        actions = params.get("ActionName") or []
        if not accounts:
            raise p.invalid("AWSAccountId")
        if not actions or any(a not in p.PERMISSION_ACTIONS for a in actions):
            raise p.invalid("Policy statement action out of service scope!")
        await self._propose(AddTopicPermission(arn, label, tuple(accounts), tuple(actions)))
        return {}

    async def remove_permission(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        arn = p.check_topic_arn(params.get("TopicArn"))
        await self._propose(RemoveTopicPermission(arn, p.required(params, "Label")))
        return {}

    async def get_data_protection_policy(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        topic = await self._topic(params.get("ResourceArn"), "ResourceArn")
        policy = topic.attributes.get("DataProtectionPolicy")
        return {"DataProtectionPolicy": policy} if policy else {}

    async def put_data_protection_policy(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        arn = p.check_topic_arn(params.get("ResourceArn"), "ResourceArn")
        policy = p.check_topic_attribute("DataProtectionPolicy", p.required(params, "DataProtectionPolicy"))
        await self._propose(SetTopicAttribute(arn, "DataProtectionPolicy", policy))
        return {}

    # -- subscriptions ------------------------------------------------------------------------------------------

    async def subscribe(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        arn = p.check_topic_arn(params.get("TopicArn"))
        protocol, endpoint = p.check_endpoint(params.get("Protocol"), params.get("Endpoint"))
        attributes = p.check_subscription_attributes(params.get("Attributes") or {}, protocol)
        topic = await self._topic(arn)
        if topic.fifo and protocol != "sqs":
            raise p.invalid(f"Invalid protocol type: {protocol}")
        if not topic.fifo and protocol == "sqs" and endpoint.endswith(".fifo"):
            raise p.invalid("Endpoint Reason: FIFO SQS Queues can not be subscribed to "
                            "standard SNS topics")
        http = protocol in ("http", "https")
        token = hashlib.sha256(random_uuid().encode()).hexdigest() * 2 if http else None
        if http:
            await self.signer()
        sub_arn, confirmed = await self._propose(Subscribe(
            arn, f"{arn}:{random_uuid()}", protocol, endpoint, self._account(ctx), tuple(sorted(attributes.items())),
            token, ctx.endpoint_url))
        if http:
            self._on_delivery()
        if not confirmed and not params.get("ReturnSubscriptionArn"):
            return {"SubscriptionArn": "pending confirmation"}
        return {"SubscriptionArn": sub_arn}

    async def confirm_subscription(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        arn = p.check_topic_arn(params.get("TopicArn"))
        token = p.required(params, "Token")
        return {"SubscriptionArn": await self._propose(ConfirmSubscription(arn, token))}

    async def unsubscribe(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        await self._propose(Unsubscribe(p.check_sub_arn(params.get("SubscriptionArn"))))
        return {}

    async def list_subscriptions(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        await self._rep.read_barrier()
        return _sub_page(sorted(self._model.subs.values(), key=lambda s: s.arn), params.get("NextToken"))

    async def list_subscriptions_by_topic(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        topic = await self._topic(params.get("TopicArn"))
        return _sub_page(sorted(topic.subs.values(), key=lambda s: s.arn), params.get("NextToken"))

    async def get_subscription_attributes(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        arn = p.check_sub_arn(params.get("SubscriptionArn"))
        await self._rep.read_barrier()
        sub = self._model.subscription(arn)
        attrs = {"SubscriptionArn": sub.arn, "TopicArn": sub.topic_arn, "Owner": sub.owner,
                 "Protocol": sub.protocol, "Endpoint": sub.endpoint,
                 "ConfirmationWasAuthenticated": "true" if sub.confirmed else "false",
                 "PendingConfirmation": "false" if sub.confirmed else "true",
                 "RawMessageDelivery": "false", "SubscriptionPrincipal": f"arn:aws:iam::{sub.owner}:user/raftmq"}
        if sub.protocol in ("http", "https"):
            topic = self._model.topics.get(sub.topic_arn)
            retry = retry_policy(sub.attributes.get("DeliveryPolicy"),
                                 topic.attributes.get("DeliveryPolicy") if topic else None)
            attrs["EffectiveDeliveryPolicy"] = _json({"healthyRetryPolicy": retry, "sicklyRetryPolicy": None,
                                                      "throttlePolicy": None, "guaranteed": False})
        attrs.update(sub.attributes)
        if "FilterPolicy" in sub.attributes:
            attrs.setdefault("FilterPolicyScope", SCOPE_ATTRIBUTES)
        return {"Attributes": attrs}

    async def set_subscription_attributes(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        arn = p.check_sub_arn(params.get("SubscriptionArn"))
        name = p.required(params, "AttributeName")
        value = str(params.get("AttributeValue") or "")
        await self._rep.read_barrier()
        sub = self._model.subscription(arn)
        value = p.check_subscription_attribute(name, value, sub.protocol)
        if name == "FilterPolicy" and value:
            parse_policy(value, sub.attributes.get("FilterPolicyScope", SCOPE_ATTRIBUTES))
        if name == "FilterPolicyScope" and sub.attributes.get("FilterPolicy"):
            parse_policy(sub.attributes["FilterPolicy"], value)
        await self._propose(SetSubscriptionAttribute(arn, name, value))
        return {}

    # -- publish ------------------------------------------------------------------------------------------------

    async def _publish_target(self, params: dict[str, Any]) -> Topic:
        target = params.get("TopicArn") or params.get("TargetArn")
        if params.get("PhoneNumber") is not None:
            raise p.invalid("PhoneNumber Reason: RaftMQ does not send SMS")
        if target is None:
            raise p.invalid("TopicArn or TargetArn Reason: no value for required parameter")
        return await self._topic(target, "TopicArn" if params.get("TopicArn") else "TargetArn")

    def _entry(self, topic: Topic, params: dict[str, Any], signer: Signer, entry_id: str = "") -> PublishEntry:
        message, bodies = p.check_message(params)
        subject = p.check_subject(params.get("Subject"))
        attributes = p.check_message_attributes(params.get("MessageAttributes"))
        if len(message.encode()) + attributes_size(attributes) > p.MAX_MESSAGE_BYTES:
            raise p.invalid("Message too long")  # AWS counts the attributes in the 256 KiB
        group_id = params.get("MessageGroupId")
        dedup_id = params.get("MessageDeduplicationId")
        if topic.fifo:
            if not isinstance(group_id, str) or not group_id:
                raise p.invalid("The MessageGroupId parameter is required for FIFO topics")
            if not _FIFO_ID.fullmatch(group_id):
                raise p.invalid("MessageGroupId Reason: MessageGroupId can only include alphanumeric and "
                                "punctuation characters. 1 to 128 in length.")
            if dedup_id is None:
                if topic.attributes.get("ContentBasedDeduplication") != "true":
                    raise p.invalid("The topic should either have ContentBasedDeduplication enabled or "
                                    "MessageDeduplicationId provided explicitly")
                dedup_id = hashlib.sha256(message.encode()).hexdigest()
            elif not isinstance(dedup_id, str) or not _FIFO_ID.fullmatch(dedup_id):
                raise p.invalid("MessageDeduplicationId Reason: MessageDeduplicationId can only include alphanumeric "
                                "and punctuation characters. 1 to 128 in length.")
        else:
            if group_id is not None:
                raise p.invalid("MessageGroupId Reason: The request includes MessageGroupId parameter that is not "
                                "valid for this topic type")
            if dedup_id is not None:
                raise p.invalid("MessageDeduplicationId Reason: The request includes MessageDeduplicationId "
                                "parameter that is not valid for this topic type")
        message_id = random_uuid()
        timestamp = iso_timestamp(self._rep.now_ms())
        version = topic.attributes.get("SignatureVersion", "1")
        sqs_text = next((t for n, t in bodies if n == "sqs"), message)
        signature = ""
        if any(s.protocol == "sqs" and not s.raw for s in topic.subs.values()):
            fields = notification_fields(message_id, topic.arn, subject, sqs_text, timestamp)
            signature = signer.sign(string_to_sign(fields), version)
        return PublishEntry(entry_id, message_id, message, subject, attributes, timestamp, signature, version,
                            bodies, group_id, dedup_id)

    def _has_http(self, topic: Topic) -> bool:
        return any(s.protocol != "sqs" for s in topic.subs.values())

    async def publish(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        topic = await self._publish_target(params)
        entry = self._entry(topic, params, await self.signer())
        results = await self._propose(Publish(topic.arn, ctx.endpoint_url, (entry,)))
        if self._has_http(topic):
            self._on_delivery()
        message_id, sequence_number = results[0]
        out = {"MessageId": message_id}
        if sequence_number is not None:
            out["SequenceNumber"] = sequence_number
        return out

    async def publish_batch(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        topic = await self._topic(params.get("TopicArn"))
        raw_entries = p.check_batch_ids(params.get("PublishBatchRequestEntries"))
        signer = await self.signer()
        entries: list[PublishEntry] = []
        failed: list[dict[str, Any]] = []
        total = 0
        for raw in raw_entries:
            try:
                entry = self._entry(topic, raw, signer, raw["Id"])
            except errors.BrokerError as exc:
                failed.append({"Id": raw["Id"], "Code": exc.legacy_code, "Message": exc.message,
                               "SenderFault": exc.sender_fault})
                continue
            total += len(entry.message.encode()) + attributes_size(entry.attributes)
            entries.append(entry)
        if total > p.MAX_MESSAGE_BYTES:
            raise errors.SnsBatchRequestTooLong("The length of all the messages put together is more than the limit.")
        successful: list[dict[str, Any]] = []
        if entries:
            results = await self._propose(Publish(topic.arn, ctx.endpoint_url, tuple(entries)))
            for entry, (message_id, sequence_number) in zip(entries, results, strict=True):
                item = {"Id": entry.entry_id, "MessageId": message_id}
                if sequence_number is not None:
                    item["SequenceNumber"] = sequence_number
                successful.append(item)
            if self._has_http(topic):
                self._on_delivery()
        return {"Successful": successful, "Failed": failed}


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _page(items: list[str], token: object) -> tuple[list[str], str | None]:
    """One page after ``token`` (the last key of the previous page)."""
    start = 0
    if token:
        if not isinstance(token, str):
            raise p.invalid("NextToken")
        start = next((i for i, item in enumerate(items) if item > token), len(items))
    page = items[start:start + PAGE]
    more = start + PAGE < len(items)
    return page, (page[-1] if more else None)


def _sub_page(subs: list[Subscription], token: object) -> dict[str, Any]:
    by_arn = {s.arn: s for s in subs}
    page, next_token = _page(list(by_arn), token)
    out: dict[str, Any] = {"Subscriptions": [
        {"SubscriptionArn": s.arn if s.confirmed else "PendingConfirmation", "Owner": s.owner,
         "Protocol": s.protocol, "Endpoint": s.endpoint, "TopicArn": s.topic_arn}
        for s in (by_arn[a] for a in page)]}
    if next_token:
        out["NextToken"] = next_token
    return out
