"""AddPermission / RemovePermission and the Policy attribute, as the SQS API reference describes them.

AddPermission adds one statement to the queue's Policy document: Sid = Label, Effect Allow, Principal
``{"AWS": arn:aws:iam::<account>:root ...}``, Action ``SQS:<action>`` ..., Resource = the queue ARN; RemovePermission
removes the statement with that label. AWS writes a single principal or action as a string and several as a list,
so the checks accept both. A Policy set with SetQueueAttributes comes back as the same JSON document. (Enforcement
is not part of this issue: the tests only check that policies are stored and returned faithfully.)
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.integration.conftest import both_protocols
from tests.integration.helpers import error_code, http_status


def policy_of(sqs: Any, url: str) -> dict[str, Any] | None:
    raw = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"]).get("Attributes", {}).get("Policy")
    if not raw:
        return None
    document: dict[str, Any] = json.loads(raw)
    return document


def as_set(value: str | list[str]) -> set[str]:
    return {value} if isinstance(value, str) else set(value)


def statements(sqs: Any, url: str) -> dict[str, dict[str, Any]]:
    document = policy_of(sqs, url)
    if document is None:
        return {}
    return {s["Sid"]: s for s in document.get("Statement", [])}


def queue_arn(sqs: Any, url: str) -> str:
    arn: str = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return arn


@both_protocols
def test_add_permission_writes_a_statement_per_label(sqs: Any, queue_url: str) -> None:
    assert policy_of(sqs, queue_url) is None
    sqs.add_permission(QueueUrl=queue_url, Label="senders", AWSAccountIds=["111122223333", "444455556666"],
                       Actions=["SendMessage", "GetQueueUrl"])
    sqs.add_permission(QueueUrl=queue_url, Label="readers", AWSAccountIds=["777788889999"],
                       Actions=["ReceiveMessage"])
    document = policy_of(sqs, queue_url)
    assert document is not None
    assert document["Version"] == "2012-10-17"
    assert document["Id"] == f"{queue_arn(sqs, queue_url)}/SQSDefaultPolicy"
    found = statements(sqs, queue_url)
    assert set(found) == {"senders", "readers"}
    arn = queue_arn(sqs, queue_url)
    senders, readers = found["senders"], found["readers"]
    assert senders["Effect"] == readers["Effect"] == "Allow"
    assert as_set(senders["Principal"]["AWS"]) == {"arn:aws:iam::111122223333:root",
                                                    "arn:aws:iam::444455556666:root"}
    assert as_set(senders["Action"]) == {"SQS:SendMessage", "SQS:GetQueueUrl"}
    assert as_set(readers["Principal"]["AWS"]) == {"arn:aws:iam::777788889999:root"}
    assert as_set(readers["Action"]) == {"SQS:ReceiveMessage"}
    assert senders["Resource"] == readers["Resource"] == arn


@both_protocols
def test_remove_permission_removes_only_that_label(sqs: Any, queue_url: str) -> None:
    for label in ("one", "two"):
        sqs.add_permission(QueueUrl=queue_url, Label=label, AWSAccountIds=["111122223333"], Actions=["*"])
    assert as_set(statements(sqs, queue_url)["one"]["Action"]) == {"SQS:*"}
    sqs.remove_permission(QueueUrl=queue_url, Label="one")
    assert set(statements(sqs, queue_url)) == {"two"}
    sqs.remove_permission(QueueUrl=queue_url, Label="two")
    assert statements(sqs, queue_url) == {}


@both_protocols
def test_duplicate_and_unknown_labels_are_invalid_parameter_value(sqs: Any, queue_url: str) -> None:
    sqs.add_permission(QueueUrl=queue_url, Label="only", AWSAccountIds=["111122223333"], Actions=["SendMessage"])
    before = policy_of(sqs, queue_url)
    with pytest.raises(ClientError) as info:
        sqs.add_permission(QueueUrl=queue_url, Label="only", AWSAccountIds=["444455556666"],
                           Actions=["DeleteMessage"])
    assert error_code(info.value) == "InvalidParameterValue"
    with pytest.raises(ClientError) as info:
        sqs.remove_permission(QueueUrl=queue_url, Label="never-added")
    assert error_code(info.value) == "InvalidParameterValue"
    assert policy_of(sqs, queue_url) == before


@both_protocols
@pytest.mark.parametrize("action", ["CreateQueue", "DeleteQueue", "SetQueueAttributes", "AddPermission",
                                    "RemovePermission"])
def test_owner_only_actions_cannot_be_shared(sqs: Any, queue_url: str, action: str) -> None:
    with pytest.raises(ClientError) as info:
        sqs.add_permission(QueueUrl=queue_url, Label="owner-only", AWSAccountIds=["111122223333"], Actions=[action])
    assert error_code(info.value) == "InvalidParameterValue"
    assert f"SQS:{action}" in info.value.response["Error"]["Message"]
    assert policy_of(sqs, queue_url) is None


@both_protocols
def test_more_than_seven_actions_in_a_statement_is_over_limit(sqs: Any, queue_url: str) -> None:
    actions = ["SendMessage", "ReceiveMessage", "DeleteMessage", "ChangeMessageVisibility", "GetQueueAttributes",
               "GetQueueUrl", "ListDeadLetterSourceQueues", "PurgeQueue"]
    with pytest.raises(ClientError) as info:
        sqs.add_permission(QueueUrl=queue_url, Label="many", AWSAccountIds=["111122223333"], Actions=actions)
    assert error_code(info.value) == "OverLimit"
    assert http_status(info.value) == 403
    assert policy_of(sqs, queue_url) is None
    sqs.add_permission(QueueUrl=queue_url, Label="seven", AWSAccountIds=["111122223333"], Actions=actions[:7])
    assert len(as_set(statements(sqs, queue_url)["seven"]["Action"])) == 7


@both_protocols
def test_permissions_on_a_missing_queue_are_nonexistent_queue(sqs: Any, queue_url: str) -> None:
    sqs.delete_queue(QueueUrl=queue_url)
    with pytest.raises(sqs.exceptions.QueueDoesNotExist):
        sqs.add_permission(QueueUrl=queue_url, Label="x", AWSAccountIds=["111122223333"], Actions=["SendMessage"])
    with pytest.raises(sqs.exceptions.QueueDoesNotExist):
        sqs.remove_permission(QueueUrl=queue_url, Label="x")


@both_protocols
def test_policy_attribute_is_stored_and_returned_faithfully(sqs: Any, queue_url: str) -> None:
    arn = queue_arn(sqs, queue_url)
    document = {
        "Version": "2012-10-17",
        "Id": f"{arn}/custom",
        "Statement": [{
            "Sid": "AllowTopic",
            "Effect": "Allow",
            "Principal": {"Service": "sns.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": arn,
            "Condition": {"ArnEquals": {"aws:SourceArn": "arn:aws:sns:us-east-1:000000000000:topic"}},
        }],
    }
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": json.dumps(document)})
    assert policy_of(sqs, queue_url) == document
    everything = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
    assert json.loads(everything["Policy"]) == document
    sqs.add_permission(QueueUrl=queue_url, Label="added", AWSAccountIds=["111122223333"], Actions=["SendMessage"])
    assert set(statements(sqs, queue_url)) == {"AllowTopic", "added"}, "AddPermission extends the stored policy"
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": ""})
    assert policy_of(sqs, queue_url) is None
