"""Every SQS error code a user can trigger, once per wire protocol, as the SDK reports it.

Each case is the smallest real call that provokes the error through botocore. The code checked is the one SDKs
surface: the legacy Query code (``AWS.SimpleQueueService.NonExistentQueue``, ``QueueAlreadyExists``) over Query, and
the same code over JSON, where botocore reads it from ``x-amzn-query-error`` (the model is ``awsQueryCompatible``).
Errors of FIFO, dead-letter, move-task and permission operations (ResourceNotFoundException, OverLimit, FIFO's
MissingParameter ...) are checked over both protocols in their own modules; EmptyBatchRequest in ``test_sqs_messages``.
Codes provoked nowhere, and why: QueueDeletedRecently (RaftMQ allows reusing a name at once), RequestThrottled /
InvalidSecurity / Kms* (no throttling, TLS policy or KMS), InvalidIdFormat (retired by AWS), UnsupportedOperation
(only for features not built).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.integration.conftest import both_protocols, make_sqs_client
from tests.integration.helpers import error_code, http_status
from tests.integration.server import RaftMQServer

ACCOUNT = "000000000000"


@dataclass(frozen=True, slots=True)
class Env:
    """What a case needs: a client, a fresh queue, and the server (for URLs of queues that do not exist)."""

    sqs: Any
    url: str
    server: RaftMQServer
    protocol: str


@dataclass(frozen=True, slots=True)
class Case:
    code: str
    status: int | None  # None where AWS's two models disagree (PurgeQueueInProgress: 403 in Query, 400 in JSON)
    trigger: Callable[[Env], object]


def receive_one(env: Env, **kwargs: Any) -> dict[str, Any]:
    messages = env.sqs.receive_message(QueueUrl=env.url, WaitTimeSeconds=1, **kwargs)["Messages"]
    assert len(messages) == 1
    message: dict[str, Any] = messages[0]
    return message


def message_not_inflight(env: Env) -> object:
    env.sqs.send_message(QueueUrl=env.url, MessageBody="x")
    handle = receive_one(env, VisibilityTimeout=300)["ReceiptHandle"]
    env.sqs.change_message_visibility(QueueUrl=env.url, ReceiptHandle=handle, VisibilityTimeout=0)
    return env.sqs.change_message_visibility(QueueUrl=env.url, ReceiptHandle=handle, VisibilityTimeout=30)


def purge_twice(env: Env) -> object:
    env.sqs.purge_queue(QueueUrl=env.url)
    return env.sqs.purge_queue(QueueUrl=env.url)


def queue_already_exists(env: Env) -> object:
    name = env.url.rsplit("/", 1)[1]
    return env.sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "7"})


def unvalidated(env: Env) -> Any:
    """A client that sends what it is given (botocore otherwise refuses a missing required member itself)."""
    return make_sqs_client(env.server.endpoint, env.protocol,
                           config=Config(parameter_validation=False, retries={"total_max_attempts": 1}))


CASES: dict[str, Case] = {
    "nonexistent-queue": Case("AWS.SimpleQueueService.NonExistentQueue", 400, lambda e: e.sqs.send_message(
        QueueUrl=f"{e.server.endpoint}/{ACCOUNT}/no-such-queue-at-all", MessageBody="x")),
    "queue-already-exists": Case("QueueAlreadyExists", 400, queue_already_exists),
    "invalid-attribute-name": Case("InvalidAttributeName", 400, lambda e: e.sqs.get_queue_attributes(
        QueueUrl=e.url, AttributeNames=["NoSuchAttribute"])),
    "invalid-attribute-value": Case("InvalidAttributeValue", 400, lambda e: e.sqs.set_queue_attributes(
        QueueUrl=e.url, Attributes={"VisibilityTimeout": "43201"})),
    "invalid-parameter-value": Case("InvalidParameterValue", 400, lambda e: e.sqs.receive_message(
        QueueUrl=e.url, MaxNumberOfMessages=11)),
    "invalid-queue-name": Case("InvalidParameterValue", 400, lambda e: e.sqs.create_queue(QueueName="bad name")),
    "missing-parameter": Case("MissingParameter", 400, lambda e: unvalidated(e).send_message(QueueUrl=e.url)),
    "invalid-address": Case("InvalidAddress", None, lambda e: e.sqs.send_message(
        QueueUrl=e.server.endpoint + "/", MessageBody="x")),
    "invalid-message-contents": Case("InvalidMessageContents", 400, lambda e: e.sqs.send_message(
        QueueUrl=e.url, MessageBody="nul\x00")),
    "message-not-inflight": Case("AWS.SimpleQueueService.MessageNotInflight", 400, message_not_inflight),
    "receipt-handle-is-invalid": Case("ReceiptHandleIsInvalid", 400, lambda e: e.sqs.delete_message(
        QueueUrl=e.url, ReceiptHandle="not-a-receipt-handle")),
    "purge-queue-in-progress": Case("AWS.SimpleQueueService.PurgeQueueInProgress", None, purge_twice),
    "too-many-entries": Case("AWS.SimpleQueueService.TooManyEntriesInBatchRequest", 400, lambda e: (
        e.sqs.send_message_batch(QueueUrl=e.url, Entries=[{"Id": str(i), "MessageBody": "x"} for i in range(11)]))),
    "batch-entry-ids-not-distinct": Case("AWS.SimpleQueueService.BatchEntryIdsNotDistinct", 400, lambda e: (
        e.sqs.delete_message_batch(QueueUrl=e.url, Entries=[{"Id": "a", "ReceiptHandle": "h"},
                                                            {"Id": "a", "ReceiptHandle": "h"}]))),
    "batch-request-too-long": Case("AWS.SimpleQueueService.BatchRequestTooLong", 400, lambda e: (
        e.sqs.send_message_batch(QueueUrl=e.url, Entries=[{"Id": str(i), "MessageBody": "b" * 110_000}
                                                          for i in range(10)]))),
    "invalid-batch-entry-id": Case("AWS.SimpleQueueService.InvalidBatchEntryId", 400, lambda e: (
        e.sqs.change_message_visibility_batch(QueueUrl=e.url, Entries=[
            {"Id": "no spaces", "ReceiptHandle": "h", "VisibilityTimeout": 1}]))),
}


@both_protocols
@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_error_code(sqs: Any, queue_url: str, server: RaftMQServer, protocol: str, case: str) -> None:
    expected = CASES[case]
    with pytest.raises(ClientError) as info:
        expected.trigger(Env(sqs, queue_url, server, protocol))
    error = info.value.response["Error"]
    assert error_code(info.value) == expected.code, error
    if expected.status is not None:
        assert http_status(info.value) == expected.status
    assert 400 <= http_status(info.value) < 500
    assert error.get("Message"), "AWS errors always carry a message"
    assert error.get("Type", "Sender") == "Sender"
    assert info.value.response["ResponseMetadata"].get("RequestId")

