"""The SNS state machine: topics, subscriptions, and the fan-out of each publish, applied from log entries.

Publishing to SQS subscribers happens inside the Publish command's ``apply``: the messages are enqueued into the
SQS model in the same entry, so they are exactly as durable as the publish the client was told succeeded. HTTP(S)
deliveries are recorded as rows of ``sns_deliveries`` by the same entry; the leader's delivery worker sends them
and reports each attempt with ``DeliveryOutcome``; a new leader resumes whatever is left (at-least-once).

Decisions:
- Fan-out ids are derived, not random: the SQS MessageId of a delivered copy is a UUID built from the MD5 of the SNS
  MessageId and the subscription ARN, and queue sequence slots come from the entry's log index (the SQS model's
  ``index * SEQ_SLOTS + position``), so every node stores identical messages. A PublishBatch sends all its entries that
  reach one queue in one SQS send (at most 10 <= SEQ_SLOTS).
- The signature is computed by the service before proposing (RSA PKCS#1 v1.5 with the replicated key) and carried
  in the entry; the envelope's Timestamp likewise. The model never signs.
- A message too large for a queue, or a queue that no longer exists, is not delivered (AWS would retry and then
  drop it); ``undeliverable`` counts such copies.
- Fan-out wakes SQS long pollers through the SQS part's own wake-ups (the state machine collects every part's).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from broker.model import errors
from broker.model.commands import SendEntry, SendMessages
from broker.model.part import DispatchingPart, Meta
from broker.model.sns_commands import (
    AddTopicPermission,
    ConfirmSubscription,
    CreateTopic,
    DeleteTopic,
    DeliveryOutcome,
    Publish,
    PublishEntry,
    RemoveTopicPermission,
    SetSigningKey,
    SetSubscriptionAttribute,
    SetTopicAttribute,
    Subscribe,
    TagResource,
    Unsubscribe,
    UntagResource,
)
from broker.model.sns_envelope import (
    attributes_json,
    cert_url,
    confirmation_fields,
    iso_timestamp,
    notification,
    notification_fields,
)
from broker.model.sns_filter import (
    SCOPE_BODY,
    AttributeValues,
    attribute_values,
    matches_attributes,
    matches_body,
)
from broker.model.sns_policy import retry_delay_ms, retry_policy
from broker.model.sqs_md5 import md5_of_attributes, md5_of_body
from broker.model.sqs_model import SqsModel
from broker.model.sqs_types import DEDUP_WINDOW_MS, SEQUENCE_BASE, MessageAttribute
from broker.model.sqs_validation import arn_queue, attributes_size
from storage import codec
from storage.changes import ChangeSink, TableReader

TOPICS = "sns_topics"  # topic arn -> [attributes, tags, seq, deleted subscriptions]
SUBSCRIPTIONS = "sns_subs"  # subscription arn -> [topic, protocol, endpoint, owner, attributes, confirmed, token, n]
DEDUP = "sns_dedup"  # topic arn \n dedup id -> [message id, sequence number, ts]
DELIVERIES = "sns_deliveries"  # u64 id -> [subscription arn, kind, document fields, attributes, attempt, due, ...]
META = "sns_meta"  # b"signing" -> [key pem, cert pem]
SNS_SENDER_ID = "AIDAIT2UOQQY3AUEKVGXU"  # the SenderId AWS puts on messages SNS delivers to SQS
MAX_TAGS = 50
PER_COMMAND = 1 << 20  # delivery ids of one entry: index * PER_COMMAND + n


@dataclass(slots=True)
class Subscription:
    arn: str
    topic_arn: str
    protocol: str
    endpoint: str
    owner: str
    attributes: dict[str, str]
    confirmed: bool
    token: str | None
    order: int  # log index of its Subscribe: listing order
    filter: dict[str, Any] | None = None  # parsed FilterPolicy

    def set_filter(self) -> None:
        raw = self.attributes.get("FilterPolicy")
        self.filter = json.loads(raw) if raw else None

    @property
    def raw(self) -> bool:
        return self.attributes.get("RawMessageDelivery", "false").lower() == "true"


@dataclass(slots=True)
class Topic:
    arn: str
    attributes: dict[str, str]
    tags: dict[str, str]
    seq: int = 0  # FIFO: the last sequence number given
    deleted: int = 0  # SubscriptionsDeleted
    subs: dict[str, Subscription] = field(default_factory=dict)  # in subscription order
    dedup: dict[str, tuple[str, str, int]] = field(default_factory=dict)  # FIFO window, oldest first

    @property
    def fifo(self) -> bool:
        return self.attributes.get("FifoTopic") == "true"

    @property
    def name(self) -> str:
        return self.arn.rsplit(":", 1)[1]


@dataclass(frozen=True, slots=True)
class Delivery:
    """A pending HTTP(S) delivery: what the worker sends and when."""

    delivery_id: int
    sub_arn: str
    kind: str  # "Notification" | "SubscriptionConfirmation"
    fields: dict[str, Any]  # the signed part of the document
    attributes: tuple[MessageAttribute, ...]
    attempt: int  # attempts made so far
    due: int  # ms
    endpoint_url: str
    sequence_number: str | None = None


def fanout_message_id(sns_message_id: str, sub_arn: str) -> str:
    """The SQS MessageId of one delivered copy: derived, so every node stores the same (UUID v4 layout)."""
    h = hashlib.md5(f"{sns_message_id}\n{sub_arn}".encode(), usedforsecurity=False).hexdigest()
    variant = "89ab"[int(h[16], 16) & 3]
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{variant}{h[17:20]}-{h[20:32]}"


class SnsModel(DispatchingPart[tuple[str, str]]):
    """All SNS topics and subscriptions of this node."""

    wake_prefix = "sns"

    def __init__(self, sqs: SqsModel) -> None:
        self.sqs = sqs
        self.topics: dict[str, Topic] = {}
        self.subs: dict[str, Subscription] = {}
        self.deliveries: dict[int, Delivery] = {}
        self.signing: tuple[str, str] | None = None
        self.undeliverable = 0
        self.wakeups: set[tuple[str, str]] = set()  # nothing waits on SNS itself; the SQS part wakes its queues
        self._handlers: dict[type[Any], Callable[[Any, Meta, ChangeSink], object]] = {
            CreateTopic: self._create_topic, DeleteTopic: self._delete_topic,
            SetTopicAttribute: self._set_topic_attribute, Subscribe: self._subscribe,
            ConfirmSubscription: self._confirm, Unsubscribe: self._unsubscribe,
            SetSubscriptionAttribute: self._set_sub_attribute, Publish: self._publish,
            TagResource: self._tag, UntagResource: self._untag, AddTopicPermission: self._add_permission,
            RemoveTopicPermission: self._remove_permission, SetSigningKey: self._set_signing_key,
            DeliveryOutcome: self._delivery_outcome,
        }

    # -- ModelPart ----------------------------------------------------------------------------------------------


    def restore(self, reader: TableReader) -> None:
        self.topics.clear()
        self.subs.clear()
        self.deliveries.clear()
        for key, value in reader.scan(TOPICS):
            attributes, tags, seq, deleted = codec.unpack(value)
            arn = key.decode()
            self.topics[arn] = Topic(arn, dict(attributes), dict(tags), seq, deleted)
        rows = []
        for key, value in reader.scan(SUBSCRIPTIONS):
            topic_arn, protocol, endpoint, owner, attributes, confirmed, token, order = codec.unpack(value)
            rows.append(Subscription(key.decode(), topic_arn, protocol, endpoint, owner, dict(attributes),
                                     confirmed, token, order))
        for sub in sorted(rows, key=lambda s: s.order):
            sub.set_filter()
            self.subs[sub.arn] = sub
            self.topics[sub.topic_arn].subs[sub.arn] = sub
        dedup_rows = []
        for key, value in reader.scan(DEDUP):
            topic_arn, _, dedup_id = key.decode().partition("\n")
            message_id, seq_no, ts = codec.unpack(value)
            dedup_rows.append((ts, topic_arn, dedup_id, message_id, seq_no))
        for ts, topic_arn, dedup_id, message_id, seq_no in sorted(dedup_rows):
            self.topics[topic_arn].dedup[dedup_id] = (message_id, seq_no, ts)
        for key, value in reader.scan(DELIVERIES):
            f = codec.unpack(value)
            self.deliveries[int.from_bytes(key, "big")] = Delivery(
                int.from_bytes(key, "big"), f[0], f[1], f[2], tuple((n, t, s, b) for n, t, s, b in f[3]), f[4],
                f[5], f[6], f[7])
        signing = reader.get(META, b"signing")
        if signing:
            key_pem, cert_pem = codec.unpack(signing)
            self.signing = (key_pem, cert_pem)
        else:
            self.signing = None

    # -- reads --------------------------------------------------------------------------------------------------

    def topic(self, arn: str) -> Topic:
        topic = self.topics.get(arn)
        if topic is None:
            raise errors.NotFoundException("Topic does not exist")
        return topic

    def subscription(self, arn: str) -> Subscription:
        sub = self.subs.get(arn)
        if sub is None:
            raise errors.NotFoundException("Subscription does not exist")
        return sub

    def due_deliveries(self, now_ms: int, limit: int = 64) -> tuple[list[Delivery], int | None]:
        """Deliveries due at ``now_ms`` (oldest first) and the due time of the next one not yet due.

        A scan of every pending delivery: fine for thousands; an index by due time is the next step if an endpoint
        that is down for long accumulates far more."""
        due = sorted((d for d in self.deliveries.values() if d.due <= now_ms), key=lambda d: (d.due, d.delivery_id))
        later = [d.due for d in self.deliveries.values() if d.due > now_ms]
        return due[:limit], (min(later) if later else None)

    # -- persistence --------------------------------------------------------------------------------------------

    @staticmethod
    def _save_topic(t: Topic, changes: ChangeSink) -> None:
        changes.put(TOPICS, t.arn.encode(), codec.pack([t.attributes, t.tags, t.seq, t.deleted]))

    @staticmethod
    def _save_sub(s: Subscription, changes: ChangeSink) -> None:
        changes.put(SUBSCRIPTIONS, s.arn.encode(), codec.pack(
            [s.topic_arn, s.protocol, s.endpoint, s.owner, s.attributes, s.confirmed, s.token, s.order]))

    def _save_delivery(self, d: Delivery, changes: ChangeSink) -> None:
        self.deliveries[d.delivery_id] = d
        changes.put(DELIVERIES, d.delivery_id.to_bytes(8, "big"), codec.pack(
            [d.sub_arn, d.kind, d.fields, d.attributes, d.attempt, d.due, d.endpoint_url, d.sequence_number]))

    def _drop_delivery(self, delivery_id: int, changes: ChangeSink) -> None:
        if self.deliveries.pop(delivery_id, None) is not None:
            changes.delete(DELIVERIES, delivery_id.to_bytes(8, "big"))

    # -- topics -------------------------------------------------------------------------------------------------

    def _create_topic(self, cmd: CreateTopic, meta: Meta, changes: ChangeSink) -> object:
        existing = self.topics.get(cmd.arn)
        if existing is not None:
            for key, value in cmd.attributes:
                if existing.attributes.get(key, "false" if key == "FifoTopic" else "") != value:
                    raise errors.InvalidParameterException(
                        "Invalid parameter: Attributes Reason: Topic already exists with different attributes")
            for key, value in cmd.tags:
                if existing.tags.get(key) != value:
                    raise errors.InvalidParameterException(
                        "Invalid parameter: Tags Reason: Topic already exists with different tags")
            return cmd.arn
        topic = Topic(cmd.arn, dict(cmd.attributes), dict(cmd.tags))
        self.topics[cmd.arn] = topic
        self._save_topic(topic, changes)
        return cmd.arn

    def _delete_topic(self, cmd: DeleteTopic, meta: Meta, changes: ChangeSink) -> object:
        topic = self.topics.pop(cmd.arn, None)
        if topic is None:
            return None  # AWS: deleting a topic that does not exist succeeds
        for sub in topic.subs.values():
            self.subs.pop(sub.arn, None)
            changes.delete(SUBSCRIPTIONS, sub.arn.encode())
        for dedup_id in topic.dedup:
            changes.delete(DEDUP, f"{topic.arn}\n{dedup_id}".encode())
        for d in [d for d in self.deliveries.values() if d.sub_arn in topic.subs]:
            self._drop_delivery(d.delivery_id, changes)
        changes.delete(TOPICS, cmd.arn.encode())
        return None

    def _set_topic_attribute(self, cmd: SetTopicAttribute, meta: Meta, changes: ChangeSink) -> object:
        topic = self.topic(cmd.arn)
        if cmd.name == "FifoTopic":
            raise errors.InvalidParameterException(
                "Invalid parameter: AttributeName Reason: FifoTopic cannot be modified")
        if cmd.name == "ContentBasedDeduplication" and not topic.fifo:
            raise errors.InvalidParameterException(
                "Invalid parameter: ContentBasedDeduplication Reason: Content based deduplication can only be set "
                "for FIFO topics")
        if cmd.value == "" and cmd.name != "DisplayName":
            topic.attributes.pop(cmd.name, None)
        else:
            topic.attributes[cmd.name] = cmd.value
        self._save_topic(topic, changes)
        return None

    def _tag(self, cmd: TagResource, meta: Meta, changes: ChangeSink) -> object:
        topic = self._tagged(cmd.arn)
        tags = {**topic.tags, **dict(cmd.tags)}
        if len(tags) > MAX_TAGS:
            raise errors.TagLimitExceededException("Could not complete request: tag quota of per resource exceeded")
        topic.tags = tags
        self._save_topic(topic, changes)
        return None

    def _untag(self, cmd: UntagResource, meta: Meta, changes: ChangeSink) -> object:
        topic = self._tagged(cmd.arn)
        for key in cmd.keys:
            topic.tags.pop(key, None)
        self._save_topic(topic, changes)
        return None

    def _tagged(self, arn: str) -> Topic:
        topic = self.topics.get(arn)
        if topic is None:
            raise errors.ResourceNotFoundException("Resource does not exist")
        return topic

    def _add_permission(self, cmd: AddTopicPermission, meta: Meta, changes: ChangeSink) -> object:
        topic = self.topic(cmd.arn)
        policy = json.loads(topic.attributes.get("Policy") or '{"Version":"2008-10-17","Statement":[]}')
        statements = policy.setdefault("Statement", [])
        if any(s.get("Sid") == cmd.label for s in statements):
            raise errors.InvalidParameterException("Invalid parameter: Statement already exists")
        principals = [f"arn:aws:iam::{a}:root" for a in cmd.account_ids]
        statements.append({"Sid": cmd.label, "Effect": "Allow",
                           "Principal": {"AWS": principals[0] if len(principals) == 1 else principals},
                           "Action": [f"SNS:{a}" for a in cmd.actions] if len(cmd.actions) > 1
                           else f"SNS:{cmd.actions[0]}", "Resource": cmd.arn})
        topic.attributes["Policy"] = json.dumps(policy, separators=(",", ":"))
        self._save_topic(topic, changes)
        return None

    def _remove_permission(self, cmd: RemoveTopicPermission, meta: Meta, changes: ChangeSink) -> object:
        topic = self.topic(cmd.arn)
        raw = topic.attributes.get("Policy")
        if raw:
            policy = json.loads(raw)
            policy["Statement"] = [s for s in policy.get("Statement", []) if s.get("Sid") != cmd.label]
            topic.attributes["Policy"] = json.dumps(policy, separators=(",", ":"))
            self._save_topic(topic, changes)
        return None

    def _set_signing_key(self, cmd: SetSigningKey, meta: Meta, changes: ChangeSink) -> object:
        if self.signing is None:
            self.signing = (cmd.key_pem, cmd.cert_pem)
            changes.put(META, b"signing", codec.pack(list(self.signing)))
        return self.signing

    # -- subscriptions ------------------------------------------------------------------------------------------

    def _subscribe(self, cmd: Subscribe, meta: Meta, changes: ChangeSink) -> object:
        """(subscription arn, confirmed)."""
        topic = self.topic(cmd.topic_arn)
        for sub in topic.subs.values():
            if sub.protocol == cmd.protocol and sub.endpoint == cmd.endpoint:
                for key, value in cmd.attributes:
                    if sub.attributes.get(key, "") != value:
                        raise errors.InvalidParameterException(
                            "Invalid parameter: Attributes Reason: Subscription already exists with different "
                            "attributes")
                return sub.arn, sub.confirmed
        sub = Subscription(cmd.sub_arn, cmd.topic_arn, cmd.protocol, cmd.endpoint, cmd.owner, dict(cmd.attributes),
                           cmd.token is None, cmd.token, meta.index)
        sub.set_filter()
        topic.subs[sub.arn] = sub
        self.subs[sub.arn] = sub
        self._save_sub(sub, changes)
        if cmd.token is not None:
            fields = confirmation_fields(fanout_message_id(cmd.token, sub.arn), topic.arn, cmd.token,
                                         cmd.endpoint_url, iso_timestamp(meta.ts))
            self._save_delivery(Delivery(meta.index * PER_COMMAND, sub.arn, "SubscriptionConfirmation", fields,
                                         (), 0, meta.ts, cmd.endpoint_url), changes)
        return sub.arn, sub.confirmed

    def _confirm(self, cmd: ConfirmSubscription, meta: Meta, changes: ChangeSink) -> object:
        topic = self.topic(cmd.topic_arn)
        for sub in topic.subs.values():
            if sub.token == cmd.token:
                if not sub.confirmed:
                    sub.confirmed = True
                    self._save_sub(sub, changes)
                return sub.arn
        raise errors.InvalidParameterException("Invalid token")

    def _unsubscribe(self, cmd: Unsubscribe, meta: Meta, changes: ChangeSink) -> object:
        sub = self.subscription(cmd.sub_arn)
        del self.subs[sub.arn]
        topic = self.topics[sub.topic_arn]
        del topic.subs[sub.arn]
        topic.deleted += 1
        self._save_topic(topic, changes)
        changes.delete(SUBSCRIPTIONS, sub.arn.encode())
        for d in [d for d in self.deliveries.values() if d.sub_arn == sub.arn]:
            self._drop_delivery(d.delivery_id, changes)
        return None

    def _set_sub_attribute(self, cmd: SetSubscriptionAttribute, meta: Meta, changes: ChangeSink) -> object:
        sub = self.subscription(cmd.sub_arn)
        if cmd.value == "":
            sub.attributes.pop(cmd.name, None)
        else:
            sub.attributes[cmd.name] = cmd.value
        sub.set_filter()
        self._save_sub(sub, changes)
        return None

    # -- publish ------------------------------------------------------------------------------------------------

    def _publish(self, cmd: Publish, meta: Meta, changes: ChangeSink) -> list[object]:
        """Per entry: (message id, sequence number or None); a FIFO duplicate returns the original's."""
        topic = self.topic(cmd.topic_arn)
        results: list[object] = []
        to_queues: dict[str, list[SendEntry]] = {}
        deliveries = 0
        if topic.fifo:
            self._expire_dedup(topic, meta.ts, changes)
        for entry in cmd.entries:
            sequence_number: str | None = None
            if topic.fifo:
                dedup_id = entry.dedup_id or ""
                seen = topic.dedup.get(dedup_id)
                if seen is not None:
                    results.append((seen[0], seen[1]))
                    continue
                topic.seq += 1
                sequence_number = str(SEQUENCE_BASE + topic.seq)
                topic.dedup[dedup_id] = (entry.message_id, sequence_number, meta.ts)
                changes.put(DEDUP, f"{topic.arn}\n{dedup_id}".encode(),
                            codec.pack([entry.message_id, sequence_number, meta.ts]))
            results.append((entry.message_id, sequence_number))
            attributes = attribute_values(entry.attributes)
            for sub in topic.subs.values():
                if not sub.confirmed or not self._matches(sub, entry, attributes):
                    continue
                if sub.protocol == "sqs":
                    to_queues.setdefault(sub.arn, []).append(self._sqs_entry(sub, topic, cmd, entry,
                                                                             len(to_queues.get(sub.arn, ())),
                                                                             sequence_number))
                else:
                    fields = notification_fields(entry.message_id, topic.arn, entry.subject,
                                                 entry.body_for(sub.protocol), entry.timestamp)
                    delivery_id = meta.index * PER_COMMAND + 1 + deliveries
                    deliveries += 1
                    self._save_delivery(Delivery(delivery_id, sub.arn, "Notification", fields, entry.attributes,
                                                 0, meta.ts, cmd.endpoint_url, sequence_number), changes)
        if topic.fifo:
            self._save_topic(topic, changes)
        for sub_arn, entries in to_queues.items():
            self._enqueue(self.subs[sub_arn].endpoint, entries, meta, changes)
        return results

    def _matches(self, sub: Subscription, entry: PublishEntry, attributes: AttributeValues) -> bool:
        if sub.filter is None:
            return True
        if sub.attributes.get("FilterPolicyScope") == SCOPE_BODY:
            try:
                body = json.loads(entry.body_for(sub.protocol))
            except ValueError:
                return False
            return matches_body(sub.filter, body)
        return matches_attributes(sub.filter, attributes)

    def _sqs_entry(self, sub: Subscription, topic: Topic, cmd: Publish, entry: PublishEntry, position: int,
                   sequence_number: str | None) -> SendEntry:
        text = entry.body_for("sqs")
        attributes: tuple[MessageAttribute, ...] = ()
        if sub.raw:
            body = text
            attributes = entry.attributes  # raw delivery passes the attributes on as SQS message attributes
        else:
            fields = notification_fields(entry.message_id, topic.arn, entry.subject, text, entry.timestamp)
            body = notification(fields, signature_version=entry.signature_version, signature=entry.signature,
                                endpoint_url=cmd.endpoint_url, sub_arn=sub.arn, attributes=entry.attributes,
                                sequence_number=sequence_number)
        data = body.encode("utf-8")
        return SendEntry(entry_id=str(position), message_id=fanout_message_id(entry.message_id, sub.arn), body=body,
                         md5_body=md5_of_body(data), size=len(data) + attributes_size(attributes),
                         attributes=attributes, md5_attributes=md5_of_attributes(attributes),
                         group_id=entry.group_id, dedup_id=entry.dedup_id if entry.group_id else None)

    def _enqueue(self, queue_arn: str, entries: list[SendEntry], meta: Meta, changes: ChangeSink) -> None:
        target = arn_queue(queue_arn)
        queue = self.sqs.queues.get(target) if target is not None else None
        if target is None or queue is None:
            self.undeliverable += len(entries)
            return
        if not queue.fifo:
            entries = [e._replace(dedup_id=None) for e in entries]
        reply = self.sqs.apply(SendMessages(target[0], target[1], SNS_SENDER_ID, tuple(entries)), meta, changes)
        outcomes = reply if isinstance(reply, list) else [reply] * len(entries)
        self.undeliverable += sum(isinstance(o, errors.BrokerError) for o in outcomes)

    def _expire_dedup(self, topic: Topic, ts: int, changes: ChangeSink) -> None:
        while topic.dedup:
            dedup_id, (_, _, seen_ts) = next(iter(topic.dedup.items()))
            if ts - seen_ts < DEDUP_WINDOW_MS:
                return
            del topic.dedup[dedup_id]
            changes.delete(DEDUP, f"{topic.arn}\n{dedup_id}".encode())

    # -- HTTP(S) delivery outcomes ------------------------------------------------------------------------------

    def _delivery_outcome(self, cmd: DeliveryOutcome, meta: Meta, changes: ChangeSink) -> object:
        d = self.deliveries.get(cmd.delivery_id)
        if d is None or d.attempt != cmd.attempt:
            return None  # already settled (a repeated report after a failover)
        if cmd.delivered:
            self._drop_delivery(d.delivery_id, changes)
            return None
        sub = self.subs.get(d.sub_arn)
        topic = self.topics.get(sub.topic_arn) if sub is not None else None
        if sub is None or topic is None:
            self._drop_delivery(d.delivery_id, changes)
            return None
        policy = retry_policy(sub.attributes.get("DeliveryPolicy"), topic.attributes.get("DeliveryPolicy"))
        delay = retry_delay_ms(policy, d.attempt + 1)
        if delay is not None:
            self._save_delivery(Delivery(d.delivery_id, d.sub_arn, d.kind, d.fields, d.attributes, d.attempt + 1,
                                         meta.ts + delay, d.endpoint_url, d.sequence_number), changes)
            return None
        self._drop_delivery(d.delivery_id, changes)
        dlq = sub.attributes.get("RedrivePolicy")
        if dlq and d.kind == "Notification":
            # The dead letter is the unsigned notification (the DLQ's reader is the topic owner, not the endpoint).
            extra = {"MessageAttributes": attributes_json(d.attributes)} if d.attributes else {}
            body = json.dumps({**d.fields, **extra}, ensure_ascii=False)
            data = body.encode()
            entry = SendEntry("0", fanout_message_id(d.fields["MessageId"], sub.arn + "#dlq"), body,
                              md5_of_body(data), len(data))
            self._enqueue(json.loads(dlq)["deadLetterTargetArn"], [entry], meta, changes)
        return None


def envelope_for(delivery: Delivery, sub_arn: str, signature_version: str, signature: str) -> str:
    """The document the worker POSTs for ``delivery`` (signature computed by the worker)."""
    if delivery.kind == "Notification":
        return notification(delivery.fields, signature_version=signature_version, signature=signature,
                            endpoint_url=delivery.endpoint_url, sub_arn=sub_arn, attributes=delivery.attributes,
                            sequence_number=delivery.sequence_number)
    doc = {**delivery.fields, "SignatureVersion": signature_version, "Signature": signature,
           "SigningCertURL": cert_url(delivery.endpoint_url)}
    return json.dumps(doc, ensure_ascii=False)
