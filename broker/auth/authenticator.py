"""The gateway's view of security: who sent this request (``authenticate``) and may they do this (``authorize``).

``Authenticator`` verifies SigV4 against the credentials file and evaluates IAM policies; ``DevAuthenticator``
(dev mode) accepts any credentials as the root user of the configured account and allows everything.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import parse_qsl

from broker.auth import errors, sigv4
from broker.auth.credentials import CredentialStore
from broker.auth.policy import AuthzRequest, Policy, PolicyError, authorize, parse_policy
from broker.auth.resources import UNAUTHORIZED_ACTIONS, Target, arn_account, extra_targets, target
from broker.http.types import HttpRequest
from broker.model.errors import BrokerError
from broker.service import RequestContext

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
SNS_PRINCIPAL = "service:sns.amazonaws.com"
# resource ARN -> its resource policy document (JSON text), or None when it has none / does not exist.
ResourcePolicies = Callable[[str], str | None]


@dataclass(frozen=True, slots=True)
class Identity:
    """The verified caller."""

    account_id: str
    arn: str
    user_id: str
    access_key_id: str
    policies: tuple[Policy, ...] = ()
    is_root: bool = True


class RequestAuthenticator(Protocol):
    """What the gateway calls for every request, before and after decoding its input."""

    def authenticate(self, request: HttpRequest, service: str) -> Identity: ...

    def authorize(self, identity: Identity, service: str, operation: str, params: Mapping[str, Any],
                  ctx: RequestContext) -> None: ...


def _utcnow() -> datetime:
    return datetime.now(UTC)


def query_params(request: HttpRequest) -> dict[str, str]:
    return dict(parse_qsl(request.query, keep_blank_values=True)) if request.query else {}


class DevAuthenticator:
    """Dev mode: any (or no) credentials are the configured account's root user; everything is allowed."""

    def __init__(self, account_id: str) -> None:
        self._account_id = account_id
        self._arn = f"arn:aws:iam::{account_id}:root"

    def authenticate(self, request: HttpRequest, service: str) -> Identity:
        key = ""
        auth = request.headers.get("authorization")
        if auth is not None and "Credential=" in auth:
            key = auth.split("Credential=", 1)[1].split("/", 1)[0]
        elif "X-Amz-Credential" in request.query:
            key = query_params(request).get("X-Amz-Credential", "").split("/", 1)[0]
        return Identity(self._account_id, self._arn, self._account_id, key)

    def authorize(self, identity: Identity, service: str, operation: str, params: Mapping[str, Any],
                  ctx: RequestContext) -> None:
        return None


