"""Which action and resource an operation is, and the authorizer that puts policies, context and lookups together."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from broker.auth.authenticator import Authenticator, Identity
from broker.auth.credentials import parse_credentials
from broker.auth.policy import parse_policy
from broker.auth.resources import Target, target
from broker.model.errors import BrokerError
from broker.service import RequestContext

A, B = "111111111111", "222222222222"


@pytest.mark.parametrize(("service", "operation", "params", "expected"), [
    ("sqs", "SendMessage", {"QueueUrl": f"http://h:1/{B}/orders"}, Target(
        "sqs:SendMessage", f"arn:aws:sqs:eu-west-1:{B}:orders", B)),
    ("sqs", "SendMessage", {"QueueUrl": "http://h:1/queue/orders"}, Target(
        "sqs:SendMessage", f"arn:aws:sqs:eu-west-1:{A}:orders", A)),
    ("sqs", "CreateQueue", {"QueueName": "new"}, Target("sqs:CreateQueue", f"arn:aws:sqs:eu-west-1:{A}:new", A)),
    ("sqs", "GetQueueUrl", {"QueueName": "q", "QueueOwnerAWSAccountId": B}, Target(
        "sqs:GetQueueUrl", f"arn:aws:sqs:eu-west-1:{B}:q", B)),
    ("sqs", "ListQueues", {}, Target("sqs:ListQueues", f"arn:aws:sqs:eu-west-1:{A}:*", A)),
    ("sns", "Publish", {"TopicArn": f"arn:aws:sns:eu-west-1:{B}:t"}, Target(
        "sns:Publish", f"arn:aws:sns:eu-west-1:{B}:t", B)),
    ("sns", "Unsubscribe", {"SubscriptionArn": f"arn:aws:sns:eu-west-1:{A}:t:0f1e"}, Target(
        "sns:Unsubscribe", f"arn:aws:sns:eu-west-1:{A}:t", A)),
    ("sns", "CreateTopic", {"Name": "t"}, Target("sns:CreateTopic", f"arn:aws:sns:eu-west-1:{A}:t", A)),
    ("sns", "ListTopics", {}, Target("sns:ListTopics", "*", None)),
    ("kinesis", "PutRecord", {"StreamName": "s"}, Target(
        "kinesis:PutRecord", f"arn:aws:kinesis:eu-west-1:{A}:stream/s", A)),
    ("kinesis", "ListStreams", {}, Target("kinesis:ListStreams", "*", None)),
    ("sts", "GetCallerIdentity", {}, Target("sts:GetCallerIdentity", "*", None)),
])
def test_targets(service: str, operation: str, params: dict[str, Any], expected: Target) -> None:
    assert target(service, operation, params, A, "eu-west-1") == expected


NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
STORE = parse_credentials({"accounts": [{"id": A}, {"id": B}]})


def ctx(client_host: str = "10.1.2.3") -> RequestContext:
    return RequestContext("r", A, "us-east-1", "http://h", "json", client_host=client_host)


def user(account: str, *statements: dict[str, Any]) -> Identity:
    policies = (parse_policy({"Statement": list(statements)}),) if statements else ()
    return Identity(account, f"arn:aws:iam::{account}:user/u", "AIDAX", "AKIAX", policies, is_root=False)


ALLOW_SQS = {"Effect": "Allow", "Action": "sqs:*", "Resource": "*"}


def denied(auth: Authenticator, identity: Identity, operation: str, params: dict[str, Any],
           context: RequestContext | None = None) -> str | None:
    try:
        auth.authorize(identity, "sqs", operation, params, context or ctx())
    except BrokerError as exc:
        assert (exc.code, exc.legacy_code, exc.status) == ("AccessDeniedException", "AccessDenied", 403)
        return exc.message
    return None


def test_cross_account_reads_the_queue_policy_through_the_lookup() -> None:
    policies = {f"arn:aws:sqs:us-east-1:{A}:q": json.dumps({"Statement": [
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{B}:user/u"}, "Action": "sqs:Send*",
         "Resource": f"arn:aws:sqs:us-east-1:{A}:q"}]}),
        f"arn:aws:sqs:us-east-1:{A}:broken": "{not json"}
    auth = Authenticator(STORE, clock=lambda: NOW, resource_policies=policies.get)
    bob = user(B, ALLOW_SQS)
    assert denied(auth, bob, "SendMessage", {"QueueUrl": f"http://h/{A}/q"}) is None
    assert "no resource-based policy allows" in (denied(auth, bob, "DeleteMessage", {"QueueUrl": f"http://h/{A}/q"})
                                                 or "")
    assert denied(auth, bob, "SendMessage", {"QueueUrl": f"http://h/{A}/broken"}) is not None
    assert denied(auth, bob, "SendMessage", {"QueueUrl": f"http://h/{B}/own"}) is None


def test_conditions_see_the_client_address_and_the_clock() -> None:
    auth = Authenticator(STORE, clock=lambda: NOW)
    office = user(A, {**ALLOW_SQS, "Condition": {"IpAddress": {"aws:SourceIp": "10.1.0.0/16"},
                                                 "DateLessThan": {"aws:CurrentTime": "2026-12-01T00:00:00Z"}}})
    assert denied(auth, office, "ListQueues", {}) is None
    assert denied(auth, office, "ListQueues", {}, ctx("192.168.1.1")) is not None
    later = Authenticator(STORE, clock=lambda: datetime(2026, 12, 2, tzinfo=UTC))
    assert denied(later, office, "ListQueues", {}) is not None


def test_get_caller_identity_needs_no_permission() -> None:
    auth = Authenticator(STORE, clock=lambda: NOW)
    explicit = user(A, {"Effect": "Deny", "Action": "*", "Resource": "*"})
    auth.authorize(explicit, "sts", "GetCallerIdentity", {}, ctx())
    with pytest.raises(BrokerError) as info:
        auth.authorize(explicit, "sts", "GetAccessKeyInfo", {}, ctx())
    assert (info.value.code, info.value.status) == ("AccessDenied", 403)


def test_root_is_allowed_on_its_own_resources_unless_their_policy_denies() -> None:
    deny_all = json.dumps({"Statement": [{"Effect": "Deny", "Principal": "*", "Action": "sqs:*",
                                          "Resource": f"arn:aws:sqs:us-east-1:{A}:locked"}]})
    auth = Authenticator(STORE, clock=lambda: NOW,
                         resource_policies={f"arn:aws:sqs:us-east-1:{A}:locked": deny_all}.get)
    root_a = Identity(A, f"arn:aws:iam::{A}:root", A, "AKIAROOT", (), is_root=True)
    root_b = Identity(B, f"arn:aws:iam::{B}:root", B, "AKIAROOTB", (), is_root=True)
    assert denied(auth, root_a, "PurgeQueue", {"QueueUrl": f"http://h/{A}/open"}) is None
    assert "explicit deny in a resource-based policy" in (
        denied(auth, root_a, "PurgeQueue", {"QueueUrl": f"http://h/{A}/locked"}) or "")
    assert "no resource-based policy allows" in (
        denied(auth, root_b, "PurgeQueue", {"QueueUrl": f"http://h/{A}/open"}) or "")


def test_a_move_task_also_needs_send_message_on_its_destination() -> None:
    auth = Authenticator(STORE, clock=lambda: NOW)
    root_a = Identity(A, f"arn:aws:iam::{A}:root", A, "AKIAROOT", (), is_root=True)
    own_dest = {"SourceArn": f"arn:aws:sqs:us-east-1:{A}:dlq", "DestinationArn": f"arn:aws:sqs:us-east-1:{A}:q"}
    assert denied(auth, root_a, "StartMessageMoveTask", own_dest) is None
    foreign = {**own_dest, "DestinationArn": f"arn:aws:sqs:us-east-1:{B}:q"}
    message = denied(auth, root_a, "StartMessageMoveTask", foreign) or ""
    assert f"sqs:SendMessage on resource: arn:aws:sqs:us-east-1:{B}:q" in message
    mover = user(A, {"Effect": "Allow", "Action": "sqs:StartMessageMoveTask", "Resource": "*"})
    assert "sqs:SendMessage" in (denied(auth, mover, "StartMessageMoveTask", own_dest) or "")
