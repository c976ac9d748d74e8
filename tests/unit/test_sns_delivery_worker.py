"""The HTTP delivery worker against a real local endpoint and an in-memory replicator: only a leader sends, every
attempt is recorded as a command, and the minimal HTTP client reads status codes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from broker.model import commands
from broker.model.sns_commands import CreateTopic, DeliveryOutcome, Publish, PublishEntry, SetSigningKey, Subscribe
from broker.model.sns_envelope import iso_timestamp, string_to_sign
from broker.model.sns_model import SnsModel
from broker.model.sqs_model import SqsModel
from broker.notify import Notifier
from broker.sns import http_client
from broker.sns.delivery import DeliveryWorker
from broker.sns.keys import SigningKeys
from broker.sns.signing import generate_key_pair, verify
from broker.state_machine import BrokerStateMachine
from cluster.api import EntryMeta
from storage.changes import MemoryTables

TOPIC = "arn:aws:sns:us-east-1:000000000000:t"
KEY_PAIR = generate_key_pair()


class MemoryReplicator:
    """Applies each proposal at once, like a one-node log without disk."""

    def __init__(self, machine: BrokerStateMachine) -> None:
        self.machine = machine
        self.tables = MemoryTables()
        self.index = 0
        self.ts = 1_700_000_000_000
        self.proposed: list[commands.Command] = []

    async def propose_and_wait(self, data: bytes) -> object:
        self.index += 1
        self.proposed.append(commands.decode(data))
        reply = self.machine.apply(EntryMeta(self.index, 1, self.ts), data, self.tables)
        self.machine.flush_rows(self.tables)
        return reply

    async def read_barrier(self) -> None:
        return None

    def now_ms(self) -> int:
        return self.ts


@dataclass
class Endpoint:
    statuses: list[int]
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)


@pytest.fixture
async def endpoint() -> AsyncIterator[tuple[Endpoint, str]]:
    state = Endpoint(statuses=[])

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode().split("\r\n")[1:]
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines if line)}
        body = await reader.readexactly(int(headers["content-length"]))
        state.requests.append((headers, body))
        status = state.statuses.pop(0) if state.statuses else 200
        writer.write(f"HTTP/1.1 {status} X\r\nContent-Length: 0\r\n\r\n".encode())
        await writer.drain()
        writer.close()
        state.arrived.set()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield state, f"http://127.0.0.1:{port}/hook"
    finally:
        server.close()
        await server.wait_closed()


async def _setup(url: str) -> tuple[MemoryReplicator, SnsModel, SigningKeys]:
    sns = SnsModel(SqsModel())
    rep = MemoryReplicator(BrokerStateMachine(sns.sqs, Notifier(), sns))
    await rep.propose_and_wait(commands.encode(SetSigningKey(*KEY_PAIR)))
    await rep.propose_and_wait(commands.encode(CreateTopic(TOPIC)))
    await rep.propose_and_wait(commands.encode(Subscribe(TOPIC, f"{TOPIC}:s", "http", url, "0", (), None, "")))
    entry = PublishEntry("e", "m1", "hello", None, (), iso_timestamp(rep.ts), "", "1")
    await rep.propose_and_wait(commands.encode(Publish(TOPIC, "http://broker", (entry,))))
    return rep, sns, SigningKeys(sns, rep)


async def test_a_follower_sends_nothing_and_a_leader_sends_signed(endpoint: tuple[Endpoint, str]) -> None:
    state, url = endpoint
    rep, sns, keys = await _setup(url)
    leader = False
    worker = DeliveryWorker(sns, rep, keys.signer, lambda: leader, poll_s=0.05)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        await asyncio.sleep(0.2)  # several polls as a follower
        assert state.requests == []
        leader = True
        worker.kick()
        await asyncio.wait_for(state.arrived.wait(), 5)
        headers, body = state.requests[0]
        doc = json.loads(body)
        assert headers["x-amz-sns-message-type"] == "Notification"
        assert headers["x-amz-sns-subscription-arn"] == f"{TOPIC}:s"
        assert verify(KEY_PAIR[1], string_to_sign(doc), doc["Signature"])
        while sns.deliveries:
            await asyncio.sleep(0.01)  # the outcome command follows the response
    finally:
        stop.set()
        await task
    outcomes = [c for c in rep.proposed if isinstance(c, DeliveryOutcome)]
    assert [(c.attempt, c.delivered) for c in outcomes] == [(0, True)]


async def test_a_failed_attempt_is_recorded_and_scheduled(endpoint: tuple[Endpoint, str]) -> None:
    state, url = endpoint
    state.statuses = [500]
    rep, sns, keys = await _setup(url)
    [delivery] = sns.deliveries.values()
    assert await DeliveryWorker(sns, rep, keys.signer).send(delivery) is False
    assert await DeliveryWorker(sns, rep, keys.signer).send(delivery) is True


async def test_http_client_reports_status_and_transport_errors(endpoint: tuple[Endpoint, str]) -> None:
    state, url = endpoint
    state.statuses = [404]
    assert await http_client.post(url, b"x", {"A": "b"}) == 404
    assert state.requests[0][0]["a"] == "b" and state.requests[0][1] == b"x"
    with pytest.raises(OSError):
        await http_client.post("http://127.0.0.1:1/", b"", {}, timeout=2)
