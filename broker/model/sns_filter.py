"""SNS subscription filter policies: validation with AWS's wording and matching, both pure.

A policy is a JSON object. With FilterPolicyScope ``MessageAttributes`` its keys are attribute names; with
``MessageBody`` it mirrors the (JSON) message body, nested objects naming nested keys. A leaf is an array of
conditions, any of which may match (OR); all leaves must match (AND); ``"$or": [policy, ...]`` matches when one of
its sub-policies does. Conditions: a string or number (exact), ``null`` (body only), ``{"prefix"}``,
``{"suffix"}``, ``{"equals-ignore-case"}``, ``{"anything-but": value | [values] | {"prefix"|"suffix"|...}}``,
``{"numeric": [op, n, (op, n)]}``, ``{"exists": bool}``, ``{"cidr": "a.b.c.d/n"}``.

Limits as AWS documents them: at most 5 keys (leaf paths), at most 150 combinations of values (the product of the
leaf arrays' lengths, summed over ``$or`` branches), 256 KiB of policy text. Numbers compare as AWS does: values
in [-1e9, 1e9] with five decimals of precision.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterator
from typing import Any

from broker.model import errors

SCOPE_ATTRIBUTES = "MessageAttributes"
SCOPE_BODY = "MessageBody"
MAX_KEYS = 5
MAX_COMBINATIONS = 150
MAX_POLICY_BYTES = 256 * 1024
MAX_NUMBER = 1e9
_MISSING = object()
_NUMERIC_OPS = ("<", "<=", "=", ">", ">=")
_STRING_OPS = ("prefix", "suffix", "equals-ignore-case")

# A parsed attribute value: ("String"|"Number"|"String.Array", python value); binary attributes are not matched.
AttributeValues = dict[str, tuple[str, Any]]


def _invalid(reason: str) -> errors.BrokerError:
    return errors.InvalidParameterException(f"Invalid parameter: FilterPolicy: {reason}")


# -- validation ------------------------------------------------------------------------------------------------


def parse_policy(text: str, scope: str = SCOPE_ATTRIBUTES) -> dict[str, Any]:
    """The policy object of ``text`` after every AWS check; raises InvalidParameter with AWS's reason."""
    if len(text.encode("utf-8")) > MAX_POLICY_BYTES:
        raise _invalid("Filter policy is too big")
    try:
        policy = json.loads(text)
    except ValueError:
        raise _invalid("failed to parse JSON.") from None
    if not isinstance(policy, dict):
        raise _invalid("Filter policy must be a JSON object")
    keys, combinations = _check_policy(policy, scope, depth=0)
    if keys > MAX_KEYS:
        raise _invalid(f"Filter policy can not have more than {MAX_KEYS} keys")
    if combinations > MAX_COMBINATIONS:
        raise _invalid("Filter policy is too complex")
    return policy


def _check_policy(policy: dict[str, Any], scope: str, depth: int) -> tuple[int, int]:
    """(leaf keys, combinations) of one (sub)policy."""
    keys = 0
    combinations = 1
    for key, value in policy.items():
        if key == "$or":
            if not isinstance(value, list) or len(value) < 2 or not all(isinstance(b, dict) for b in value):
                raise _invalid("$or must be an array of at least 2 JSON objects")
            total = 0
            for branch in value:
                k, c = _check_policy(branch, scope, depth)
                keys = max(keys, k)
                total += c
            combinations *= total
        elif isinstance(value, dict):
            if scope == SCOPE_ATTRIBUTES:
                raise errors.InvalidParameterException(
                    "Invalid parameter: Filter policy scope MessageAttributes does not support nested filter policy")
            k, c = _check_policy(value, scope, depth + 1)
            keys += k
            combinations *= c
        elif isinstance(value, list):
            if not value:
                raise _invalid("Empty arrays are not allowed")
            for condition in value:
                _check_condition(condition, scope)
            keys += 1
            combinations *= len(value)
        else:
            raise _invalid(f'"{key}" must be an object or an array')
    return keys, combinations


