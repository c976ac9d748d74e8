"""IAM policy evaluation as AWS does it, as pure functions over parsed documents and a request description.

Within one request: an explicit ``Deny`` in any applicable policy wins; otherwise an ``Allow`` is needed. In the
caller's own account an Allow from either its identity policies or the resource's policy suffices (the account's
root user needs none); an AWS service principal (SNS delivering to a queue) needs the resource policy's
Allow alone; across accounts both sides must allow: the caller's identity policies (or the caller is its
account's root) and the resource policy naming the caller's principal or account.

Supported: Action/NotAction and Resource/NotResource with ``*``/``?`` wildcards (actions case-insensitive),
Principal/NotPrincipal in resource policies (``*``, account ids, ARNs, ``Service``), and Condition operators
String*, Arn*, IpAddress/NotIpAddress, Date*, Numeric*, Bool and Null, each with ``...IfExists``. Within a
statement all operators and keys must hold; any one of a key's values may match. Condition keys are
case-insensitive; a missing key fails a positive operator and satisfies a negated one, as in IAM.
"""

from __future__ import annotations

import enum
import functools
import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

ContextValue = str | Sequence[str]


class PolicyError(ValueError):
    """A policy document that is not a valid IAM policy (AWS: MalformedPolicyDocument)."""


class Decision(enum.Enum):
    ALLOW = "allow"
    EXPLICIT_DENY = "explicit-deny"
    IMPLICIT_DENY = "implicit-deny"


@dataclass(frozen=True, slots=True)
class Condition:
    operator: str  # without the IfExists suffix
    key: str  # lower-cased
    values: tuple[str, ...]
    if_exists: bool = False


@dataclass(frozen=True, slots=True)
class Statement:
    effect: str  # "Allow" | "Deny"
    actions: tuple[str, ...] = ()
    not_actions: tuple[str, ...] | None = None
    resources: tuple[str, ...] = ("*",)
    not_resources: tuple[str, ...] | None = None
    principals: tuple[str, ...] | None = None  # resource policies only: "*", account ids, ARNs, "service:<name>"
    not_principals: tuple[str, ...] | None = None
    conditions: tuple[Condition, ...] = ()
    sid: str = ""


@dataclass(frozen=True, slots=True)
class Policy:
    statements: tuple[Statement, ...] = field(default_factory=tuple)

    @property
    def has_conditions(self) -> bool:
        """Whether evaluating it can read the request's condition keys (else they need not be gathered)."""
        return any(st.conditions for st in self.statements)


@dataclass(frozen=True, slots=True)
class AuthzRequest:
    """One action on one resource by one principal, with the request's condition keys (``aws:SourceIp``, ...)."""

    principal_arn: str  # arn:aws:iam::<account>:root | :user/<name>, or "service:<name>.amazonaws.com"
    principal_account: str
    action: str  # "sqs:SendMessage"
    resource: str  # an ARN or "*"
    context: Mapping[str, ContextValue] = field(default_factory=dict)


# -- parsing -------------------------------------------------------------------------------------------------------

def parse_policy(doc: Any, *, resource_policy: bool = False) -> Policy:
    """A policy document (already JSON-decoded) -> ``Policy``; PolicyError says what is wrong."""
    if not isinstance(doc, dict):
        raise PolicyError("policy document must be a JSON object")
    raw = doc.get("Statement")
    if isinstance(raw, dict):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise PolicyError("policy document must contain a Statement")
    return Policy(tuple(_statement(s, resource_policy) for s in raw))


def _statement(raw: Any, resource_policy: bool) -> Statement:
    if not isinstance(raw, dict):
        raise PolicyError("each Statement must be an object")
    effect = raw.get("Effect")
    if effect not in ("Allow", "Deny"):
        raise PolicyError(f"Effect must be Allow or Deny, not {effect!r}")
    if ("Action" in raw) == ("NotAction" in raw):
        raise PolicyError("a Statement needs exactly one of Action and NotAction")
    if ("Resource" in raw) and ("NotResource" in raw):
        raise PolicyError("a Statement may not have both Resource and NotResource")
    if "Resource" not in raw and "NotResource" not in raw and not resource_policy:
        raise PolicyError("a Statement needs Resource or NotResource")
    principals = not_principals = None
    if resource_policy:
        if ("Principal" in raw) == ("NotPrincipal" in raw):
            raise PolicyError("a resource policy Statement needs exactly one of Principal and NotPrincipal")
        if "Principal" in raw:
            principals = _principals(raw["Principal"])
        else:
            not_principals = _principals(raw["NotPrincipal"])
    return Statement(
        effect=effect,
        actions=_strings(raw.get("Action", []), "Action"),
        not_actions=_strings(raw["NotAction"], "NotAction") if "NotAction" in raw else None,
        resources=_strings(raw.get("Resource", "*"), "Resource"),
        not_resources=_strings(raw["NotResource"], "NotResource") if "NotResource" in raw else None,
        principals=principals, not_principals=not_principals,
        conditions=_conditions(raw.get("Condition", {})),
        sid=str(raw.get("Sid", "")),
    )


