"""Which IAM action and which resource ARN an AWS operation is, from its service, name and parsed input.

Pure: the gateway hands in the decoded parameters; queue URLs, topic/stream names and ARNs become the ARN a policy
names. Operations on no single resource (ListQueues, ListTopics, ...) are ``arn:aws:<svc>:<region>:<account>:*``
as IAM documents them for SQS, else ``*``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from broker.model.errors import BrokerError
from broker.sqs.urls import parse_queue_url

# Actions that need no permission (AWS: GetCallerIdentity works even under an explicit deny).
UNAUTHORIZED_ACTIONS = frozenset({"sts:GetCallerIdentity"})


@dataclass(frozen=True, slots=True)
class Target:
    action: str  # "sqs:SendMessage"
    resource: str  # an ARN or "*"
    account: str | None  # the account owning the resource (None: no single resource)


def arn_account(arn: str) -> str | None:
    parts = arn.split(":", 5)
    return parts[4] if len(parts) == 6 and parts[0] == "arn" and parts[4] else None


def target(service: str, operation: str, params: Mapping[str, Any], account: str, region: str) -> Target:
    """The action and resource of one request by a caller of ``account`` in ``region``."""
    action = f"{service}:{operation}"
    arn = _resource(service, operation, params, account, region)
    if arn is None:
        return Target(action, "*", None)
    return Target(action, arn, arn_account(arn) or account)


def _resource(service: str, operation: str, params: Mapping[str, Any], account: str, region: str) -> str | None:
    if service == "sqs":
        return _sqs(operation, params, account, region)
    if service == "sns":
        return _sns(operation, params, account, region)
    if service == "kinesis":
        return _kinesis(params, account, region)
    return None


def _sqs(operation: str, params: Mapping[str, Any], account: str, region: str) -> str | None:
    url = params.get("QueueUrl")
    if isinstance(url, str) and url:
        try:
            owner, name = parse_queue_url(url, account)
        except BrokerError:  # a malformed URL: the service words that error; authorize against the account
            return f"arn:aws:sqs:{region}:{account}:*"
        return f"arn:aws:sqs:{region}:{owner}:{name}"
    queue_name = params.get("QueueName")
    if isinstance(queue_name, str) and queue_name:
        owner_id = params.get("QueueOwnerAWSAccountId")
        return f"arn:aws:sqs:{region}:{owner_id if isinstance(owner_id, str) and owner_id else account}:{queue_name}"
    source = params.get("SourceArn")
    if isinstance(source, str) and source.startswith("arn:"):
        return source
    return f"arn:aws:sqs:{region}:{account}:*" if operation.startswith("List") or operation.endswith("Task") else None


def _sns(operation: str, params: Mapping[str, Any], account: str, region: str) -> str | None:
    for key in ("TopicArn", "TargetArn", "ResourceArn"):
        value = params.get(key)
        if isinstance(value, str) and value.startswith("arn:"):
            return value
    sub = params.get("SubscriptionArn")
    if isinstance(sub, str) and sub.count(":") >= 6:
        return sub.rsplit(":", 1)[0]  # a subscription is governed by its topic
    name = params.get("Name")
    if operation == "CreateTopic" and isinstance(name, str) and name:
        return f"arn:aws:sns:{region}:{account}:{name}"
    return None


def _kinesis(params: Mapping[str, Any], account: str, region: str) -> str | None:
    for key in ("ConsumerARN", "StreamARN", "ResourceARN"):
        value = params.get(key)
        if isinstance(value, str) and value.startswith("arn:"):
            return value
    name = params.get("StreamName")
    if isinstance(name, str) and name:
        return f"arn:aws:kinesis:{region}:{account}:stream/{name}"
    return None


def extra_targets(service: str, operation: str, params: Mapping[str, Any], account: str) -> list[Target]:
    """Further permissions an operation needs on resources other than its own (AWS documents these per action)."""
    if service == "sqs" and operation == "StartMessageMoveTask":
        dest = params.get("DestinationArn")
        if isinstance(dest, str) and dest.startswith("arn:"):
            return [Target("sqs:SendMessage", dest, arn_account(dest) or account)]
    return []
