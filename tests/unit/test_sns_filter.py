"""Filter policies: AWS's documented examples as a table (matching), and AWS's validation errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker.model import errors
from broker.model.sns_filter import (
    SCOPE_ATTRIBUTES,
    SCOPE_BODY,
    attribute_values,
    matches_attributes,
    matches_body,
    parse_policy,
)

# The message of the SNS developer guide's filter policy examples.
ATTRIBUTES = attribute_values((
    ("customer_interests", "String.Array", '["soccer", "rugby", "hockey"]', None),
    ("store", "String", "example_corp", None),
    ("event", "String", "order_placed", None),
    ("price_usd", "Number", "210.75", None),
    ("source_ip", "String", "10.0.0.255", None),
    ("picture", "Binary", None, b"\x00"),
))

ATTRIBUTE_CASES: list[tuple[dict[str, Any], bool]] = [
    ({"store": ["example_corp"], "event": [{"anything-but": "order_cancelled"}],
      "customer_interests": ["rugby", "football", "baseball"], "price_usd": [{"numeric": [">=", 100]}]}, True),
    ({"store": ["example_corp"]}, True),
    ({"store": ["other_corp"]}, False),
    ({"customer_interests": ["rugby"]}, True),  # any array element
    ({"customer_interests": ["golf"]}, False),
    ({"price_usd": [210.75]}, True),
    ({"price_usd": [210.7500001]}, True),  # five decimals of precision
    ({"price_usd": [210]}, False),
    ({"price_usd": ["210.75"]}, False),  # a string never matches a Number attribute
    ({"price_usd": [{"numeric": [">", 0, "<=", 150]}]}, False),
    ({"price_usd": [{"numeric": [">", 200, "<", 300]}]}, True),
    ({"price_usd": [{"numeric": ["=", 210.75]}]}, True),
    ({"store": [{"numeric": [">", 0]}]}, False),
    ({"event": [{"prefix": "order"}]}, True),
    ({"event": [{"prefix": "order-"}]}, False),
    ({"event": [{"suffix": "_placed"}]}, True),
    ({"event": [{"suffix": "_cancelled"}]}, False),
    ({"event": [{"equals-ignore-case": "ORDER_PLACED"}]}, True),
    ({"event": [{"anything-but": ["order_cancelled", "order_placed"]}]}, False),
    ({"event": [{"anything-but": {"prefix": "order"}}]}, False),
    ({"event": [{"anything-but": {"prefix": "refund"}}]}, True),
    ({"event": [{"anything-but": {"suffix": "_placed"}}]}, False),
    ({"price_usd": [{"anything-but": [100, 200]}]}, True),
    ({"price_usd": [{"anything-but": 210.75}]}, False),
    ({"customer_interests": [{"anything-but": ["rugby", "tennis"]}]}, True),  # "soccer" is not excluded
    ({"store": [{"exists": True}]}, True),
    ({"encrypted": [{"exists": False}]}, True),
    ({"store": [{"exists": False}]}, False),
    ({"encrypted": [{"exists": True}]}, False),
    ({"encrypted": [{"anything-but": "x"}]}, False),  # anything-but needs the attribute
    ({"picture": [{"exists": True}]}, False),  # Binary attributes are not filterable
    ({"source_ip": [{"cidr": "10.0.0.0/24"}]}, True),
    ({"source_ip": [{"cidr": "10.0.1.0/24"}]}, False),
    ({"event": ["order_placed", "order_cancelled"], "store": ["example_corp"]}, True),
    ({"event": ["order_placed"], "store": ["other"]}, False),  # keys are ANDed
    ({"store": ["other"], "$or": [{"event": ["order_placed"]}, {"price_usd": [1]}]}, False),
    ({"store": ["example_corp"], "$or": [{"event": ["nope"]}, {"price_usd": [{"numeric": [">", 200]}]}]}, True),
    ({"$or": [{"event": ["nope"]}, {"price_usd": [1]}]}, False),
]


@pytest.mark.parametrize(("policy", "expected"), ATTRIBUTE_CASES)
def test_attribute_policies(policy: dict[str, Any], expected: bool) -> None:
    parsed = parse_policy(json.dumps(policy), SCOPE_ATTRIBUTES)
    assert matches_attributes(parsed, ATTRIBUTES) is expected


BODY = {"Records": [{"eventName": "ObjectCreated:Put", "s3": {"object": {"key": "images/a.jpg", "size": 1024}}},
                    {"eventName": "ObjectRemoved:Delete", "s3": {"object": {"key": "docs/b.txt", "size": 10}}}],
        "customer": {"tier": "gold", "ip": "192.168.1.7", "flags": [True]}, "note": None}

BODY_CASES: list[tuple[dict[str, Any], bool]] = [
    ({"Records": {"eventName": [{"prefix": "ObjectCreated"}]}}, True),  # nested keys inside an array of objects
    ({"Records": {"s3": {"object": {"size": [{"numeric": [">", 1000]}]}}}}, True),
    ({"Records": {"s3": {"object": {"size": [{"numeric": [">", 5000]}]}}}}, False),
    ({"Records": {"s3": {"object": {"key": [{"suffix": ".txt"}]}}}}, True),
    ({"customer": {"tier": ["gold", "platinum"]}}, True),
    ({"customer": {"tier": ["silver"]}}, False),
    ({"customer": {"ip": [{"cidr": "192.168.0.0/16"}]}}, True),
    ({"customer": {"flags": [True]}}, True),
    ({"customer": {"missing": [{"exists": False}]}}, True),
    ({"customer": {"tier": [{"exists": False}]}}, False),
    ({"note": [None]}, True),
    ({"customer": {"tier": ["gold"]}, "$or": [{"note": ["x"]}, {"Records": {"eventName": ["ObjectRemoved:Delete"]}}]},
     True),
]


@pytest.mark.parametrize(("policy", "expected"), BODY_CASES)
def test_body_policies(policy: dict[str, Any], expected: bool) -> None:
    parsed = parse_policy(json.dumps(policy), SCOPE_BODY)
    assert matches_body(parsed, BODY) is expected


def test_a_body_that_is_not_a_json_object_never_matches() -> None:
    assert not matches_body({"a": [{"exists": False}]}, ["not", "an", "object"])


INVALID: list[tuple[str, str, str]] = [
    ('{"a": [1], "b": [1], "c": [1], "d": [1], "e": [1], "f": [1]}', SCOPE_ATTRIBUTES,
     "Filter policy can not have more than 5 keys"),
    (json.dumps({k: list(range(6)) for k in "abc"}), SCOPE_ATTRIBUTES, "Filter policy is too complex"),  # 216
    ('{"a": []}', SCOPE_ATTRIBUTES, "Empty arrays are not allowed"),
    ('{"a": "x"}', SCOPE_ATTRIBUTES, '"a" must be an object or an array'),
    ('{"a": [{"numeric": [">", "x"]}]}', SCOPE_ATTRIBUTES, "Value of > must be numeric"),
    ('{"a": [{"numeric": ["<", 5, ">", 1]}]}', SCOPE_ATTRIBUTES, "Bad numeric range operator"),
    ('{"a": [{"numeric": [">", 5, "<", 1]}]}', SCOPE_ATTRIBUTES, "Bottom must be less than top"),
    ('{"a": [{"numeric": ["!", 5]}]}', SCOPE_ATTRIBUTES, "Unrecognized numeric range operator: !"),
    ('{"a": [{"numeric": 5}]}', SCOPE_ATTRIBUTES, "Value of numeric must be an array."),
    ('{"a": [1e10]}', SCOPE_ATTRIBUTES, "out of range"),
    ('{"a": [{"prefix": 5}]}', SCOPE_ATTRIBUTES, "prefix match pattern must be a string"),
    ('{"a": [{"exists": "yes"}]}', SCOPE_ATTRIBUTES, "exists match pattern must be either true or false."),
    ('{"a": [{"cidr": "10.0.0.0"}]}', SCOPE_ATTRIBUTES, "Malformed CIDR, one '/' required"),
    ('{"a": [{"cidr": "10.0.0.300/24"}]}', SCOPE_ATTRIBUTES, "Nonstandard IP address"),
    ('{"a": [{"wat": 1}]}', SCOPE_ATTRIBUTES, "Unrecognized match type wat"),
    ('{"a": [{"prefix": "x", "suffix": "y"}]}', SCOPE_ATTRIBUTES, "Only one key allowed in match expression"),
    ('{"a": [{"anything-but": {"numeric": 1}}]}', SCOPE_ATTRIBUTES, "Unsupported anything-but pattern"),
    ('{"a": [[1]]}', SCOPE_ATTRIBUTES, "Match value must be String, number, true, false, or null"),
    ('{"a": {"b": ["x"]}}', SCOPE_ATTRIBUTES, "does not support nested filter policy"),
    ('{"$or": [{"a": ["x"]}]}', SCOPE_ATTRIBUTES, "$or must be an array of at least 2 JSON objects"),
    ("not json", SCOPE_ATTRIBUTES, "failed to parse JSON."),
    ("[1]", SCOPE_ATTRIBUTES, "Filter policy must be a JSON object"),
]


@pytest.mark.parametrize(("text", "scope", "reason"), INVALID)
def test_invalid_policies_are_refused_with_aws_wording(text: str, scope: str, reason: str) -> None:
    with pytest.raises(errors.BrokerError) as exc:
        parse_policy(text, scope)
    assert exc.value.code == "InvalidParameterException"
    assert exc.value.legacy_code == "InvalidParameter"
    assert reason in exc.value.message


def test_or_branches_add_up_in_the_complexity_count() -> None:
    branch = {"a": list(range(10)), "b": list(range(8))}  # 80 combinations each
    parse_policy(json.dumps({"$or": [branch, {"c": ["x"]}]}))  # 81: fine
    with pytest.raises(errors.BrokerError, match="too complex"):
        parse_policy(json.dumps({"$or": [branch, branch]}))  # 160


def test_nested_keys_count_as_keys_in_body_scope() -> None:
    parse_policy(json.dumps({"a": {"b": ["x"], "c": {"d": ["y"]}}}), SCOPE_BODY)
    with pytest.raises(errors.BrokerError, match="more than 5 keys"):
        parse_policy(json.dumps({"a": {str(i): ["x"] for i in range(6)}}), SCOPE_BODY)


_words = st.text(alphabet="abcXYZ_-", min_size=0, max_size=6)


@given(value=_words, pattern=_words)
def test_anything_but_is_the_complement_of_an_exact_match_on_a_present_string(value: str, pattern: str) -> None:
    attributes = attribute_values((("k", "String", value or "x", None),))
    exact = matches_attributes(parse_policy(json.dumps({"k": [pattern or "y"]})), attributes)
    other = matches_attributes(parse_policy(json.dumps({"k": [{"anything-but": pattern or "y"}]})), attributes)
    assert exact is not other


@given(value=_words, pattern=_words)
def test_string_operators_agree_with_python(value: str, pattern: str) -> None:
    value, pattern = value or "x", pattern or "y"
    attributes = attribute_values((("k", "String", value, None),))

    def check(condition: dict[str, Any]) -> bool:
        return matches_attributes(parse_policy(json.dumps({"k": [condition]})), attributes)
    assert check({"prefix": pattern}) is value.startswith(pattern)
    assert check({"suffix": pattern}) is value.endswith(pattern)
    assert check({"equals-ignore-case": pattern}) is (value.lower() == pattern.lower())
    assert check({"anything-but": {"prefix": pattern}}) is not value.startswith(pattern)


@given(number=st.integers(-1000, 1000), low=st.integers(-1000, 999), span=st.integers(1, 1000))
def test_numeric_ranges_agree_with_python(number: int, low: int, span: int) -> None:
    attributes = attribute_values((("n", "Number", str(number), None),))
    policy = parse_policy(json.dumps({"n": [{"numeric": [">", low, "<=", low + span]}]}))
    assert matches_attributes(policy, attributes) is (low < number <= low + span)
