"""Move tasks, FIFO deduplication and receive attempts on the real one-node log and LMDB, across restarts."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from broker.model.commands import MoveMessages, encode
from tests.unit.test_sqs_durable import Node

ENDPOINT = "http://localhost:4566/000000000000/"
ARN = "arn:aws:sqs:us-east-1:000000000000:"


async def test_a_move_task_resumes_after_a_restart_without_loss_or_duplicates(tmp_path: Path) -> None:
    clock = [1_700_000_000.0]
    node = Node(tmp_path, clock)
    node.rep.start()
    await node.call("CreateQueue", QueueName="dlq")
    await node.call("CreateQueue", QueueName="src", Attributes={"RedrivePolicy": json.dumps(
        {"deadLetterTargetArn": ARN + "dlq", "maxReceiveCount": 1})})
    bodies = [f"m{i}" for i in range(25)]
    for start in range(0, 25, 10):
        await node.call("SendMessageBatch", QueueUrl=ENDPOINT + "dlq", Entries=[
            {"Id": str(i), "MessageBody": b} for i, b in enumerate(bodies[start:start + 10])])
    await node.call("StartMessageMoveTask", SourceArn=ARN + "dlq", DestinationArn=ARN + "src",
                    MaxNumberOfMessagesPerSecond=5)
    (task,) = node.model.running_tasks()
    clock[0] += 2  # two seconds of budget at 5/s, but a burst is capped at one second: 5 move
    assert await node.rep.propose_and_wait(encode(MoveMessages(task.task_id))) == 5
    await node.stop()

    for _ in range(10):
        node = Node(tmp_path, clock)
        node.rep.start()
        running = node.model.running_tasks()
        if not running:
            break
        clock[0] += 1
        await node.rep.propose_and_wait(encode(MoveMessages(running[0].task_id)))
        await node.stop()
    (listed,) = (await node.call("ListMessageMoveTasks", SourceArn=ARN + "dlq"))["Results"]
    assert (listed["Status"], listed["ApproximateNumberOfMessagesMoved"]) == ("COMPLETED", 25)
    moved: list[str] = []
    while got := await node.call("ReceiveMessage", QueueUrl=ENDPOINT + "src", MaxNumberOfMessages=10):
        moved.extend(m["Body"] for m in got["Messages"])
    assert Counter(moved) == Counter(bodies)
    assert await node.call("ReceiveMessage", QueueUrl=ENDPOINT + "dlq") == {}
    await node.stop()


async def test_fifo_windows_survive_a_restart(tmp_path: Path) -> None:
    clock = [1_700_000_000.0]
    node = Node(tmp_path, clock)
    node.rep.start()
    url = ENDPOINT + "f.fifo"
    await node.call("CreateQueue", QueueName="f.fifo", Attributes={"FifoQueue": "true"})
    sent = await node.call("SendMessage", QueueUrl=url, MessageBody="x", MessageGroupId="g",
                           MessageDeduplicationId="d")
    got = await node.call("ReceiveMessage", QueueUrl=url, ReceiveRequestAttemptId="a")
    await node.stop()

    node = Node(tmp_path, clock)
    node.rep.start()
    dup = await node.call("SendMessage", QueueUrl=url, MessageBody="y", MessageGroupId="g",
                          MessageDeduplicationId="d")
    assert (dup["MessageId"], dup["SequenceNumber"]) == (sent["MessageId"], sent["SequenceNumber"])
    assert await node.call("ReceiveMessage", QueueUrl=url, ReceiveRequestAttemptId="a") == got
    clock[0] += 301
    fresh = await node.call("SendMessage", QueueUrl=url, MessageBody="y", MessageGroupId="g",
                            MessageDeduplicationId="d")
    assert fresh["MessageId"] != sent["MessageId"]
    await node.stop()