def _strings(value: Any, name: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise PolicyError(f"{name} must be a string or a list of strings")


def _principals(value: Any) -> tuple[str, ...]:
    if value == "*":
        return ("*",)
    if not isinstance(value, dict):
        raise PolicyError("Principal must be \"*\" or an object such as {\"AWS\": ...}")
    out: list[str] = []
    for kind, ids in value.items():
        for p in _strings(ids, f"Principal.{kind}"):
            out.append(f"service:{p}" if kind == "Service" else p)
    return tuple(out)


def _conditions(raw: Any) -> tuple[Condition, ...]:
    if not isinstance(raw, dict):
        raise PolicyError("Condition must be an object")
    out: list[Condition] = []
    for op, block in raw.items():
        name = str(op).split(":", 1)[-1]  # ForAnyValue:/ForAllValues: read as plain operators over our scalars
        if_exists = name.endswith("IfExists")
        base = name.removesuffix("IfExists")
        if base not in _OPERATORS:
            raise PolicyError(f"unsupported condition operator {op!r}")
        if not isinstance(block, dict):
            raise PolicyError(f"condition {op} must map keys to values")
        for key, values in block.items():
            vals = (values,) if isinstance(values, str | bool | int | float) else values
            if not isinstance(vals, list | tuple):
                raise PolicyError(f"condition {op} {key}: values must be a string or a list")
            out.append(Condition(base, str(key).lower(), tuple(_text(v) for v in vals), if_exists))
    return tuple(out)


def _text(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


# -- matching ------------------------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=4096)
def _glob(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(f"^{body}$", re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def glob_match(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    return _glob(pattern, ignore_case).match(value) is not None


def arn_like(pattern: str, value: str) -> bool:
    """ARN matching component by component (the resource part may contain colons)."""
    p, v = pattern.split(":", 5), value.split(":", 5)
    if len(p) != len(v):
        return pattern == "*" or (len(p) < 6 and glob_match(pattern, value))
    return all(glob_match(a, b) for a, b in zip(p, v, strict=True))


def _date(value: str) -> datetime | None:
    try:
        if value.replace(".", "", 1).isdigit():
            return datetime.fromtimestamp(float(value), UTC)
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except (ValueError, OverflowError):
        return None


def _number(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


def _in_network(cidr: str, ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip) in ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return False


def _compare(parse: Callable[[str], Any], test: Callable[[Any, Any], bool]) -> Callable[[str, str], bool]:
    def match(expected: str, actual: str) -> bool:
        a, e = parse(actual), parse(expected)
        return a is not None and e is not None and test(a, e)
    return match


# operator -> (positive test(policy value, request value), negated?)
_OPERATORS: dict[str, tuple[Callable[[str, str], bool], bool]] = {
    "StringEquals": (lambda e, a: e == a, False),
    "StringNotEquals": (lambda e, a: e == a, True),
    "StringEqualsIgnoreCase": (lambda e, a: e.lower() == a.lower(), False),
    "StringNotEqualsIgnoreCase": (lambda e, a: e.lower() == a.lower(), True),
    "StringLike": (lambda e, a: glob_match(e, a), False),
    "StringNotLike": (lambda e, a: glob_match(e, a), True),
    "ArnEquals": (lambda e, a: e == a, False),
    "ArnNotEquals": (lambda e, a: e == a, True),
    "ArnLike": (arn_like, False),
    "ArnNotLike": (arn_like, True),
    "IpAddress": (_in_network, False),
    "NotIpAddress": (_in_network, True),
    "DateEquals": (_compare(_date, lambda a, e: a == e), False),
    "DateNotEquals": (_compare(_date, lambda a, e: a == e), True),
    "DateLessThan": (_compare(_date, lambda a, e: a < e), False),
    "DateLessThanEquals": (_compare(_date, lambda a, e: a <= e), False),
    "DateGreaterThan": (_compare(_date, lambda a, e: a > e), False),
    "DateGreaterThanEquals": (_compare(_date, lambda a, e: a >= e), False),
    "NumericEquals": (_compare(_number, lambda a, e: a == e), False),
    "NumericNotEquals": (_compare(_number, lambda a, e: a == e), True),
    "NumericLessThan": (_compare(_number, lambda a, e: a < e), False),
    "NumericLessThanEquals": (_compare(_number, lambda a, e: a <= e), False),
    "NumericGreaterThan": (_compare(_number, lambda a, e: a > e), False),
    "NumericGreaterThanEquals": (_compare(_number, lambda a, e: a >= e), False),
    "Bool": (lambda e, a: e.lower() == a.lower(), False),
    "Null": (lambda e, a: True, False),  # handled in _condition_holds
}


def _context_values(context: Mapping[str, ContextValue], key: str) -> tuple[str, ...] | None:
    for name, value in context.items():
        if name.lower() == key:
            return (value,) if isinstance(value, str) else tuple(value)
    return None


def _condition_holds(cond: Condition, context: Mapping[str, ContextValue]) -> bool:
    actual = _context_values(context, cond.key)
    if cond.operator == "Null":
        absent = actual is None or not actual
        return any((v.lower() == "true") == absent for v in cond.values)
    if actual is None:
        return cond.if_exists or _OPERATORS[cond.operator][1]
    test, negated = _OPERATORS[cond.operator]
    matched = any(test(e, a) for e in cond.values for a in actual)
    return not matched if negated else matched


def _principal_matches(patterns: Iterable[str], request: AuthzRequest) -> bool:
    for p in patterns:
        if p == "*":
            return True
        if p.startswith("service:"):
            if request.principal_arn == p:
                return True
            continue
        if p == request.principal_account or p == f"arn:aws:iam::{request.principal_account}:root":
            if not request.principal_arn.startswith("service:"):
                return True
        elif glob_match(p, request.principal_arn):
            return True
    return False


def statement_applies(st: Statement, request: AuthzRequest) -> bool:
    if st.not_actions is not None:
        if any(glob_match(a, request.action, ignore_case=True) for a in st.not_actions):
            return False
    elif not any(glob_match(a, request.action, ignore_case=True) for a in st.actions):
        return False
    if st.not_resources is not None:
        if any(arn_like(r, request.resource) for r in st.not_resources):
            return False
    elif not any(arn_like(r, request.resource) for r in st.resources):
        return False
    if st.principals is not None and not _principal_matches(st.principals, request):
        return False
    if st.not_principals is not None and _principal_matches(st.not_principals, request):
        return False
    return all(_condition_holds(c, request.context) for c in st.conditions)


def evaluate(policies: Iterable[Policy], request: AuthzRequest) -> Decision:
    """Explicit deny beats allow beats the implicit deny, over the statements of ``policies``."""
    allowed = False
    for policy in policies:
        for st in policy.statements:
            if statement_applies(st, request):
                if st.effect == "Deny":
                    return Decision.EXPLICIT_DENY
                allowed = True
    return Decision.ALLOW if allowed else Decision.IMPLICIT_DENY


@dataclass(frozen=True, slots=True)
class Verdict:
    decision: Decision
    reason: str  # AWS's wording of why, for AccessDenied messages

    @property
    def allowed(self) -> bool:
        return self.decision is Decision.ALLOW


def authorize(request: AuthzRequest, *, identity_policies: Sequence[Policy], is_root: bool,
              resource_account: str | None, resource_policy: Policy | None) -> Verdict:
    """The whole decision: identity side, resource side, and whether the resource is in the caller's account."""
    identity = evaluate(identity_policies, request)
    resource = evaluate([resource_policy], request) if resource_policy is not None else Decision.IMPLICIT_DENY
    if identity is Decision.EXPLICIT_DENY:
        return Verdict(Decision.EXPLICIT_DENY, "with an explicit deny in an identity-based policy")
    if resource is Decision.EXPLICIT_DENY:
        return Verdict(Decision.EXPLICIT_DENY, "with an explicit deny in a resource-based policy")
    if request.principal_arn.startswith("service:"):  # an AWS service (SNS delivering to SQS): the resource decides
        if resource is Decision.ALLOW:
            return Verdict(Decision.ALLOW, "")
        return Verdict(Decision.IMPLICIT_DENY, f"because no resource-based policy allows the {request.action} action")
    identity_ok = is_root or identity is Decision.ALLOW
    same_account = resource_account is None or resource_account == request.principal_account
    if same_account:
        if identity_ok or resource is Decision.ALLOW:
            return Verdict(Decision.ALLOW, "")
        return Verdict(Decision.IMPLICIT_DENY,
                       f"because no identity-based policy allows the {request.action} action")
    if not identity_ok:
        return Verdict(Decision.IMPLICIT_DENY, f"because no identity-based policy allows the {request.action} action")
    if resource is not Decision.ALLOW:
        return Verdict(Decision.IMPLICIT_DENY,
                       f"because no resource-based policy allows the {request.action} action")
    return Verdict(Decision.ALLOW, "")
