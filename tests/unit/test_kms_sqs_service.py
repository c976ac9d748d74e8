"""SQS server-side encryption in the service's data path: sealed before proposing, opened on receive.

The fake replicator records every proposed command, so the tests see exactly what would reach the Raft log.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os

import pytest

from broker.kms.keyring import Keyring, parse_keyring
from broker.kms.sealer import SQS_MANAGED, TEXT_PREFIX, Sealer
from broker.model import errors
from broker.model.commands import SendMessages
from broker.sqs.messages import plain_send_entries
from broker.sqs.service import SqsConfig, SqsService
from tests.unit.test_sqs_service import CTX, ENDPOINT, Env

KEY_ID = "4f1c2d9e-7a33-4c61-9d0e-2b8f6a1c5e70"
OFF_ID = "0b7e8a51-2c4d-4e6f-8a9b-1c2d3e4f5a6b"
MATERIAL = os.urandom(32)
ARN = "arn:aws:sqs:eu-west-1:000000000000:"


def _ring(material: bytes = MATERIAL) -> Keyring:
    return parse_keyring({"keys": [
        {"id": KEY_ID, "aliases": ["alias/orders"], "versions": [base64.b64encode(material).decode()]},
        {"id": OFF_ID, "aliases": ["alias/off"], "enabled": False, "versions": [base64.b64encode(material).decode()]},
    ]})


class KmsEnv(Env):
    def __init__(self, material: bytes = MATERIAL) -> None:
        super().__init__()
        self.root: list[bytes] = []
        self.root_requests = 0
        self.logged: list[SendMessages] = []
        self.rep.on_apply = lambda cmd: self.logged.append(cmd) if isinstance(cmd, SendMessages) else None
        self.sealer = Sealer(_ring(material), {SQS_MANAGED: lambda: self.root[0] if self.root else None})
        self.service = SqsService(self.model, self.rep, self.notifier, SqsConfig(maintenance_interval_s=0.05),
                                  sealer=self.sealer, ensure_root=self.make_root)

    async def make_root(self) -> None:
        self.root_requests += 1
        self.root.append(b"replicated cluster secret")

    def logged_bodies(self) -> list[str]:
        return [e.body for cmd in self.logged for e in cmd.entries]


@pytest.fixture
def env() -> KmsEnv:
    return KmsEnv()


async def _receive(env: Env, url: str, **params: object) -> list[dict[str, object]]:
    reply = await env.call("ReceiveMessage", QueueUrl=url, MaxNumberOfMessages=10, **params)
    messages: list[dict[str, object]] = reply.get("Messages", [])
    return messages


async def test_sse_by_default_seals_before_proposing_and_opens_on_receive(env: KmsEnv) -> None:
    url = await env.queue("sse")
    sent = await env.call("SendMessage", QueueUrl=url, MessageBody="top secret")
    assert sent["MD5OfMessageBody"] == hashlib.md5(b"top secret").hexdigest()
    (logged,) = env.logged_bodies()
    assert logged.startswith(TEXT_PREFIX) and "top secret" not in logged
    assert env.root_requests == 1  # the managed key's root was replicated on first use
    (got,) = await _receive(env, url)
    assert got["Body"] == "top secret" and got["MD5OfBody"] == sent["MD5OfMessageBody"]
    await env.call("SendMessage", QueueUrl=url, MessageBody="again")
    assert env.root_requests == 1


async def test_queues_without_sse_stay_in_clear(env: KmsEnv) -> None:
    url = await env.queue("plain", SqsManagedSseEnabled="false")
    await env.call("SendMessageBatch", QueueUrl=url, Entries=[{"Id": "a", "MessageBody": "one"},
                                                              {"Id": "b", "MessageBody": "two"}])
    assert env.logged_bodies() == ["one", "two"]
    assert env.root_requests == 0


async def test_kms_key_of_the_key_file_and_its_failures(env: KmsEnv) -> None:
    url = await env.queue("kms", KmsMasterKeyId="alias/orders")
    await env.call("SendMessage", QueueUrl=url, MessageBody="by key file")
    assert KEY_ID not in env.logged_bodies()[0] and env.root_requests == 0
    assert [m["Body"] for m in await _receive(env, url)] == ["by key file"]
    for name, key, code in (("nope", "alias/nope", "KmsNotFound"), ("off", "alias/off", "KmsDisabled")):
        bad = await env.queue(name, KmsMasterKeyId=key)
        with pytest.raises(errors.BrokerError) as info:
            await env.call("SendMessage", QueueUrl=bad, MessageBody="x")
        assert (info.value.code, info.value.status) == (code, 400)
    assert len(env.logged) == 1  # failed sends proposed nothing


async def test_missing_queue_proposes_nothing(env: KmsEnv) -> None:
    with pytest.raises(errors.QueueDoesNotExist):
        await env.call("SendMessage", QueueUrl=f"{ENDPOINT}/000000000000/none", MessageBody="x")
    assert env.logged == []


async def test_size_limit_applies_to_the_plaintext(env: KmsEnv) -> None:
    url = await env.queue("small", MaximumMessageSize="1024")
    await env.call("SendMessage", QueueUrl=url, MessageBody="x" * 1024)  # sealed it is longer: still accepted
    with pytest.raises(errors.InvalidParameterValue):
        await env.call("SendMessage", QueueUrl=url, MessageBody="x" * 1025)


async def test_fifo_content_based_deduplication_hashes_the_plaintext(env: KmsEnv) -> None:
    url = await env.queue("f.fifo", FifoQueue="true", ContentBasedDeduplication="true")
    first = await env.call("SendMessage", QueueUrl=url, MessageBody="same", MessageGroupId="g")
    again = await env.call("SendMessage", QueueUrl=url, MessageBody="same", MessageGroupId="g")
    assert again["MessageId"] == first["MessageId"]
    (got,) = await _receive(env, url, AttributeNames=["MessageDeduplicationId"])
    assert got["Attributes"] == {"MessageDeduplicationId": hashlib.sha256(b"same").hexdigest()}
    strict = await env.queue("s.fifo", FifoQueue="true")
    with pytest.raises(errors.InvalidParameterValue, match="ContentBasedDeduplication"):
        await env.call("SendMessage", QueueUrl=strict, MessageBody="x", MessageGroupId="g")


async def test_dead_lettered_messages_stay_sealed_and_open_in_a_clear_dlq(env: KmsEnv) -> None:
    dlq = await env.queue("dlq", SqsManagedSseEnabled="false")
    src = (await env.call("CreateQueue", QueueName="src", Attributes={
        "KmsMasterKeyId": "alias/orders",
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": ARN + "dlq", "maxReceiveCount": 1})}))["QueueUrl"]
    await env.call("SendMessage", QueueUrl=src, MessageBody="poison")
    assert len(await _receive(env, src, VisibilityTimeout=0)) == 1
    assert await _receive(env, src) == []  # moved to the DLQ, body as stored (sealed under alias/orders)
    assert [m["Body"] for m in await _receive(env, dlq)] == ["poison"]


async def test_a_message_that_cannot_be_opened_fails_the_receive_and_is_not_lost() -> None:
    writer = KmsEnv()
    url = await writer.queue("kms", KmsMasterKeyId="alias/orders", VisibilityTimeout="0")
    await writer.call("SendMessage", QueueUrl=url, MessageBody="kept")
    wrong = SqsService(writer.model, writer.rep, writer.notifier, sealer=Sealer(_ring(os.urandom(32))))
    keyless = SqsService(writer.model, writer.rep, writer.notifier, sealer=Sealer())
    for service, code in ((wrong, "KmsInvalidState"), (keyless, "KmsNotFound")):
        with pytest.raises(errors.BrokerError) as info:
            await service.handle("ReceiveMessage", {"QueueUrl": url}, CTX)
        assert info.value.code == code
    assert [m["Body"] for m in await _receive(writer, url)] == ["kept"]



async def _sse_attributes(env: Env, url: str) -> dict[str, str]:
    got = await env.call("GetQueueAttributes", QueueUrl=url, AttributeNames=["All"])
    attributes: dict[str, str] = got["Attributes"]
    return {k: v for k, v in attributes.items() if k in ("KmsMasterKeyId", "SqsManagedSseEnabled")}


async def test_sse_kms_and_sse_sqs_are_one_or_the_other(env: KmsEnv) -> None:
    with pytest.raises(errors.InvalidAttributeValue, match="one type of server-side encryption"):
        await env.queue("both", KmsMasterKeyId="alias/orders", SqsManagedSseEnabled="true")
    url = await env.queue("q", KmsMasterKeyId="alias/orders")
    assert await _sse_attributes(env, url) == {"KmsMasterKeyId": "alias/orders", "SqsManagedSseEnabled": "false"}
    await env.call("SetQueueAttributes", QueueUrl=url, Attributes={"SqsManagedSseEnabled": "true"})
    assert await _sse_attributes(env, url) == {"SqsManagedSseEnabled": "true"}
    await env.call("SendMessage", QueueUrl=url, MessageBody="managed now")
    assert env.root_requests == 1  # sealed with the SQS-managed key, not alias/orders
    await env.call("SetQueueAttributes", QueueUrl=url, Attributes={"KmsMasterKeyId": "alias/orders"})
    await env.call("SetQueueAttributes", QueueUrl=url, Attributes={"KmsMasterKeyId": ""})
    assert await _sse_attributes(env, url) == {"SqsManagedSseEnabled": "true"}
    assert [m["Body"] for m in await _receive(env, url)] == ["managed now"]


async def test_stored_bodies_are_what_the_queue_keeps_and_send_them_as_built(env: KmsEnv) -> None:
    """The gRPC API's batch path: bodies sealed once, entries built with them, and sent without sealing again."""
    managed, keyed = await env.queue("sse"), await env.queue("kms", KmsMasterKeyId="alias/orders")
    plain = await env.queue("plain", SqsManagedSseEnabled="false")
    for url, name in ((managed, "sse"), (keyed, "kms")):
        stored = await env.service.stored_bodies("000000000000", name, ["one", "two"])
        assert stored is not None and all(s.startswith(TEXT_PREFIX) for s in stored)
        assert env.sealer.open_texts(stored) == ["one", "two"]
        await env.service.send_entries("000000000000", name, "000000000000",
                                       plain_send_entries(["one", "two"], stored), sealed=True)
        assert sorted(m["Body"] for m in await _receive(env, url)) == ["one", "two"]
    assert env.root_requests == 1  # the managed key's root was made on its first use
    assert await env.service.stored_bodies("000000000000", "plain", ["one"]) is None
    await env.service.send_entries("000000000000", "plain", "000000000000", plain_send_entries(["one"]), sealed=True)
    assert env.logged_bodies()[-1] == "one" and [m["Body"] for m in await _receive(env, plain)] == ["one"]
    with pytest.raises(errors.QueueDoesNotExist):
        await env.service.stored_bodies("000000000000", "none", ["x"])
    with pytest.raises(errors.BrokerError) as info:
        await env.service.stored_bodies("000000000000", (await env.queue("off", KmsMasterKeyId="alias/off"))
                                        .rsplit("/", 1)[1], ["x"])
    assert info.value.code == "KmsDisabled"


async def test_a_node_without_a_sealer_stores_bodies_as_they_are() -> None:
    env = Env()  # no sealer: SqsManagedSseEnabled queues keep bodies in clear, as sending them always did
    url = await env.queue("sse")
    assert await env.service.stored_bodies("000000000000", "sse", ["one"]) is None
    await env.service.send_entries("000000000000", "sse", "000000000000", plain_send_entries(["one"]), sealed=True)
    assert [m["Body"] for m in await _receive(env, url)] == ["one"]
