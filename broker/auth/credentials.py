"""The credentials file: accounts, their users, access keys (several per user, rotatable) and identity policies.

TOML (read with ``tomllib``) or JSON with the same structure; see docs/security.md::

    [[accounts]]
    id = "111111111111"
    [[accounts.root_keys]]                 # the account's root user: may do anything to the account's resources
    id = "AKIAROOT1111EXAMPLE"
    secret = "..."
    [[accounts.users]]
    name = "alice"
    policies = ['{"Version": "2012-10-17", "Statement": [...]}']   # JSON strings or inline tables
    [[accounts.users.keys]]
    id = "AKIAALICE111EXAMPLE"
    secret = "..."
    active = false                         # a rotated-out key: known, but refused
    rate_limit = { requests_per_second = 50, burst = 100 }   # on an account, a user or a key (the most specific
                                                              # wins); "unlimited" exempts; see broker.auth.ratelimit

Secrets live only in ``AccessKey.secret``, whose repr hides them, so no log line or traceback prints one.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from broker.auth.policy import Policy, PolicyError, parse_policy
from broker.auth.ratelimit import RateLimit, parse_rate_limit

_ACCOUNT_ID = re.compile(r"^\d{12}$")
_KEY_ID = re.compile(r"^[A-Z0-9]{16,128}$")
_USER_NAME = re.compile(r"^[\w+=,.@-]{1,64}$")


class CredentialsError(ValueError):
    """The credentials file is unreadable or wrong; the message names the place, never a secret."""


@dataclass(frozen=True, slots=True)
class Principal:
    """An IAM identity: an account's root user or one of its users."""

    account_id: str
    arn: str
    user_id: str  # what GetCallerIdentity calls UserId: the account id for root, AIDA... for a user
    policies: tuple[Policy, ...] = ()
    is_root: bool = False


@dataclass(frozen=True, slots=True)
class AccessKey:
    access_key_id: str
    secret: str = field(repr=False)
    principal: Principal
    active: bool = True
    rate_limit: RateLimit | None = None  # None: the broker's default (--max-request-rate)


@dataclass(frozen=True, slots=True)
class CredentialStore:
    """Access key id -> key, built once from the file."""

    keys: Mapping[str, AccessKey]
    accounts: tuple[str, ...]

    def lookup(self, access_key_id: str) -> AccessKey | None:
        return self.keys.get(access_key_id)


def load_credentials(path: str | Path) -> CredentialStore:
    """Read and check a TOML or JSON credentials file (JSON when the name ends in ``.json``)."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise CredentialsError(f"cannot read credentials file {p}: {exc.strerror}") from None
    try:
        data = json.loads(raw) if p.suffix.lower() == ".json" else tomllib.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        # The parser's message can quote the offending line (a secret, perhaps): say only where.
        where = f" at line {exc.lineno}" if isinstance(exc, json.JSONDecodeError) else ""
        raise CredentialsError(f"credentials file {p} is not valid {'JSON' if p.suffix == '.json' else 'TOML'}"
                               f"{where}") from None
    return parse_credentials(data, str(p))


def parse_credentials(data: Any, source: str = "credentials") -> CredentialStore:
    if not isinstance(data, dict) or not isinstance(data.get("accounts"), list) or not data["accounts"]:
        raise CredentialsError(f"{source}: expected a non-empty list 'accounts'")
    keys: dict[str, AccessKey] = {}
    accounts: list[str] = []
    for i, account in enumerate(data["accounts"]):
        where = f"{source}: accounts[{i}]"
        account_id = _string(account, "id", where)
        if not _ACCOUNT_ID.match(account_id):
            raise CredentialsError(f"{where}: id must be 12 digits")
        if account_id in accounts:
            raise CredentialsError(f"{where}: account {account_id} appears twice")
        accounts.append(account_id)
        root = Principal(account_id, f"arn:aws:iam::{account_id}:root", account_id, is_root=True)
        account_limit = _rate_limit(account, None, where)
        for j, key in enumerate(_list(account, "root_keys", where)):
            _add_key(keys, key, root, f"{where}.root_keys[{j}]", account_limit)
        for j, user in enumerate(_list(account, "users", where)):
            uwhere = f"{where}.users[{j}]"
            name = _string(user, "name", uwhere)
            if not _USER_NAME.match(name):
                raise CredentialsError(f"{uwhere}: invalid user name {name!r}")
            arn = f"arn:aws:iam::{account_id}:user/{name}"
            policies = tuple(_policy(doc, f"{uwhere}.policies[{k}]")
                             for k, doc in enumerate(_list(user, "policies", uwhere)))
            user_id = user.get("user_id") or "AIDA" + hashlib.sha256(arn.encode()).hexdigest()[:17].upper()
            principal = Principal(account_id, arn, str(user_id), policies)
            user_limit = _rate_limit(user, account_limit, uwhere)
            for k, key in enumerate(_list(user, "keys", uwhere)):
                _add_key(keys, key, principal, f"{uwhere}.keys[{k}]", user_limit)
    return CredentialStore(keys, tuple(accounts))


def _add_key(keys: dict[str, AccessKey], key: Any, principal: Principal, where: str,
             inherited_limit: RateLimit | None = None) -> None:
    key_id = _string(key, "id", where)
    if not _KEY_ID.match(key_id):
        raise CredentialsError(f"{where}: access key id must be 16-128 upper-case letters or digits")
    if key_id in keys:
        raise CredentialsError(f"{where}: access key {key_id} appears twice")
    secret = _string(key, "secret", where)
    active = key.get("active", True)
    if not isinstance(active, bool):
        raise CredentialsError(f"{where}: active must be true or false")
    keys[key_id] = AccessKey(key_id, secret, principal, active, _rate_limit(key, inherited_limit, where))


def _rate_limit(obj: Any, inherited: RateLimit | None, where: str) -> RateLimit | None:
    """The object's own ``rate_limit``, else the one of the account or user it belongs to."""
    if not isinstance(obj, dict) or "rate_limit" not in obj:
        return inherited
    try:
        return parse_rate_limit(obj["rate_limit"], where)
    except ValueError as exc:
        raise CredentialsError(str(exc)) from None


def _policy(doc: Any, where: str) -> Policy:
    try:
        return parse_policy(json.loads(doc) if isinstance(doc, str) else doc)
    except (ValueError, PolicyError) as exc:
        raise CredentialsError(f"{where}: {exc}") from None


def _string(obj: Any, name: str, where: str) -> str:
    value = obj.get(name) if isinstance(obj, dict) else None
    if not isinstance(value, str) or not value:
        raise CredentialsError(f"{where}: '{name}' must be a non-empty string")
    return value


def _list(obj: Any, name: str, where: str) -> list[Any]:
    value = obj.get(name, []) if isinstance(obj, dict) else None
    if not isinstance(value, list):
        raise CredentialsError(f"{where}: '{name}' must be a list")
    return value
