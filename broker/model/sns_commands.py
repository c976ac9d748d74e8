"""SNS replicated commands (TYPE_IDs 100-199, append-only), registered with ``broker.model.commands``.

    100 CreateTopic  101 DeleteTopic  102 SetTopicAttribute  103 Subscribe  104 ConfirmSubscription
    105 Unsubscribe  106 SetSubscriptionAttribute  107 Publish  108 TagResource  109 UntagResource
    110 AddTopicPermission  111 RemoveTopicPermission  112 SetSigningKey  113 DeliveryOutcome

Everything random (subscription ids, tokens, message ids) or clock-derived (the envelope's Timestamp) and the
signature are decided by the service before proposing, so every node applies the same values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

from broker.model.commands import PlainFields, register
from broker.model.sqs_types import MessageAttribute

Pairs = tuple[tuple[str, str], ...]


def _pairs(items: list[Any]) -> Pairs:
    return tuple((k, v) for k, v in items)


def _attrs(items: list[Any]) -> tuple[MessageAttribute, ...]:
    return tuple((n, t, s, b) for n, t, s, b in items) if items else ()


@dataclass(frozen=True, slots=True)
class CreateTopic:
    """Create a topic, or succeed when it exists with the same attributes (already validated)."""

    TYPE_ID: ClassVar[int] = 100
    arn: str
    attributes: Pairs = ()
    tags: Pairs = ()

    def wire(self) -> list[Any]:
        return [self.arn, self.attributes, self.tags]

    @classmethod
    def from_wire(cls, f: list[Any]) -> CreateTopic:
        return cls(f[0], _pairs(f[1]), _pairs(f[2]))


@dataclass(frozen=True, slots=True)
class DeleteTopic(PlainFields):
    TYPE_ID: ClassVar[int] = 101
    arn: str


@dataclass(frozen=True, slots=True)
class SetTopicAttribute(PlainFields):
    TYPE_ID: ClassVar[int] = 102
    arn: str
    name: str
    value: str


@dataclass(frozen=True, slots=True)
class Subscribe:
    """Subscribe ``endpoint``; ``sub_arn`` is the new subscription's ARN (used unless one already exists).

    ``token`` is the confirmation token HTTP(S) endpoints must return (None: confirmed at once, as for SQS).
    """

    TYPE_ID: ClassVar[int] = 103
    topic_arn: str
    sub_arn: str
    protocol: str
    endpoint: str
    owner: str
    attributes: Pairs = ()
    token: str | None = None
    endpoint_url: str = ""  # for the SubscribeURL of the confirmation message

    def wire(self) -> list[Any]:
        return [self.topic_arn, self.sub_arn, self.protocol, self.endpoint, self.owner, self.attributes, self.token,
                self.endpoint_url]

    @classmethod
    def from_wire(cls, f: list[Any]) -> Subscribe:
        return cls(f[0], f[1], f[2], f[3], f[4], _pairs(f[5]), f[6], f[7])


@dataclass(frozen=True, slots=True)
class ConfirmSubscription(PlainFields):
    TYPE_ID: ClassVar[int] = 104
    topic_arn: str
    token: str


@dataclass(frozen=True, slots=True)
class Unsubscribe(PlainFields):
    TYPE_ID: ClassVar[int] = 105
    sub_arn: str


@dataclass(frozen=True, slots=True)
class SetSubscriptionAttribute(PlainFields):
    TYPE_ID: ClassVar[int] = 106
    sub_arn: str
    name: str
    value: str


class PublishEntry(NamedTuple):
    """One message of Publish/PublishBatch, validated by the service.

    ``bodies`` are the per-protocol texts of MessageStructure=json ((protocol, text), "default" first); empty for
    a plain message. ``signature`` signs the SQS notification text (SignatureVersion ``signature_version``).
    """

    entry_id: str
    message_id: str
    message: str
    subject: str | None
    attributes: tuple[MessageAttribute, ...]
    timestamp: str  # ISO-8601 with milliseconds, as in the envelope
    signature: str
    signature_version: str = "1"
    bodies: Pairs = ()
    group_id: str | None = None
    dedup_id: str | None = None

    def body_for(self, protocol: str) -> str:
        for name, text in self.bodies:
            if name == protocol:
                return text
        return self.bodies[0][1] if self.bodies else self.message


@dataclass(frozen=True, slots=True)
class Publish:
    """Publish and PublishBatch: every entry fans out to the topic's matching subscriptions in this command."""

    TYPE_ID: ClassVar[int] = 107
    topic_arn: str
    endpoint_url: str  # for UnsubscribeURL and SigningCertURL in envelopes
    entries: tuple[PublishEntry, ...]

    def wire(self) -> list[Any]:
        return [self.topic_arn, self.endpoint_url, self.entries]

    @classmethod
    def from_wire(cls, f: list[Any]) -> Publish:
        return cls(f[0], f[1], tuple(
            PublishEntry(e[0], e[1], e[2], e[3], _attrs(e[4]), e[5], e[6], e[7], _pairs(e[8]), e[9], e[10])
            for e in f[2]))


@dataclass(frozen=True, slots=True)
class TagResource:
    TYPE_ID: ClassVar[int] = 108
    arn: str
    tags: Pairs

    def wire(self) -> list[Any]:
        return [self.arn, self.tags]

    @classmethod
    def from_wire(cls, f: list[Any]) -> TagResource:
        return cls(f[0], _pairs(f[1]))


@dataclass(frozen=True, slots=True)
class UntagResource:
    TYPE_ID: ClassVar[int] = 109
    arn: str
    keys: tuple[str, ...]

    def wire(self) -> list[Any]:
        return [self.arn, self.keys]

    @classmethod
    def from_wire(cls, f: list[Any]) -> UntagResource:
        return cls(f[0], tuple(f[1]))


@dataclass(frozen=True, slots=True)
class AddTopicPermission:
    TYPE_ID: ClassVar[int] = 110
    arn: str
    label: str
    account_ids: tuple[str, ...]
    actions: tuple[str, ...]

    def wire(self) -> list[Any]:
        return [self.arn, self.label, self.account_ids, self.actions]

    @classmethod
    def from_wire(cls, f: list[Any]) -> AddTopicPermission:
        return cls(f[0], f[1], tuple(f[2]), tuple(f[3]))


@dataclass(frozen=True, slots=True)
class RemoveTopicPermission(PlainFields):
    TYPE_ID: ClassVar[int] = 111
    arn: str
    label: str


@dataclass(frozen=True, slots=True)
class SetSigningKey(PlainFields):
    """The cluster's message-signing key and certificate (PEM); the first one proposed wins."""

    TYPE_ID: ClassVar[int] = 112
    key_pem: str
    cert_pem: str


@dataclass(frozen=True, slots=True)
class DeliveryOutcome(PlainFields):
    """The leader's delivery worker reports one HTTP(S) attempt (``attempt`` numbers it, so a report that a new
    leader repeats is ignored). A failure schedules the next retry by the subscription's delivery policy, or after
    the last one moves the message to the subscription's dead-letter queue (dropped without one)."""

    TYPE_ID: ClassVar[int] = 113
    delivery_id: int
    attempt: int
    delivered: bool


register(CreateTopic, DeleteTopic, SetTopicAttribute, Subscribe, ConfirmSubscription, Unsubscribe,
         SetSubscriptionAttribute, Publish, TagResource, UntagResource, AddTopicPermission, RemoveTopicPermission,
         SetSigningKey, DeliveryOutcome)