def _check_number(value: Any, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _invalid(f"Value of {what} must be numeric")
    if not -MAX_NUMBER <= value <= MAX_NUMBER:
        raise _invalid(f"Value of {what} is out of range")


def _check_condition(condition: Any, scope: str) -> None:
    if condition is None:
        if scope == SCOPE_ATTRIBUTES:
            raise _invalid("Match value must be String, number, true, false, or null")
        return
    if isinstance(condition, bool | str):
        return
    if isinstance(condition, int | float):
        _check_number(condition, "match")
        return
    if isinstance(condition, list):
        raise _invalid("Match value must be String, number, true, false, or null")
    if not isinstance(condition, dict) or len(condition) != 1:
        raise _invalid("Only one key allowed in match expression")
    (op, arg), = condition.items()
    if op in _STRING_OPS:
        if not isinstance(arg, str):
            raise _invalid(f"{op} match pattern must be a string")
    elif op == "exists":
        if not isinstance(arg, bool):
            raise _invalid("exists match pattern must be either true or false.")
    elif op == "anything-but":
        _check_anything_but(arg)
    elif op == "numeric":
        _check_numeric(arg)
    elif op == "cidr":
        _check_cidr(arg)
    else:
        raise _invalid(f"Unrecognized match type {op}")


def _check_anything_but(arg: Any) -> None:
    if isinstance(arg, dict):
        if len(arg) != 1:
            raise _invalid("Only one key allowed in match expression")
        (op, value), = arg.items()
        if op not in _STRING_OPS:
            raise _invalid(f"Unsupported anything-but pattern: {op}")
        if not isinstance(value, str):
            raise _invalid(f"{op} match pattern must be a string")
        return
    values = arg if isinstance(arg, list) else [arg]
    if not values:
        raise _invalid("Empty arrays are not allowed")
    if any(isinstance(v, bool) or not isinstance(v, str | int | float) for v in values):
        raise _invalid("Inside anything but list, start|null|boolean is not supported.")


def _check_numeric(arg: Any) -> None:
    if not isinstance(arg, list) or not arg:
        raise _invalid("Value of numeric must be an array.")
    if len(arg) not in (2, 4):
        raise _invalid("Value of numeric must be an array of length 2 or 4.")
    ops = arg[0::2]
    for op, value in zip(ops, arg[1::2], strict=True):
        if op not in _NUMERIC_OPS:
            raise _invalid(f"Unrecognized numeric range operator: {op}")
        _check_number(value, str(op))
    if len(arg) == 4:
        low, high = ops
        if low not in (">", ">=") or high not in ("<", "<="):
            raise _invalid(f"Bad numeric range operator: {high}")
        if arg[1] >= arg[3]:
            raise _invalid("Bottom must be less than top")
    elif ops[0] not in _NUMERIC_OPS:
        raise _invalid(f"Unrecognized numeric range operator: {ops[0]}")


def _check_cidr(arg: Any) -> None:
    if not isinstance(arg, str):
        raise _invalid("prefix match pattern must be a string")
    if arg.count("/") != 1:
        raise _invalid("Malformed CIDR, one '/' required")
    try:
        ipaddress.ip_network(arg, strict=False)
    except ValueError:
        raise _invalid(f"Nonstandard IP address: {arg.split('/')[0]}") from None


# -- matching --------------------------------------------------------------------------------------------------


def matches_attributes(policy: dict[str, Any], attributes: AttributeValues) -> bool:
    """Whether a message with ``attributes`` passes ``policy`` (scope MessageAttributes)."""
    for key, value in policy.items():
        if key == "$or":
            if not any(matches_attributes(branch, attributes) for branch in value):
                return False
            continue
        found = attributes.get(key)
        if found is None:
            if not any(_matches_absent(c) for c in value):
                return False
            continue
        kind, raw = found
        candidates = raw if kind == "String.Array" else [raw]
        if not any(_matches_value(c, candidates) for c in value):
            return False
    return True


def matches_body(policy: dict[str, Any], body: Any) -> bool:
    """Whether a decoded JSON body passes ``policy`` (scope MessageBody); a non-object body never does."""
    if not isinstance(body, dict):
        return False
    return _match_object(policy, body)


def _match_object(policy: dict[str, Any], obj: Any) -> bool:
    for key, value in policy.items():
        if key == "$or":
            if not any(_match_object(branch, obj) for branch in value):
                return False
            continue
        found = obj.get(key, _MISSING) if isinstance(obj, dict) else _MISSING
        if isinstance(value, dict):
            items = found if isinstance(found, list) else [found]
            if not any(isinstance(item, dict) and _match_object(value, item) for item in items):
                return False
            continue
        if found is _MISSING:
            if not any(_matches_absent(c) for c in value):
                return False
            continue
        candidates = list(_flatten(found))
        if not any(_matches_value(c, candidates) for c in value):
            return False
    return True


def _flatten(value: Any) -> Iterator[Any]:
    if isinstance(value, list):
        for item in value:
            yield from _flatten(item)
    else:
        yield value


def _matches_absent(condition: Any) -> bool:
    """A missing key matches only ``{"exists": false}`` (AWS: anything-but needs the key present)."""
    return isinstance(condition, dict) and condition.get("exists") is False


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return round(float(value), 5)
    if isinstance(value, str):
        try:
            return round(float(value), 5)
        except ValueError:
            return None
    return None


def _matches_value(condition: Any, candidates: list[Any]) -> bool:
    return any(_matches_one(condition, v) for v in candidates)


def _matches_one(condition: Any, value: Any) -> bool:
    if condition is None:
        return value is None
    if isinstance(condition, bool):
        return value is condition
    if isinstance(condition, str):
        return isinstance(value, str) and value == condition
    if isinstance(condition, int | float):
        number = _as_number(value) if not isinstance(value, str) else None  # numbers match numbers only
        return number is not None and number == round(float(condition), 5)
    (op, arg), = condition.items()
    if op == "exists":
        return bool(arg)
    if op == "numeric":
        number = _as_number(value) if not isinstance(value, str) else None
        return number is not None and _in_range(arg, number)
    if op == "anything-but":
        return _anything_but(arg, value)
    if not isinstance(value, str):
        return False
    if op == "cidr":
        return _in_cidr(arg, value)
    return _string_op(op, arg, value)


def _string_op(op: str, arg: str, value: str) -> bool:
    if op == "prefix":
        return value.startswith(arg)
    if op == "suffix":
        return value.endswith(arg)
    return value.casefold() == arg.casefold()  # equals-ignore-case


def _in_range(arg: list[Any], number: float) -> bool:
    for op, bound in zip(arg[0::2], arg[1::2], strict=True):
        b = round(float(bound), 5)
        ok = {"<": number < b, "<=": number <= b, "=": number == b, ">": number > b, ">=": number >= b}[op]
        if not ok:
            return False
    return True


def _anything_but(arg: Any, value: Any) -> bool:
    if isinstance(arg, dict):
        (op, pattern), = arg.items()
        return isinstance(value, str) and not _string_op(op, pattern, value)
    excluded = arg if isinstance(arg, list) else [arg]
    return not any(_matches_one(e, value) for e in excluded)


def _in_cidr(arg: str, value: str) -> bool:
    try:
        return ipaddress.ip_address(value) in ipaddress.ip_network(arg, strict=False)
    except ValueError:
        return False


def attribute_values(attributes: tuple[tuple[str, str, str | None, bytes | None], ...]) -> AttributeValues:
    """Message attributes as filter policies see them: Number as a number, String.Array decoded; Binary dropped."""
    out: AttributeValues = {}
    for name, data_type, string_value, _binary in attributes:
        base = data_type.split(".", 1)[0]
        if base == "Binary" or string_value is None:
            continue
        if data_type == "String.Array":
            try:
                decoded = json.loads(string_value)
            except ValueError:
                continue
            out[name] = ("String.Array", list(_flatten(decoded)) if isinstance(decoded, list) else [decoded])
        elif base == "Number":
            out[name] = ("Number", _as_number(string_value))
        else:
            out[name] = ("String", string_value)
    return out
