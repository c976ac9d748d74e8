"""Dead-letter queues, move tasks and permissions through the SQS service (wire params, AWS errors, the loop)."""

from __future__ import annotations

import asyncio
import json

import pytest

from broker.model import errors
from broker.model.commands import MoveMessages
from broker.sqs.tasks import parse_task_handle, task_handle
from tests.unit.test_sqs_service import ENDPOINT, Env

ARN = "arn:aws:sqs:eu-west-1:000000000000:"  # the test context's region
SRC = f"{ENDPOINT}/000000000000/src"
DLQ = f"{ENDPOINT}/000000000000/dlq"


@pytest.fixture
def env() -> Env:
    return Env()


async def pipe(env: Env, count: object = "1") -> None:
    await env.queue("dlq")
    await env.call("CreateQueue", QueueName="src", Attributes={"RedrivePolicy": json.dumps(
        {"deadLetterTargetArn": ARN + "dlq", "maxReceiveCount": count})})


async def dead_letters(env: Env, n: int) -> None:
    await pipe(env)
    await env.call("SendMessageBatch", QueueUrl=SRC, Entries=[
        {"Id": str(i), "MessageBody": f"m{i}"} for i in range(n)])
    assert len((await env.call("ReceiveMessage", QueueUrl=SRC, MaxNumberOfMessages=10,
                               VisibilityTimeout=0))["Messages"]) == n
    assert await env.call("ReceiveMessage", QueueUrl=SRC) == {}


async def test_redrive_policy_is_normalised_and_validated(env: Env) -> None:
    await pipe(env, count=5)
    got = (await env.call("GetQueueAttributes", QueueUrl=SRC, AttributeNames=["RedrivePolicy"]))["Attributes"]
    assert json.loads(got["RedrivePolicy"]) == {"deadLetterTargetArn": ARN + "dlq", "maxReceiveCount": 5}
    for bad in ("not json", '{"maxReceiveCount": 3}', json.dumps({"deadLetterTargetArn": ARN + "dlq",
                                                                  "maxReceiveCount": 1001}),
                json.dumps({"deadLetterTargetArn": ARN.replace("eu-west-1", "us-east-1") + "dlq",
                            "maxReceiveCount": 1})):
        with pytest.raises(errors.InvalidParameterValue, match="RedrivePolicy"):
            await env.call("SetQueueAttributes", QueueUrl=SRC, Attributes={"RedrivePolicy": bad})
    with pytest.raises(errors.InvalidParameterValue, match="RedriveAllowPolicy"):
        await env.call("SetQueueAttributes", QueueUrl=DLQ, Attributes={"RedriveAllowPolicy": json.dumps(
            {"redrivePermission": "byQueue", "sourceQueueArns": [ARN + f"q{i}" for i in range(11)]})})


async def test_dead_letter_and_source_attribute(env: Env) -> None:
    await dead_letters(env, 1)
    (msg,) = (await env.call("ReceiveMessage", QueueUrl=DLQ, MessageSystemAttributeNames=["All"]))["Messages"]
    assert msg["Body"] == "m0" and msg["Attributes"]["DeadLetterQueueSourceArn"] == ARN + "src"


async def test_list_dead_letter_source_queues_pages(env: Env) -> None:
    await env.queue("dlq")
    for name in ("a", "b", "c"):
        await env.call("CreateQueue", QueueName=name, Attributes={"RedrivePolicy": json.dumps(
            {"deadLetterTargetArn": ARN + "dlq", "maxReceiveCount": 1})})
    assert (await env.call("ListDeadLetterSourceQueues", QueueUrl=DLQ))["queueUrls"] == [
        f"{ENDPOINT}/000000000000/{n}" for n in "abc"]
    page = await env.call("ListDeadLetterSourceQueues", QueueUrl=DLQ, MaxResults=2)
    assert len(page["queueUrls"]) == 2 and page["NextToken"]
    rest = await env.call("ListDeadLetterSourceQueues", QueueUrl=DLQ, MaxResults=2, NextToken=page["NextToken"])
    assert rest == {"queueUrls": [f"{ENDPOINT}/000000000000/c"]}
    with pytest.raises(errors.InvalidParameterValue):
        await env.call("ListDeadLetterSourceQueues", QueueUrl=DLQ, NextToken="bogus!")


