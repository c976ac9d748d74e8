"""The queue Policy document as AddPermission / RemovePermission edit it (pure JSON in, JSON out).

AWS builds one statement per label: ``Sid`` the label, ``Principal.AWS`` the accounts' root ARNs and ``Action`` the
actions prefixed ``SQS:`` (each a plain string when there is one, a list otherwise), ``Resource`` the queue ARN.
"""

from __future__ import annotations

import json
from typing import Any

from broker.model import errors

POLICY_VERSION = "2012-10-17"


def _document(policy: str | None, queue_arn: str) -> dict[str, Any]:
    parsed: Any = json.loads(policy) if policy else None
    if not isinstance(parsed, dict):
        parsed = {"Version": POLICY_VERSION, "Id": f"{queue_arn}/SQSDefaultPolicy"}
    statements = parsed.get("Statement")
    if isinstance(statements, dict):
        statements = [statements]
    parsed["Statement"] = list(statements) if isinstance(statements, list) else []
    document: dict[str, Any] = parsed
    return document


def _one_or_list(values: list[str]) -> str | list[str]:
    return values[0] if len(values) == 1 else values


def add_statement(policy: str | None, label: str, account_ids: tuple[str, ...], actions: tuple[str, ...],
                  queue_arn: str) -> str:
    """``policy`` with an Allow statement for ``label``; InvalidParameterValue if the label exists."""
    document = _document(policy, queue_arn)
    if any(isinstance(s, dict) and s.get("Sid") == label for s in document["Statement"]):
        raise errors.InvalidParameterValue(f"Value {label} for parameter Label is invalid. Reason: Already exists.")
    document["Statement"].append({
        "Sid": label,
        "Effect": "Allow",
        "Principal": {"AWS": _one_or_list([f"arn:aws:iam::{a}:root" for a in account_ids])},
        "Action": _one_or_list([f"SQS:{a}" for a in actions]),
        "Resource": queue_arn,
    })
    return json.dumps(document, separators=(",", ":"))


def remove_statement(policy: str | None, label: str) -> str | None:
    """``policy`` without the statement ``label`` (None once no statement is left); InvalidParameterValue if the
    label is not there."""
    document = _document(policy, "")
    kept = [s for s in document["Statement"] if not (isinstance(s, dict) and s.get("Sid") == label)]
    if len(kept) == len(document["Statement"]):
        raise errors.InvalidParameterValue(
            f"Value {label} for parameter Label is invalid. Reason: can't find label on existing policy.")
    if not kept:
        return None
    document["Statement"] = kept
    return json.dumps(document, separators=(",", ":"))
