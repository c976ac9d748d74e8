"""Where resource policies live: the ``Policy`` attribute of SQS queues and SNS topics, read from the models.

The gateway's authorizer asks by ARN; a resource that does not exist (or has no policy) has none, and the service
then words its own not-found error for a caller who was allowed to ask.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from broker.auth.authenticator import ResourcePolicies
from broker.model.errors import BrokerError


class _HasAttributes(Protocol):
    @property
    def attributes(self) -> Mapping[str, str]: ...


class QueueSource(Protocol):
    def queue(self, account: str, name: str) -> _HasAttributes: ...


class TopicSource(Protocol):
    def topic(self, arn: str) -> _HasAttributes: ...


def resource_policy_lookup(queues: QueueSource | None, topics: TopicSource | None) -> ResourcePolicies:
    """ARN -> the Policy attribute of that queue or topic (JSON text), or None."""

    def lookup(arn: str) -> str | None:
        parts = arn.split(":", 5)
        if len(parts) != 6:
            return None
        try:
            if parts[2] == "sqs" and queues is not None:
                return queues.queue(parts[4], parts[5]).attributes.get("Policy")
            if parts[2] == "sns" and topics is not None:
                return topics.topic(arn).attributes.get("Policy")
        except BrokerError:
            return None
        return None

    return lookup