async def test_permissions(env: Env) -> None:
    url = await env.queue("q")
    await env.call("AddPermission", QueueUrl=url, Label="l1", AWSAccountIds=["111111111111"],
                   Actions=["SendMessage", "ReceiveMessage"])
    policy = json.loads((await env.call("GetQueueAttributes", QueueUrl=url,
                                        AttributeNames=["Policy"]))["Attributes"]["Policy"])
    assert policy["Statement"][0]["Resource"] == ARN + "q"
    assert policy["Statement"][0]["Action"] == ["SQS:SendMessage", "SQS:ReceiveMessage"]
    with pytest.raises(errors.InvalidParameterValue, match="Already exists"):
        await env.call("AddPermission", QueueUrl=url, Label="l1", AWSAccountIds=["111111111111"],
                       Actions=["SendMessage"])
    with pytest.raises(errors.InvalidParameterValue, match="ActionName"):
        await env.call("AddPermission", QueueUrl=url, Label="l2", AWSAccountIds=["111111111111"],
                       Actions=["CreateQueue"])
    with pytest.raises(errors.OverLimit):
        await env.call("AddPermission", QueueUrl=url, Label="l2", AWSAccountIds=["111111111111"],
                       Actions=["SendMessage"] * 8)
    with pytest.raises(errors.MissingParameter):
        await env.call("AddPermission", QueueUrl=url, Label="l2", Actions=["SendMessage"])
    with pytest.raises(errors.InvalidParameterValue, match="Label"):
        await env.call("AddPermission", QueueUrl=url, Label="bad label", AWSAccountIds=["111111111111"],
                       Actions=["SendMessage"])
    with pytest.raises(errors.InvalidParameterValue, match="can't find label"):
        await env.call("RemovePermission", QueueUrl=url, Label="nope")
    await env.call("RemovePermission", QueueUrl=url, Label="l1")
    assert await env.call("GetQueueAttributes", QueueUrl=url, AttributeNames=["Policy"]) == {}


async def test_move_task_errors(env: Env) -> None:
    await pipe(env)
    with pytest.raises(errors.InvalidParameterValue, match="Dead Letter Queue"):
        await env.call("StartMessageMoveTask", SourceArn=ARN + "src")
    with pytest.raises(errors.ResourceNotFoundException, match="SourceArn"):
        await env.call("StartMessageMoveTask", SourceArn=ARN + "missing")
    with pytest.raises(errors.ResourceNotFoundException, match="DestinationArn"):
        await env.call("StartMessageMoveTask", SourceArn=ARN + "dlq", DestinationArn=ARN + "missing")
    with pytest.raises(errors.InvalidParameterValue, match="MaxNumberOfMessagesPerSecond"):
        await env.call("StartMessageMoveTask", SourceArn=ARN + "dlq", MaxNumberOfMessagesPerSecond=501)
    with pytest.raises(errors.InvalidParameterValue, match="SourceArn"):
        await env.call("StartMessageMoveTask", SourceArn="not-an-arn")
    with pytest.raises(errors.InvalidParameterValue, match="TaskHandle"):
        await env.call("CancelMessageMoveTask", TaskHandle="garbage")
    with pytest.raises(errors.ResourceNotFoundException, match="SourceArn"):
        await env.call("CancelMessageMoveTask", TaskHandle=task_handle(1, ARN + "missing"))
    with pytest.raises(errors.ResourceNotFoundException, match="Task does not exist"):
        await env.call("CancelMessageMoveTask", TaskHandle=task_handle(1, ARN + "dlq"))
    handle = (await env.call("StartMessageMoveTask", SourceArn=ARN + "dlq", MaxNumberOfMessagesPerSecond=1))[
        "TaskHandle"]
    assert parse_task_handle(handle)[1] == ARN + "dlq"
    with pytest.raises(errors.InvalidParameterValue, match="already a task running"):
        await env.call("StartMessageMoveTask", SourceArn=ARN + "dlq")
    (running,) = (await env.call("ListMessageMoveTasks", SourceArn=ARN + "dlq", MaxResults=10))["Results"]
    assert running["Status"] == "RUNNING" and running["TaskHandle"] == handle
    assert running["MaxNumberOfMessagesPerSecond"] == 1 and "DestinationArn" not in running
    assert await env.call("CancelMessageMoveTask", TaskHandle=handle) == {"ApproximateNumberOfMessagesMoved": 0}
    (cancelled,) = (await env.call("ListMessageMoveTasks", SourceArn=ARN + "dlq"))["Results"]
    assert cancelled["Status"] == "CANCELLED" and "TaskHandle" not in cancelled


async def test_maintenance_loop_runs_a_move_task_to_completion(env: Env) -> None:
    await dead_letters(env, 6)
    steps: list[object] = []
    done = asyncio.Event()

    def on_apply(command: object) -> None:
        if isinstance(command, MoveMessages):
            steps.append(command)
            if env.model.move_tasks("000000000000", "dlq")[0].status != "RUNNING":
                done.set()
    env.rep.on_apply = on_apply
    stop = asyncio.Event()
    loop_task = asyncio.create_task(env.service.run_maintenance(stop))
    try:
        await env.call("StartMessageMoveTask", SourceArn=ARN + "dlq", MaxNumberOfMessagesPerSecond=500)
        await asyncio.wait_for(done.wait(), 5)
    finally:
        stop.set()
        await loop_task
    (task,) = (await env.call("ListMessageMoveTasks", SourceArn=ARN + "dlq"))["Results"]
    assert (task["Status"], task["ApproximateNumberOfMessagesMoved"], task["ApproximateNumberOfMessagesToMove"]) \
        == ("COMPLETED", 6, 6)
    back = await env.call("ReceiveMessage", QueueUrl=SRC, MaxNumberOfMessages=10)
    assert sorted(m["Body"] for m in back["Messages"]) == [f"m{i}" for i in range(6)]
