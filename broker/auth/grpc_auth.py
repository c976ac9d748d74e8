"""Signed per-call tokens for the gRPC API: the HTTP APIs' access keys, proven over gRPC metadata.

A gRPC call carries two metadata entries::

    authorization: RAFTMQ-HMAC-SHA256 Credential=<key id>/<YYYYMMDD>/<region>/raftmq/aws4_request, Signature=<hex>
    x-amz-date:    <YYYYMMDDTHHMMSSZ>

The signature is HMAC-SHA256, under SigV4's derived signing key (kSecret -> date -> region -> "raftmq" ->
aws4_request), of the string ``RAFTMQ-HMAC-SHA256\\n<x-amz-date>\\n<scope>\\n<method path>``. It proves the caller
holds the secret, binds the token to one method (a Receive token cannot be replayed as a DeleteQueue) and to a
15-minute window; it does not cover the request message, so within that window a captured token can be replayed
on the same method with another body: TLS is what keeps tokens secret. Not hashing the body keeps signing off the
hot path: a token is computed once per method and second, not per message or per call.

The server checks the token (``TokenVerifier.verify``) and, once the interceptor has admitted a call, puts the caller in
``CALLER``; the servicers take their account from there (``caller_account``).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime

from broker.auth import errors, sigv4
from broker.auth.authenticator import Identity
from broker.auth.credentials import CredentialStore

ALGORITHM = "RAFTMQ-HMAC-SHA256"
SERVICE = "raftmq"
AUTH_KEY = "authorization"
DATE_KEY = "x-amz-date"
_AMZ_DATE = "%Y%m%dT%H%M%SZ"
_AMZ_DATE_RE = re.compile(r"^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$")

# The verified caller of the gRPC call being served; unset in dev mode and outside a call.
CALLER: ContextVar[Identity | None] = ContextVar("raftmq_grpc_caller", default=None)


def caller_account(default: str) -> str:
    """The account of the current gRPC caller, or ``default`` (the node's account) in dev mode."""
    identity = CALLER.get()
    return default if identity is None else identity.account_id


def string_to_sign(amz_date: str, scope: str, method: str) -> str:
    return f"{ALGORITHM}\n{amz_date}\n{scope}\n{method}"


def sign(access_key_id: str, secret: str, region: str, method: str, now: datetime) -> tuple[tuple[str, str], ...]:
    """The metadata that authenticates one call of ``method`` (``/raftmq.broker.v1.Queues/Send``) at ``now``."""
    amz_date = now.astimezone(UTC).strftime(_AMZ_DATE)
    date = amz_date[:8]
    scope = f"{date}/{region}/{SERVICE}/aws4_request"
    key = sigv4.signing_key(secret, date, region, SERVICE)
    signature = hmac.new(key, string_to_sign(amz_date, scope, method).encode(), hashlib.sha256).hexdigest()
    return ((AUTH_KEY, f"{ALGORITHM} Credential={access_key_id}/{scope}, Signature={signature}"),
            (DATE_KEY, amz_date))


@dataclass(frozen=True, slots=True)
class Token:
    """What a call's metadata claims."""

    access_key_id: str
    date: str
    region: str
    service: str
    signature: str
    amz_date: str


def parse_token(metadata: Iterable[tuple[str, str | bytes]]) -> Token:
    """The claim of a call; MissingAuthenticationToken without one, IncompleteSignature when malformed."""
    auth = amz_date = None
    for key, value in metadata:
        if key == AUTH_KEY and isinstance(value, str):
            auth = value
        elif key == DATE_KEY and isinstance(value, str):
            amz_date = value
    if auth is None:
        raise errors.missing_authentication_token()
    algorithm, _, rest = auth.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise errors.incomplete_signature(f"Unsupported authorization algorithm: '{algorithm[:40]}' "
                                          f"(expected {ALGORITHM}).")
    fields = {}
    for part in rest.split(","):
        name, sep, value = part.strip().partition("=")
        if sep:
            fields[name] = value
    missing = [name for name in ("Credential", "Signature") if not fields.get(name)]
    if missing:
        raise errors.incomplete_signature(" ".join(f"Authorization requires '{name}' parameter." for name in missing))
    if not amz_date:
        raise errors.incomplete_signature(f"Authorization requires the '{DATE_KEY}' metadata entry.")
    key_id, date, region, service = sigv4.credential_scope(fields["Credential"])
    return Token(key_id, date, region, service, fields["Signature"].strip().lower(), amz_date)


def signed_at(amz_date: str) -> datetime:
    match = _AMZ_DATE_RE.match(amz_date)
    try:
        if match is None:
            raise ValueError(amz_date)
        y, mo, d, h, mi, sec = (int(g) for g in match.groups())
        return datetime(y, mo, d, h, mi, sec, tzinfo=UTC)
    except ValueError:
        raise errors.incomplete_signature(f"{DATE_KEY} must be in ISO-8601 'basic format'. Got "
                                          f"'{amz_date[:40]}'.") from None


def _utcnow() -> datetime:
    return datetime.now(UTC)


class TokenVerifier:
    """Checks call tokens against the credentials file, with the HTTP APIs' error codes and 15-minute window."""

    def __init__(self, store: CredentialStore, clock: Callable[[], datetime] = _utcnow) -> None:
        self._store = store
        self._clock = clock

    def verify(self, metadata: Iterable[tuple[str, str | bytes]], method: str) -> Identity:
        """The caller of ``method``, or the BrokerError saying what is wrong with its token."""
        token = parse_token(metadata)
        key = self._store.lookup(token.access_key_id)
        if key is None or not key.active:
            raise errors.invalid_client_token_id()
        if token.service != SERVICE:
            raise errors.signature_does_not_match(f"Credential should be scoped to correct service: '{SERVICE}'. ")
        when = signed_at(token.amz_date)
        if token.date != token.amz_date[:8]:
            raise errors.signature_does_not_match(
                f"Date in Credential scope does not match YYYYMMDD of {DATE_KEY}: '{token.date[:8]}' != "
                f"'{token.amz_date[:8]}'.")
        claim = sigv4.SignedRequest(token.access_key_id, token.date, token.region, token.service, (),
                                    token.signature, presigned=False)
        sigv4.check_time(when, claim, self._clock())
        scope = f"{token.date}/{token.region}/{SERVICE}/aws4_request"
        signing_key = sigv4.signing_key(key.secret, token.date, token.region, SERVICE)
        expected = hmac.new(signing_key, string_to_sign(token.amz_date, scope, method).encode(),
                            hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, token.signature):
            raise errors.signature_does_not_match()
        p = key.principal
        return Identity(p.account_id, p.arn, p.user_id, key.access_key_id, p.policies, p.is_root)
