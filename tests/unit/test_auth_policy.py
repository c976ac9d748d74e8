"""IAM policy evaluation as a table: each row is a policy, a request, and the decision AWS would reach."""

from __future__ import annotations

from typing import Any

import pytest

from broker.auth.policy import (
    AuthzRequest,
    Decision,
    PolicyError,
    arn_like,
    authorize,
    evaluate,
    parse_policy,
)

A, B = "111111111111", "222222222222"
ALICE = f"arn:aws:iam::{A}:user/alice"
BOB = f"arn:aws:iam::{B}:user/bob"
ORDERS = f"arn:aws:sqs:us-east-1:{A}:orders"
TOPIC = f"arn:aws:sns:us-east-1:{A}:events"
CTX = {"aws:SourceIp": "10.0.0.7", "aws:CurrentTime": "2026-11-28T12:00:00Z", "aws:SecureTransport": "false"}


def allow(action: Any = "sqs:*", resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action: Any = "sqs:*", resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


def doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def req(action: str = "sqs:SendMessage", resource: str = ORDERS, principal: str = ALICE,
        **context: str) -> AuthzRequest:
    account = principal.split(":")[4] if principal.startswith("arn:") else ""
    return AuthzRequest(principal, account, action, resource, {**CTX, **context})


ALLOW, DENY, NONE = Decision.ALLOW, Decision.EXPLICIT_DENY, Decision.IMPLICIT_DENY

IDENTITY_CASES: list[tuple[str, dict[str, Any], AuthzRequest, Decision]] = [
    ("no statement matches", doc(allow("sns:*")), req(), NONE),
    ("exact action", doc(allow("sqs:SendMessage", ORDERS)), req(), ALLOW),
    ("action wildcard", doc(allow("sqs:Send*")), req(), ALLOW),
    ("action ? wildcard", doc(allow("sqs:?endMessage")), req(), ALLOW),
    ("actions are case-insensitive", doc(allow("SQS:sendmessage")), req(), ALLOW),
    ("star action", doc(allow("*")), req(), ALLOW),
    ("action list", doc(allow(["sqs:ReceiveMessage", "sqs:SendMessage"])), req(), ALLOW),
    ("resource wildcard", doc(allow("sqs:*", "arn:aws:sqs:*:111111111111:ord*")), req(), ALLOW),
    ("resources are case-sensitive", doc(allow("sqs:*", "arn:aws:sqs:*:111111111111:Orders")), req(), NONE),
    ("other resource", doc(allow("sqs:*", "arn:aws:sqs:us-east-1:111111111111:other")), req(), NONE),
    ("explicit deny wins", doc(allow(), deny("sqs:SendMessage")), req(), DENY),
    ("deny elsewhere does not apply", doc(allow(), deny("sqs:DeleteQueue")), req(), ALLOW),
    ("NotAction allows the rest", doc({"Effect": "Allow", "NotAction": "sqs:Delete*", "Resource": "*"}), req(),
     ALLOW),
    ("NotAction excludes", doc({"Effect": "Allow", "NotAction": "sqs:Send*", "Resource": "*"}), req(), NONE),
    ("Deny NotAction denies all but", doc(allow(), {"Effect": "Deny", "NotAction": "sqs:Receive*",
                                                    "Resource": "*"}), req(), DENY),
    ("NotResource", doc({"Effect": "Allow", "Action": "sqs:*", "NotResource": ORDERS}), req(), NONE),
    ("NotResource other", doc({"Effect": "Allow", "Action": "sqs:*", "NotResource": "arn:aws:sqs:*:*:x"}), req(),
     ALLOW),
    ("StringEquals holds", doc(allow(Condition={"StringEquals": {"aws:PrincipalArn": ALICE}})),
     req(**{"aws:PrincipalArn": ALICE}), ALLOW),
    ("StringEquals fails", doc(allow(Condition={"StringEquals": {"aws:PrincipalArn": BOB}})),
     req(**{"aws:PrincipalArn": ALICE}), NONE),
    ("condition keys are case-insensitive", doc(allow(Condition={"StringEquals": {"AWS:principalarn": ALICE}})),
     req(**{"aws:PrincipalArn": ALICE}), ALLOW),
    ("StringLike", doc(allow(Condition={"StringLike": {"aws:PrincipalArn": "arn:aws:iam::*:user/al*"}})),
     req(**{"aws:PrincipalArn": ALICE}), ALLOW),
    ("StringNotLike", doc(allow(Condition={"StringNotLike": {"aws:PrincipalArn": "*alice"}})),
     req(**{"aws:PrincipalArn": ALICE}), NONE),
    ("any value of a key may match", doc(allow(Condition={"StringEquals": {"aws:PrincipalArn": [BOB, ALICE]}})),
     req(**{"aws:PrincipalArn": ALICE}), ALLOW),
    ("missing key fails a positive operator", doc(allow(Condition={"StringEquals": {"aws:SourceVpc": "v"}})),
     req(), NONE),
    ("missing key satisfies a negated one", doc(allow(Condition={"StringNotEquals": {"aws:SourceVpc": "v"}})),
     req(), ALLOW),
    ("IfExists with a missing key holds", doc(allow(Condition={"StringEqualsIfExists": {"aws:SourceVpc": "v"}})),
     req(), ALLOW),
    ("IpAddress inside", doc(allow(Condition={"IpAddress": {"aws:SourceIp": "10.0.0.0/24"}})), req(), ALLOW),
    ("IpAddress outside", doc(allow(Condition={"IpAddress": {"aws:SourceIp": "192.168.0.0/16"}})), req(), NONE),
    ("IpAddress single host", doc(allow(Condition={"IpAddress": {"aws:SourceIp": "10.0.0.7"}})), req(), ALLOW),
    ("NotIpAddress deny", doc(allow(), deny(Condition={"NotIpAddress": {"aws:SourceIp": "192.168.0.0/16"}})),
     req(), DENY),
    ("NotIpAddress inside", doc(allow(), deny(Condition={"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}})),
     req(), ALLOW),
    ("IPv6", doc(allow(Condition={"IpAddress": {"aws:SourceIp": "::1/128"}})), req(**{"aws:SourceIp": "::1"}),
     ALLOW),
    ("DateLessThan before", doc(allow(Condition={"DateLessThan": {"aws:CurrentTime": "2027-01-01T00:00:00Z"}})),
     req(), ALLOW),
    ("DateLessThan after", doc(allow(Condition={"DateLessThan": {"aws:CurrentTime": "2026-01-01T00:00:00Z"}})),
     req(), NONE),
    ("DateGreaterThan", doc(allow(Condition={"DateGreaterThan": {"aws:CurrentTime": "2026-11-28T11:59:59Z"}})),
     req(), ALLOW),
    ("Date as epoch seconds", doc(allow(Condition={"DateGreaterThan": {"aws:CurrentTime": "1893456000"}})),
     req(), NONE),
    ("a window: both must hold", doc(allow(Condition={
        "DateGreaterThan": {"aws:CurrentTime": "2026-11-01T00:00:00Z"},
        "DateLessThan": {"aws:CurrentTime": "2026-11-28T11:00:00Z"}})), req(), NONE),
    ("Bool SecureTransport deny", doc(allow(), deny(Condition={"Bool": {"aws:SecureTransport": "false"}})),
     req(), DENY),
    ("Bool as a JSON boolean", doc(allow(Condition={"Bool": {"aws:SecureTransport": True}})), req(), NONE),
    ("ArnEquals", doc(allow(Condition={"ArnEquals": {"aws:SourceArn": TOPIC}})), req(**{"aws:SourceArn": TOPIC}),
     ALLOW),
    ("ArnLike per component", doc(allow(Condition={"ArnLike": {"aws:SourceArn": "arn:aws:sns:*:111111111111:*"}})),
     req(**{"aws:SourceArn": TOPIC}), ALLOW),
    ("ArnLike other account", doc(allow(Condition={"ArnLike": {"aws:SourceArn": "arn:aws:sns:*:222222222222:*"}})),
     req(**{"aws:SourceArn": TOPIC}), NONE),
    ("Null true: key absent", doc(allow(Condition={"Null": {"aws:SourceArn": "true"}})), req(), ALLOW),
    ("Null false: key present", doc(allow(Condition={"Null": {"aws:SourceArn": "false"}})), req(), NONE),
    ("NumericLessThan", doc(allow(Condition={"NumericLessThan": {"sqs:Count": "5"}})), req(**{"sqs:Count": "3"}),
     ALLOW),
    ("single Statement object", {"Statement": allow()}, req(), ALLOW),
]


@pytest.mark.parametrize(("policy", "request_", "expected"), [c[1:] for c in IDENTITY_CASES],
                         ids=[c[0] for c in IDENTITY_CASES])
def test_identity_policy_matrix(policy: dict[str, Any], request_: AuthzRequest, expected: Decision) -> None:
    assert evaluate([parse_policy(policy)], request_) is expected


def queue_policy(*statements: dict[str, Any]) -> Any:
    return parse_policy(doc(*statements), resource_policy=True)


def grant(principal: Any, action: Any = "sqs:SendMessage", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Principal": principal, "Action": action, "Resource": ORDERS, **extra}


SNS = "service:sns.amazonaws.com"


@pytest.mark.parametrize(("name", "principal", "identity", "is_root", "resource_policy", "context", "allowed",
                          "reason"), [
    ("root of the owner needs no policy", f"arn:aws:iam::{A}:root", [], True, None, {}, True, ""),
    ("user without policies", ALICE, [], False, None, {}, False, "no identity-based policy allows"),
    ("same account: resource policy alone suffices", ALICE, [], False, queue_policy(grant({"AWS": ALICE})), {},
     True, ""),
    ("cross-account without resource policy", BOB, [doc(allow())], False, None, {}, False,
     "no resource-based policy allows"),
    ("cross-account root without resource policy", f"arn:aws:iam::{B}:root", [], True, None, {}, False,
     "no resource-based policy allows"),
    ("cross-account granted to the account", BOB, [doc(allow())], False, queue_policy(grant({"AWS": B})), {}, True,
     ""),
    ("cross-account granted to account root ARN", f"arn:aws:iam::{B}:root", [], True,
     queue_policy(grant({"AWS": f"arn:aws:iam::{B}:root"})), {}, True, ""),
    ("cross-account needs the identity side too", BOB, [], False, queue_policy(grant({"AWS": B})), {}, False,
     "no identity-based policy allows"),
    ("cross-account grant to someone else", BOB, [doc(allow())], False,
     queue_policy(grant({"AWS": "333333333333"})), {}, False, "no resource-based policy allows"),
    ("public grant", BOB, [doc(allow())], False, queue_policy(grant("*")), {}, True, ""),
    ("resource policy deny beats the owner's root", f"arn:aws:iam::{A}:root", [], True,
     queue_policy({"Effect": "Deny", "Principal": "*", "Action": "sqs:*", "Resource": ORDERS}), {}, False,
     "explicit deny in a resource-based policy"),
    ("identity deny beats a resource grant", BOB, [doc(allow(), deny())], False, queue_policy(grant({"AWS": B})),
     {}, False, "explicit deny in an identity-based policy"),
    ("SNS topic to queue with matching SourceArn", SNS, [], False,
     queue_policy(grant({"Service": "sns.amazonaws.com"}, Condition={"ArnEquals": {"aws:SourceArn": TOPIC}})),
     {"aws:SourceArn": TOPIC}, True, ""),
    ("SNS from another topic is refused", SNS, [], False,
     queue_policy(grant({"Service": "sns.amazonaws.com"}, Condition={"ArnEquals": {"aws:SourceArn": TOPIC}})),
     {"aws:SourceArn": TOPIC + "-other"}, False, "no resource-based policy allows"),
    ("an account grant does not cover a service", SNS, [], False, queue_policy(grant({"AWS": A})),
     {"aws:SourceArn": TOPIC}, False, "no resource-based policy allows"),
])
def test_resource_policy_matrix(name: str, principal: str, identity: list[dict[str, Any]], is_root: bool,
                                resource_policy: Any, context: dict[str, str], allowed: bool, reason: str) -> None:
    account = principal.split(":")[4] if principal.startswith("arn:") else ""
    request = AuthzRequest(principal, account, "sqs:SendMessage", ORDERS, context)
    verdict = authorize(request, identity_policies=[parse_policy(d) for d in identity], is_root=is_root,
                        resource_account=A, resource_policy=resource_policy)
    assert verdict.allowed is allowed
    assert reason in verdict.reason


@pytest.mark.parametrize(("policy", "message"), [
    ([], "JSON object"),
    ({"Statement": []}, "contain a Statement"),
    ({"Statement": [{"Effect": "Allow", "Resource": "*"}]}, "Action and NotAction"),
    ({"Statement": [{"Effect": "Allow", "Action": "*"}]}, "Resource or NotResource"),
    ({"Statement": [allow(Condition={"StringMaybe": {"k": "v"}})]}, "unsupported condition operator"),
    ({"Statement": [{"Effect": "Allow", "Action": 3, "Resource": "*"}]}, "Action must be"),
])
def test_malformed_policies_are_refused(policy: Any, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        parse_policy(policy)


def test_resource_policies_need_a_principal() -> None:
    with pytest.raises(PolicyError, match="Principal"):
        parse_policy(doc(allow()), resource_policy=True)


def test_arn_like_matches_components() -> None:
    assert arn_like("arn:aws:sqs:*:111111111111:*", ORDERS)
    assert not arn_like("arn:aws:sqs:*:111111111111:*", f"arn:aws:sns:us-east-1:{A}:orders")
    assert arn_like("*", ORDERS)
    assert arn_like("arn:aws:kinesis:*:*:stream/*", "arn:aws:kinesis:eu-west-1:1:stream/a/consumer/b:1")
