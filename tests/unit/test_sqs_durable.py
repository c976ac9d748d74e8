"""The SQS service on the real one-node log and LMDB: acknowledged messages survive a restart exactly once."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from broker.model.sqs_model import SqsModel
from broker.notify import Notifier
from broker.service import RequestContext
from broker.sqs.service import SqsService
from broker.state_machine import BrokerStateMachine
from cluster.local import LocalReplicator
from storage.lmdb_store import LmdbStore

CTX = RequestContext(request_id="r", account_id="000000000000", region="us-east-1",
                     endpoint_url="http://localhost:4566", protocol="json")
URL = "http://localhost:4566/000000000000/q"


class Node:
    def __init__(self, path: Path, clock: list[float]) -> None:
        self.store = LmdbStore(str(path))
        self.model = SqsModel()
        self.notifier = Notifier()
        self.rep = LocalReplicator(self.store, BrokerStateMachine(self.model, self.notifier), clock=lambda: clock[0])
        self.service = SqsService(self.model, self.rep, self.notifier)

    async def call(self, operation: str, **params: Any) -> dict[str, Any]:
        return await self.service.handle(operation, params, CTX)

    async def stop(self) -> None:
        self.service.close()
        await self.rep.stop()
        self.store.close()


async def receive_all(node: Node) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while True:
        got = await node.call("ReceiveMessage", QueueUrl=URL, MaxNumberOfMessages=10, AttributeNames=["All"])
        if not got:
            return out
        out.extend(got["Messages"])


async def test_restart_keeps_every_acknowledged_message_once(tmp_path: Path) -> None:
    clock = [1_700_000_000.0]
    node = Node(tmp_path, clock)
    node.rep.start()
    await node.call("CreateQueue", QueueName="q", Attributes={"VisibilityTimeout": "30"})
    batches = [[{"Id": str(i), "MessageBody": f"b{b}-{i}"} for i in range(10)] for b in range(20)]
    replies = await asyncio.gather(*(node.call("SendMessageBatch", QueueUrl=URL, Entries=e) for e in batches))
    assert all(len(r["Successful"]) == 10 for r in replies)
    in_flight = (await node.call("ReceiveMessage", QueueUrl=URL, MaxNumberOfMessages=10))["Messages"]
    await node.stop()

    node = Node(tmp_path, clock)
    node.rep.start()
    attrs = (await node.call("GetQueueAttributes", QueueUrl=URL, AttributeNames=["All"]))["Attributes"]
    assert (attrs["ApproximateNumberOfMessages"], attrs["ApproximateNumberOfMessagesNotVisible"]) == ("190", "10")
    clock[0] += 1
    visible = await receive_all(node)
    expected = {e["MessageBody"] for batch in batches for e in batch} - {m["Body"] for m in in_flight}
    assert sorted(m["Body"] for m in visible) == sorted(expected)
    clock[0] += 29  # the first ten's 30 s are over; the 190 received a second later stay hidden
    again = await receive_all(node)
    assert sorted(m["Body"] for m in again) == sorted(m["Body"] for m in in_flight)
    assert {m["Attributes"]["ApproximateReceiveCount"] for m in again} == {"2"}
    await node.call("DeleteMessageBatch", QueueUrl=URL,
                    Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(again)])
    await node.stop()

    node = Node(tmp_path, clock)
    node.rep.start()
    clock[0] += 1
    assert len(await receive_all(node)) == 190  # the deleted ten stay deleted; the rest time out and return
    await node.stop()
