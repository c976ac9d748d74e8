"""Test harness for the Kinesis service: the real model, service, gateway and SubscribeToShard front end behind a
botocore client.

Proposals are applied at once against ``MemoryTables`` (the durable tables the service reads records from). The
clock starts at real time and moves only when the test moves it, so iterator expiry, retention and per-second
throughput windows are tested without sleeping and without racing the wall clock. botocore serializes every request
and parses every response, so its parsers judge our bytes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urlsplit

import botocore.session
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.client import BaseClient
from botocore.config import Config

from broker.aws.gateway import AwsGateway
from broker.http.types import HttpRequest
from broker.kinesis.config import KinesisConfig
from broker.kinesis.front import SubscribeFront
from broker.kinesis.service import KinesisService
from broker.model.kinesis_commands import Maintain
from broker.model.kinesis_model import KinesisModel
from broker.model.sqs_model import SqsModel
from broker.notify import Notifier
from broker.state_machine import BrokerStateMachine
from tests.unit.fake_replicator import FakeReplicator

ACCOUNT = "123456789012"
ENDPOINT = "http://localhost:4566"


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, *args: Any, **kwargs: Any) -> Iterator[bytes]:
        yield self._body


async def _collect(stream: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in stream])


class Env:
    """Model + service + gateway + a botocore Kinesis client wired together in memory."""

    def __init__(self, config: KinesisConfig | None = None) -> None:
        self.model = KinesisModel()
        self.notifier = Notifier()
        self.sm = BrokerStateMachine(SqsModel(), self.notifier, self.model)
        self.rep = FakeReplicator(self.sm, frozen_clock=True)
        self.config = config or KinesisConfig(account_id=ACCOUNT)
        self.service = KinesisService(self.model, self.rep, self.rep.tables, self.notifier, self.config)
        self.gateway = SubscribeFront(AwsGateway({"kinesis": self.service}, ACCOUNT, "us-east-1"), self.service,
                                      ACCOUNT, "us-east-1")
        self.loop = asyncio.new_event_loop()
        self.client = self.make_client()

    def make_client(self) -> BaseClient:
        session = botocore.session.get_session()
        client = session.create_client("kinesis", region_name="us-east-1", endpoint_url=ENDPOINT,
                                       aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret",
                                       config=Config(retries={"max_attempts": 1}))
        client.meta.events.register_first("before-send.*.*", self._send)
        return client

    def _send(self, request: AWSPreparedRequest, **kwargs: Any) -> AWSResponse:
        url = urlsplit(request.url)
        headers = {k.lower(): (v.decode() if isinstance(v, bytes) else str(v)) for k, v in request.headers.items()}
        headers.setdefault("host", url.netloc)
        body = request.body or b""
        if not isinstance(body, bytes):
            body = body.encode() if isinstance(body, str) else body.read()
        response = self.loop.run_until_complete(
            self.gateway(HttpRequest(request.method, url.path or "/", url.query, headers, body, "127.0.0.1")))
        out = dict(response.headers)
        out["Content-Type"] = response.content_type
        payload = response.body
        if response.stream is not None:  # an event stream: run it to its end (tests keep subscriptions short)
            payload = self.loop.run_until_complete(_collect(response.stream))
        return AWSResponse(request.url, response.status, out, _Raw(payload))

    def maintain(self) -> object:
        """Apply one Maintain at the current (possibly advanced) clock."""
        from broker.model.commands import encode
        return self.loop.run_until_complete(self.rep.propose_and_wait(encode(Maintain())))

    def advance(self, ms: int) -> None:
        self.rep.offset_ms += ms

    def close(self) -> None:
        self.loop.close()


def test_harness_round_trip() -> None:
    env = Env()
    try:
        env.client.create_stream(StreamName="h", ShardCount=1)
        assert env.client.list_streams()["StreamNames"] == ["h"]
    finally:
        env.close()
