"""FIFO queues through the SQS service: wire validation, SequenceNumber replies, system attributes, attempts."""

from __future__ import annotations

import pytest

from broker.model import errors
from broker.model.commands import ReceiveMessages
from tests.unit.test_sqs_service import ENDPOINT, Env

FURL = f"{ENDPOINT}/000000000000/f.fifo"


@pytest.fixture
def env() -> Env:
    return Env()


async def fifo(env: Env, **attributes: str) -> None:
    await env.call("CreateQueue", QueueName="f.fifo", Attributes={"FifoQueue": "true", **attributes})


async def test_fifo_attribute_validation(env: Env) -> None:
    with pytest.raises(errors.InvalidParameterValue, match="FIFO queue"):
        await env.call("CreateQueue", QueueName="f", Attributes={"FifoQueue": "true"})
    with pytest.raises(errors.InvalidAttributeName):
        await env.call("CreateQueue", QueueName="s", Attributes={"ContentBasedDeduplication": "true"})
    with pytest.raises(errors.InvalidAttributeValue):
        await fifo(env, DeduplicationScope="group")
    with pytest.raises(errors.InvalidAttributeValue):
        await fifo(env, FifoThroughputLimit="perMessageGroupId")
    await fifo(env, ContentBasedDeduplication="True")
    with pytest.raises(errors.InvalidAttributeName):  # FifoQueue can't change after creation
        await env.call("SetQueueAttributes", QueueUrl=FURL, Attributes={"FifoQueue": "false"})
    got = (await env.call("GetQueueAttributes", QueueUrl=FURL, AttributeNames=["All"]))["Attributes"]
    assert got["FifoQueue"] == "true" and got["ContentBasedDeduplication"] == "true"


async def test_fifo_send_rules(env: Env) -> None:
    await fifo(env)
    with pytest.raises(errors.MissingParameter, match="MessageGroupId"):
        await env.call("SendMessage", QueueUrl=FURL, MessageBody="x", MessageDeduplicationId="d")
    with pytest.raises(errors.InvalidParameterValue, match="DelaySeconds is invalid"):
        await env.call("SendMessage", QueueUrl=FURL, MessageBody="x", MessageGroupId="g",
                       MessageDeduplicationId="d", DelaySeconds=5)
    with pytest.raises(errors.InvalidParameterValue, match="ContentBasedDeduplication"):
        await env.call("SendMessage", QueueUrl=FURL, MessageBody="x", MessageGroupId="g")
    with pytest.raises(errors.InvalidParameterValue, match="MessageGroupId"):
        await env.call("SendMessage", QueueUrl=FURL, MessageBody="x", MessageGroupId="a b",
                       MessageDeduplicationId="d")
    standard = await env.queue("s")
    with pytest.raises(errors.InvalidParameterValue, match="MessageDeduplicationId"):
        await env.call("SendMessage", QueueUrl=standard, MessageBody="x", MessageDeduplicationId="d")
    await env.call("SendMessage", QueueUrl=standard, MessageBody="x", MessageGroupId="g")  # fair queues
    got = await env.call("ReceiveMessage", QueueUrl=standard, MessageSystemAttributeNames=["MessageGroupId"])
    assert got["Messages"][0]["Attributes"] == {"MessageGroupId": "g"}


async def test_fifo_send_receive_dedup_and_attempts(env: Env) -> None:
    await fifo(env)
    first = await env.call("SendMessage", QueueUrl=FURL, MessageBody="x", MessageGroupId="g",
                           MessageDeduplicationId="d", DelaySeconds=0)
    assert len(first["SequenceNumber"]) == 20
    dup = await env.call("SendMessage", QueueUrl=FURL, MessageBody="y", MessageGroupId="g",
                         MessageDeduplicationId="d")
    assert (dup["MessageId"], dup["SequenceNumber"]) == (first["MessageId"], first["SequenceNumber"])
    batch = await env.call("SendMessageBatch", QueueUrl=FURL, Entries=[
        {"Id": "1", "MessageBody": "z", "MessageGroupId": "g", "MessageDeduplicationId": "e"},
        {"Id": "2", "MessageBody": "w", "MessageDeduplicationId": "f"}])
    assert [s["Id"] for s in batch["Successful"]] == ["1"] and batch["Failed"][0]["Code"] == "MissingParameter"
    assert int(batch["Successful"][0]["SequenceNumber"]) > int(first["SequenceNumber"])
    got = await env.call("ReceiveMessage", QueueUrl=FURL, MaxNumberOfMessages=10, AttributeNames=["All"],
                         ReceiveRequestAttemptId="r1")
    assert [m["Body"] for m in got["Messages"]] == ["x", "z"]
    a = got["Messages"][0]["Attributes"]
    assert (a["MessageGroupId"], a["MessageDeduplicationId"], a["SequenceNumber"]) == ("g", "d",
                                                                                       first["SequenceNumber"])
    again = await env.call("ReceiveMessage", QueueUrl=FURL, MaxNumberOfMessages=10, AttributeNames=["All"],
                           ReceiveRequestAttemptId="r1")
    assert again == got  # the retry gets the same messages and receipt handles, though they are in flight
    assert await env.call("ReceiveMessage", QueueUrl=FURL, ReceiveRequestAttemptId="r2") == {}


async def test_a_stale_attempt_id_long_polls_instead_of_spinning(env: Env) -> None:
    await fifo(env, ContentBasedDeduplication="true")
    await env.call("SendMessage", QueueUrl=FURL, MessageBody="x", MessageGroupId="g")
    (msg,) = (await env.call("ReceiveMessage", QueueUrl=FURL, ReceiveRequestAttemptId="a"))["Messages"]
    await env.call("DeleteMessage", QueueUrl=FURL, ReceiptHandle=msg["ReceiptHandle"])
    receives: list[object] = []
    env.rep.on_apply = lambda command: receives.append(command) if isinstance(command, ReceiveMessages) else None
    got = await env.call("ReceiveMessage", QueueUrl=FURL, ReceiveRequestAttemptId="a", WaitTimeSeconds=1)
    assert got == {} and len(receives) == 1  # one proposal for the retry, then an idle wait
