"""The SQS service layer over an in-memory replicator: wire params in, AWS-shaped replies and errors out."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from broker.model import errors
from broker.model.commands import ExpireMessages
from broker.model.sqs_model import SqsModel
from broker.notify import Notifier
from broker.service import RequestContext
from broker.sqs.service import SqsConfig, SqsService
from broker.sqs.urls import parse_queue_url
from broker.state_machine import BrokerStateMachine
from tests.unit.fake_replicator import FakeReplicator

ENDPOINT = "http://localhost:4566"
URL = f"{ENDPOINT}/000000000000/q"
CTX = RequestContext(request_id="r", account_id="000000000000", region="eu-west-1", endpoint_url=ENDPOINT,
                     protocol="json", access_key_id="AKIDEXAMPLE")


class Env:
    def __init__(self) -> None:
        self.model = SqsModel()
        self.notifier = Notifier()
        self.rep = FakeReplicator(BrokerStateMachine(self.model, self.notifier))
        self.service = SqsService(self.model, self.rep, self.notifier, SqsConfig(maintenance_interval_s=0.05))

    async def call(self, operation: str, **params: Any) -> dict[str, Any]:
        return await self.service.handle(operation, params, CTX)

    async def queue(self, name: str = "q", **attributes: str) -> str:
        return (await self.call("CreateQueue", QueueName=name, Attributes=attributes))["QueueUrl"]  # type: ignore[no-any-return]


@pytest.fixture
def env() -> Env:
    return Env()


async def test_queue_lifecycle_and_urls(env: Env) -> None:
    assert await env.queue() == URL
    assert await env.queue() == URL
    assert await env.call("GetQueueUrl", QueueName="q") == {"QueueUrl": URL}
    await env.queue("q2")
    assert await env.call("ListQueues") == {"QueueUrls": [URL, URL + "2"]}
    page = await env.call("ListQueues", MaxResults=1)
    assert page["QueueUrls"] == [URL] and page["NextToken"]
    assert await env.call("ListQueues", MaxResults=1, NextToken=page["NextToken"]) == {"QueueUrls": [URL + "2"]}
    assert await env.call("ListQueues", QueueNamePrefix="zz") == {}
    attrs = (await env.call("GetQueueAttributes", QueueUrl=URL, AttributeNames=["QueueArn"]))["Attributes"]
    assert attrs == {"QueueArn": "arn:aws:sqs:eu-west-1:000000000000:q"}
    assert await env.call("GetQueueAttributes", QueueUrl=URL) == {}
    assert await env.call("DeleteQueue", QueueUrl=URL) == {}
    with pytest.raises(errors.QueueDoesNotExist) as exc:
        await env.call("GetQueueUrl", QueueName="q")
    assert exc.value.legacy_code == "AWS.SimpleQueueService.NonExistentQueue"


@pytest.mark.parametrize("url", [
    URL, URL + "/", "https://sqs.us-east-1.amazonaws.com/000000000000/q",
    "https://us-east-1.queue.amazonaws.com/000000000000/q", "/000000000000/q", "http://127.0.0.1:9/queue/q", "q",
])
async def test_every_queue_url_form_reaches_the_queue(env: Env, url: str) -> None:
    await env.queue()
    await env.call("SendMessage", QueueUrl=url, MessageBody="x")
    assert parse_queue_url(url, "000000000000") == ("000000000000", "q")


async def test_bad_urls(env: Env) -> None:
    with pytest.raises(errors.InvalidAddress):
        await env.call("SendMessage", QueueUrl="http://localhost:4566/", MessageBody="x")
    with pytest.raises(errors.MissingParameter):
        await env.call("DeleteQueue")
    with pytest.raises(errors.QueueDoesNotExist):
        await env.call("SendMessage", QueueUrl=f"{ENDPOINT}/000000000000/missing", MessageBody="x")


async def test_send_receive_with_attributes_and_md5s(env: Env) -> None:
    await env.queue()
    sent = await env.call("SendMessage", QueueUrl=URL, MessageBody="hello", MessageAttributes={
        "timestamp": {"DataType": "Number", "StringValue": "1493147359900"},
        "img.png": {"DataType": "Binary", "BinaryValue": b"\x89PNG"},
    }, MessageSystemAttributes={"AWSTraceHeader": {"DataType": "String", "StringValue": "Root=1-abc"}})
    assert sent["MD5OfMessageBody"] == "5d41402abc4b2a76b9719d911017c592"
    assert len(sent["MessageId"]) == 36 and sent["MD5OfMessageAttributes"] and sent["MD5OfMessageSystemAttributes"]
    got = (await env.call("ReceiveMessage", QueueUrl=URL, MessageAttributeNames=["timestamp"],
                          MessageSystemAttributeNames=["All"]))["Messages"]
    (msg,) = got
    assert msg["Body"] == "hello" and msg["MessageId"] == sent["MessageId"] and msg["MD5OfBody"] == sent[
        "MD5OfMessageBody"]
    assert msg["MessageAttributes"] == {"timestamp": {"DataType": "Number", "StringValue": "1493147359900"}}
    assert msg["MD5OfMessageAttributes"] == "235c5c510d26fb653d073faed50ae77c"  # digest of the returned subset
    assert msg["Attributes"]["SenderId"] == "AKIDEXAMPLE" and msg["Attributes"]["ApproximateReceiveCount"] == "1"
    assert msg["Attributes"]["AWSTraceHeader"] == "Root=1-abc"
    assert int(msg["Attributes"]["SentTimestamp"]) <= int(msg["Attributes"]["ApproximateFirstReceiveTimestamp"])
    await env.call("ChangeMessageVisibility", QueueUrl=URL, ReceiptHandle=msg["ReceiptHandle"], VisibilityTimeout=0)
    again = (await env.call("ReceiveMessage", QueueUrl=URL, MessageAttributeNames=["All"],
                            AttributeNames=["ApproximateReceiveCount"]))["Messages"][0]
    assert set(again["MessageAttributes"]) == {"timestamp", "img.png"}
    assert again["MD5OfMessageAttributes"] == sent["MD5OfMessageAttributes"]
    assert again["Attributes"] == {"ApproximateReceiveCount": "2"}
    await env.call("DeleteMessage", QueueUrl=URL, ReceiptHandle=again["ReceiptHandle"])
    await env.call("DeleteMessage", QueueUrl=URL, ReceiptHandle=again["ReceiptHandle"])  # already gone: fine
    assert await env.call("ReceiveMessage", QueueUrl=URL) == {}


async def test_attribute_prefix_selection(env: Env) -> None:
    await env.queue()
    await env.call("SendMessage", QueueUrl=URL, MessageBody="b", MessageAttributes={
        n: {"DataType": "String", "StringValue": n} for n in ("bar.one", "bar.two", "barn", "other")})
    (msg,) = (await env.call("ReceiveMessage", QueueUrl=URL, MessageAttributeNames=["bar.*", "other"]))["Messages"]
    assert sorted(msg["MessageAttributes"]) == ["bar.one", "bar.two", "other"]
    assert "Attributes" not in msg


async def test_send_batch_partial_failures(env: Env) -> None:
    await env.queue(MaximumMessageSize="1024")
    out = await env.call("SendMessageBatch", QueueUrl=URL, Entries=[
        {"Id": "ok", "MessageBody": "fine"},
        {"Id": "badchars", "MessageBody": "bad\x00"},
        {"Id": "toolong", "MessageBody": "x" * 1025},
        {"Id": "baddelay", "MessageBody": "x", "DelaySeconds": 901},
    ])
    assert [s["Id"] for s in out["Successful"]] == ["ok"]
    failed = {f["Id"]: f for f in out["Failed"]}
    assert failed["badchars"]["Code"] == "InvalidMessageContents" and failed["badchars"]["SenderFault"] is True
    assert failed["toolong"]["Code"] == "InvalidParameterValue"
    assert failed["baddelay"]["Code"] == "InvalidParameterValue"
    attrs = await env.call("GetQueueAttributes", QueueUrl=URL, AttributeNames=["ApproximateNumberOfMessages"])
    assert attrs["Attributes"] == {"ApproximateNumberOfMessages": "1"}


@pytest.mark.parametrize(("entries", "error"), [
    ([], errors.EmptyBatchRequest),
    ([{"Id": str(i), "MessageBody": "x"} for i in range(11)], errors.TooManyEntriesInBatchRequest),
    ([{"Id": "a", "MessageBody": "x"}, {"Id": "a", "MessageBody": "y"}], errors.BatchEntryIdsNotDistinct),
    ([{"Id": "a b", "MessageBody": "x"}], errors.InvalidBatchEntryId),
    ([{"Id": "a", "MessageBody": "x" * 600_000}, {"Id": "b", "MessageBody": "y" * 600_000}],
     errors.BatchRequestTooLong),
])
async def test_batch_level_errors_store_nothing(env: Env, entries: list[dict[str, Any]],
                                                error: type[errors.BrokerError]) -> None:
    await env.queue()
    before = env.rep.index
    with pytest.raises(error):
        await env.call("SendMessageBatch", QueueUrl=URL, Entries=entries)
    assert env.rep.index == before


async def test_delete_and_visibility_batches(env: Env) -> None:
    await env.queue()
    await env.call("SendMessageBatch", QueueUrl=URL, Entries=[{"Id": str(i), "MessageBody": str(i)} for i in range(3)])
    msgs = (await env.call("ReceiveMessage", QueueUrl=URL, MaxNumberOfMessages=10))["Messages"]
    handles = [m["ReceiptHandle"] for m in msgs]
    out = await env.call("ChangeMessageVisibilityBatch", QueueUrl=URL, Entries=[
        {"Id": "a", "ReceiptHandle": handles[0], "VisibilityTimeout": 0},
        {"Id": "b", "ReceiptHandle": "junk", "VisibilityTimeout": 10},
        {"Id": "c", "ReceiptHandle": handles[1], "VisibilityTimeout": 43_201},
        {"Id": "d", "ReceiptHandle": handles[2]},
    ])
    assert out["Successful"] == [{"Id": "a"}]
    assert {f["Id"]: f["Code"] for f in out["Failed"]} == {
        "b": "ReceiptHandleIsInvalid", "c": "InvalidParameterValue", "d": "MissingParameter"}
    out = await env.call("DeleteMessageBatch", QueueUrl=URL, Entries=[
        {"Id": "x", "ReceiptHandle": handles[1]}, {"Id": "y", "ReceiptHandle": "junk"}, {"Id": "z"}])
    assert out["Successful"] == [{"Id": "x"}]
    assert {f["Id"]: f["Code"] for f in out["Failed"]} == {"y": "ReceiptHandleIsInvalid", "z": "MissingParameter"}
    with pytest.raises(errors.MessageNotInflight):
        await env.call("ChangeMessageVisibility", QueueUrl=URL, ReceiptHandle=handles[0], VisibilityTimeout=5)
    with pytest.raises(errors.ReceiptHandleIsInvalid):
        await env.call("DeleteMessage", QueueUrl=URL, ReceiptHandle="junk")
    with pytest.raises(errors.MissingParameter):
        await env.call("ChangeMessageVisibility", QueueUrl=URL, ReceiptHandle=handles[2])


@pytest.mark.parametrize(("params", "fragment"), [
    ({"MaxNumberOfMessages": 11}, "MaxNumberOfMessages"),
    ({"MaxNumberOfMessages": 0}, "MaxNumberOfMessages"),
    ({"WaitTimeSeconds": 21}, "WaitTimeSeconds"),
    ({"VisibilityTimeout": -1}, "VisibilityTimeout"),
])
async def test_receive_parameter_errors(env: Env, params: dict[str, Any], fragment: str) -> None:
    await env.queue()
    with pytest.raises(errors.InvalidParameterValue, match=fragment):
        await env.call("ReceiveMessage", QueueUrl=URL, **params)


async def test_invalid_input_changes_nothing(env: Env) -> None:
    await env.queue()
    before = (env.rep.index, {t: dict(rows) for t, rows in env.rep.tables.tables.items()})
    bad_calls: list[tuple[str, dict[str, Any], type[errors.BrokerError]]] = [
        ("CreateQueue", {"QueueName": "bad name"}, errors.InvalidParameterValue),
        ("CreateQueue", {"QueueName": "x", "Attributes": {"VisibilityTimeout": "43201"}}, errors.InvalidAttributeValue),
        ("CreateQueue", {"QueueName": "x", "Attributes": {"Nope": "1"}}, errors.InvalidAttributeName),
        ("SetQueueAttributes", {"QueueUrl": URL, "Attributes": {"DelaySeconds": "901"}}, errors.InvalidAttributeValue),
        ("GetQueueAttributes", {"QueueUrl": URL, "AttributeNames": ["Nope"]}, errors.InvalidAttributeName),
        ("SendMessage", {"QueueUrl": URL, "MessageBody": ""}, errors.MissingParameter),
        ("SendMessage", {"QueueUrl": URL, "MessageBody": "\x01"}, errors.InvalidMessageContents),
        ("SendMessage", {"QueueUrl": URL, "MessageBody": "x", "DelaySeconds": 901}, errors.InvalidParameterValue),
        ("SendMessage", {"QueueUrl": URL, "MessageBody": "x", "MessageDeduplicationId": "d"},
         errors.InvalidParameterValue),
        ("SendMessage", {"QueueUrl": URL, "MessageBody": "x",
                         "MessageAttributes": {"AWS.x": {"DataType": "String", "StringValue": "v"}}},
         errors.InvalidParameterValue),
        ("ListQueues", {"MaxResults": 1001}, errors.InvalidParameterValue),
        ("ListQueues", {"MaxResults": 1, "NextToken": "bogus"}, errors.InvalidParameterValue),
        ("TagQueue", {"QueueUrl": URL, "Tags": {}}, errors.MissingParameter),
        ("UntagQueue", {"QueueUrl": URL, "TagKeys": []}, errors.MissingParameter),
        ("Frobnicate", {}, errors.InvalidAction),
    ]
    for operation, params, error in bad_calls:
        with pytest.raises(error):
            await env.call(operation, **params)
    assert (env.rep.index, env.rep.tables.tables) == before


async def test_create_queue_conflicts_and_fifo(env: Env) -> None:
    await env.queue(VisibilityTimeout="10")
    with pytest.raises(errors.QueueNameExists):
        await env.queue(VisibilityTimeout="11")
    with pytest.raises(errors.InvalidParameterValue):  # a .fifo name needs FifoQueue=true
        await env.call("CreateQueue", QueueName="f.fifo")


async def test_set_attributes_and_tags(env: Env) -> None:
    await env.call("CreateQueue", QueueName="q", tags={"a": "1"})
    await env.call("SetQueueAttributes", QueueUrl=URL, Attributes={"VisibilityTimeout": "7", "Policy": "{}"})
    got = (await env.call("GetQueueAttributes", QueueUrl=URL, AttributeNames=["All"]))["Attributes"]
    assert got["VisibilityTimeout"] == "7" and got["Policy"] == "{}"
    await env.call("TagQueue", QueueUrl=URL, Tags={"b": "2"})
    await env.call("UntagQueue", QueueUrl=URL, TagKeys=["a"])
    assert await env.call("ListQueueTags", QueueUrl=URL) == {"Tags": {"b": "2"}}
    await env.call("UntagQueue", QueueUrl=URL, TagKeys=["b"])
    assert await env.call("ListQueueTags", QueueUrl=URL) == {}


async def test_purge_once_per_minute(env: Env) -> None:
    await env.queue()
    await env.call("SendMessage", QueueUrl=URL, MessageBody="x")
    await env.call("PurgeQueue", QueueUrl=URL)
    with pytest.raises(errors.PurgeQueueInProgress):
        await env.call("PurgeQueue", QueueUrl=URL)
    env.rep.offset_ms += 60_000
    await env.call("PurgeQueue", QueueUrl=URL)


async def test_visibility_timeout_then_redelivery(env: Env) -> None:
    await env.queue(VisibilityTimeout="30")
    await env.call("SendMessage", QueueUrl=URL, MessageBody="x")
    first = (await env.call("ReceiveMessage", QueueUrl=URL, AttributeNames=["All"]))["Messages"][0]
    env.rep.offset_ms += 29_000
    assert await env.call("ReceiveMessage", QueueUrl=URL) == {}
    env.rep.offset_ms += 1_000
    again = (await env.call("ReceiveMessage", QueueUrl=URL, AttributeNames=["All"]))["Messages"][0]
    assert again["MessageId"] == first["MessageId"]
    assert again["Attributes"]["ApproximateReceiveCount"] == "2"
    assert again["Attributes"]["ApproximateFirstReceiveTimestamp"] == first["Attributes"][
        "ApproximateFirstReceiveTimestamp"]


# -- long polling -----------------------------------------------------------------------------------------------


async def test_long_poll_wakes_on_a_send(env: Env) -> None:
    await env.queue()
    loop = asyncio.get_running_loop()
    started = loop.time()
    poll = asyncio.create_task(env.call("ReceiveMessage", QueueUrl=URL, WaitTimeSeconds=10))
    while env.notifier.waiting == 0:  # the poller is parked on the notifier
        await asyncio.sleep(0)
    await env.call("SendMessage", QueueUrl=URL, MessageBody="wake")
    got = await poll
    assert [m["Body"] for m in got["Messages"]] == ["wake"]
    assert loop.time() - started < 1.0


async def test_long_poll_returns_empty_after_the_wait(env: Env) -> None:
    await env.queue(ReceiveMessageWaitTimeSeconds="1")
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await env.call("ReceiveMessage", QueueUrl=URL) == {}  # the queue's default wait applies
    assert 0.9 <= loop.time() - started < 2.0
    started = loop.time()
    assert await env.call("ReceiveMessage", QueueUrl=URL, WaitTimeSeconds=0) == {}
    assert loop.time() - started < 0.5


async def test_long_poll_wakes_when_a_delayed_message_becomes_visible(env: Env) -> None:
    await env.queue()
    await env.call("SendMessage", QueueUrl=URL, MessageBody="later", DelaySeconds=1)
    loop = asyncio.get_running_loop()
    started = loop.time()
    got = await env.call("ReceiveMessage", QueueUrl=URL, WaitTimeSeconds=5)
    assert [m["Body"] for m in got["Messages"]] == ["later"]
    assert 0.9 <= loop.time() - started < 2.0


async def test_long_polls_end_at_shutdown(env: Env) -> None:
    await env.queue()
    loop = asyncio.get_running_loop()
    started = loop.time()
    polls = [asyncio.create_task(env.call("ReceiveMessage", QueueUrl=URL, WaitTimeSeconds=20)) for _ in range(3)]
    while env.notifier.waiting < 3:
        await asyncio.sleep(0)
    env.service.close()
    assert await asyncio.gather(*polls) == [{}, {}, {}]
    assert await env.call("ReceiveMessage", QueueUrl=URL, WaitTimeSeconds=20) == {}
    assert loop.time() - started < 1.0


async def test_long_poll_sees_a_deleted_queue(env: Env) -> None:
    await env.queue()
    poll = asyncio.create_task(env.call("ReceiveMessage", QueueUrl=URL, WaitTimeSeconds=10))
    while env.notifier.waiting == 0:
        await asyncio.sleep(0)
    await env.call("DeleteQueue", QueueUrl=URL)
    with pytest.raises(errors.QueueDoesNotExist):
        await poll


# -- background work --------------------------------------------------------------------------------------------


async def test_maintenance_sweeps_expired_messages(env: Env) -> None:
    await env.queue(MessageRetentionPeriod="60")
    await env.call("SendMessage", QueueUrl=URL, MessageBody="old")
    swept: asyncio.Future[object] = asyncio.get_running_loop().create_future()

    def on_apply(command: object) -> None:
        if isinstance(command, ExpireMessages) and not swept.done():
            swept.set_result(command)

    env.rep.on_apply = on_apply
    stop = asyncio.Event()
    task = asyncio.create_task(env.service.run_maintenance(stop))
    env.rep.offset_ms += 60_000
    await asyncio.wait_for(swept, 5)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert env.model.next_expiry_ms() is None
    attrs = await env.call("GetQueueAttributes", QueueUrl=URL, AttributeNames=["ApproximateNumberOfMessages"])
    assert attrs["Attributes"]["ApproximateNumberOfMessages"] == "0"


async def test_queue_gauges(env: Env) -> None:
    await env.queue()
    await env.call("SendMessageBatch", QueueUrl=URL, Entries=[
        {"Id": "a", "MessageBody": "a"}, {"Id": "b", "MessageBody": "b"}, {"Id": "c", "MessageBody": "c",
                                                                           "DelaySeconds": 60}])
    await env.call("ReceiveMessage", QueueUrl=URL)
    assert list(env.service.queue_gauges()) == [("000000000000", "q", 1, 1, 1)]