class Authenticator:
    """SigV4 against the credentials file, then IAM identity and resource policies."""

    def __init__(self, store: CredentialStore, *, clock: Clock = _utcnow,
                 resource_policies: ResourcePolicies | None = None, secure_transport: bool = False) -> None:
        self._store = store
        self._clock = clock
        self._resource_policies = resource_policies
        self._secure = "true" if secure_transport else "false"

    def set_resource_policies(self, lookup: ResourcePolicies) -> None:
        """Wired by the app once the services exist (they own the Policy attributes)."""
        self._resource_policies = lookup

    def authenticate(self, request: HttpRequest, service: str) -> Identity:
        try:
            return self._authenticate(request, service)
        except BrokerError as exc:
            raise errors.for_service(exc, service) from None

    def _authenticate(self, request: HttpRequest, service: str) -> Identity:
        params = query_params(request)
        signed = sigv4.parse_signed_request(request.headers, params)
        if signed is None:
            raise errors.missing_authentication_token()
        key = self._store.lookup(signed.access_key_id)
        if key is None or not key.active:
            raise errors.invalid_client_token_id()
        sigv4.check_service(signed, service)
        sigv4.verify(signed, key.secret, method=request.method, raw_path=request.path, raw_query=request.query,
                     headers=request.headers, query_params=params, body=request.body, now=self._clock())
        p = key.principal
        return Identity(p.account_id, p.arn, p.user_id, key.access_key_id, p.policies, p.is_root)

    def authorize(self, identity: Identity, service: str, operation: str, params: Mapping[str, Any],
                  ctx: RequestContext) -> None:
        t = target(service, operation, params, identity.account_id, ctx.region)
        if t.action in UNAUTHORIZED_ACTIONS:
            return
        self._check(identity, service, t, ctx)
        for extra in extra_targets(service, operation, params, identity.account_id):
            self._check(identity, service, extra, ctx)
        if service == "sns" and operation == "Subscribe" and params.get("Protocol") == "sqs":
            self._check_sns_to_sqs(identity, params)

    def _check(self, identity: Identity, service: str, t: Target, ctx: RequestContext) -> None:
        resource_policy = self._resource_policy(t.resource)
        own = t.account is None or t.account == identity.account_id
        if identity.is_root and own and resource_policy is None:
            return  # the account's root on its own resources, with no resource policy that could deny it
        policies = (*identity.policies, *((resource_policy,) if resource_policy is not None else ()))
        context = self._context(identity, ctx) if any(p.has_conditions for p in policies) else {}
        request = AuthzRequest(identity.arn, identity.account_id, t.action, t.resource, context)
        verdict = authorize(request, identity_policies=identity.policies, is_root=identity.is_root,
                            resource_account=t.account, resource_policy=resource_policy)
        if not verdict.allowed:
            raise errors.access_denied(service, identity.arn, t.action, t.resource, verdict.reason)

    def _check_sns_to_sqs(self, identity: Identity, params: Mapping[str, Any]) -> None:
        """A topic may feed another account's queue only if that queue's policy lets SNS send from this topic.

        Checked when subscribing (delivery itself happens inside the replicated publish), so one account cannot
        inject messages into another's queue through a topic of its own.
        """
        topic, queue = str(params.get("TopicArn") or ""), str(params.get("Endpoint") or "")
        queue_account = arn_account(queue)
        if queue_account is None or queue_account == arn_account(topic):
            return
        context = {"aws:SourceArn": topic, "aws:SourceAccount": arn_account(topic) or ""}
        request = AuthzRequest(SNS_PRINCIPAL, "", "sqs:SendMessage", queue, context)
        verdict = authorize(request, identity_policies=(), is_root=False, resource_account=queue_account,
                            resource_policy=self._resource_policy(queue))
        if not verdict.allowed:
            raise errors.access_denied("sns", identity.arn, "sns:Subscribe", topic,
                                       f"because the policy of {queue} does not allow sns.amazonaws.com to send "
                                       f"sqs:SendMessage from {topic}")

    def _context(self, identity: Identity, ctx: RequestContext) -> dict[str, str]:
        """The global condition keys of this request."""
        now = self._clock()
        return {
            "aws:SourceIp": ctx.client_host,
            "aws:CurrentTime": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "aws:EpochTime": str(int(now.timestamp())),
            "aws:SecureTransport": self._secure,
            "aws:PrincipalAccount": identity.account_id,
            "aws:PrincipalArn": identity.arn,
            "aws:RequestedRegion": ctx.region,
            "aws:userid": identity.user_id,
            **({"aws:username": identity.arn.rsplit("/", 1)[1]} if ":user/" in identity.arn else {}),
        }

    def _resource_policy(self, arn: str) -> Policy | None:
        if self._resource_policies is None or arn == "*" or arn.endswith(":*"):
            return None
        text = self._resource_policies(arn)
        if not text:
            return None
        policy = _parse_resource_policy(text)
        if policy is None:
            log.warning("event=resource-policy-invalid arn=%s", arn)  # unreadable: grants nothing
        return policy


@functools.lru_cache(maxsize=1024)
def _parse_resource_policy(text: str) -> Policy | None:
    """Parsed once per distinct document: a queue's policy is read on every request to it."""
    try:
        return parse_policy(json.loads(text), resource_policy=True)
    except (ValueError, PolicyError):
        return None
