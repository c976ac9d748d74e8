"""The v1 gRPC API of a real ``raftmq serve --credentials``: signed calls work for every service; bad tokens are
UNAUTHENTICATED with the HTTP APIs' codes; IAM policies, account namespaces and queue policies hold as over HTTP."""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from broker.auth.grpc_auth import sign
from broker.client import AsyncClient, Client, RaftMQError
from broker.client.groups import AsyncGroups
from proto.broker.v1 import queues_pb2
from tests.integration.server import RaftMQServer, serving

queues_grpc: Any = importlib.import_module("proto.broker.v1.queues_pb2_grpc")

A, B = "111111111111", "222222222222"
ROOT_A = ("AKIAROOTA00000000001", "root-a-secret")
ROOT_B = ("AKIAROOTB00000000001", "root-b-secret")
CAROL = ("AKIACAROL000000001", "carol-secret")  # may do anything to queues but send
NOBODY = ("AKIANOBODY00000001", "nobody-secret")  # no policy at all
NO_SEND = json.dumps({"Statement": [{"Effect": "Allow", "Action": "sqs:*", "Resource": "*"},
                                    {"Effect": "Deny", "Action": "sqs:SendMessage", "Resource": "*"}]})
CREDENTIALS = {"accounts": [
    {"id": A, "root_keys": [{"id": ROOT_A[0], "secret": ROOT_A[1]}], "users": [
        {"name": "carol", "policies": [NO_SEND], "keys": [{"id": CAROL[0], "secret": CAROL[1]}]},
        {"name": "nobody", "keys": [{"id": NOBODY[0], "secret": NOBODY[1]}]}]},
    {"id": B, "root_keys": [{"id": ROOT_B[0], "secret": ROOT_B[1]}]},
]}


class SecuredServer(RaftMQServer):
    """``raftmq serve --credentials FILE --account-id A`` (A operates the node)."""

    def __init__(self, data_dir: Path, credentials: Path) -> None:
        super().__init__(data_dir, account_id=A)
        self.credentials = credentials

    def args(self) -> list[str]:
        return [*super().args(), "--credentials", str(self.credentials)]


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecuredServer]:
    base = tmp_path_factory.mktemp("raftmq-grpc-auth")
    credentials = base / "credentials.json"
    credentials.write_text(json.dumps(CREDENTIALS))
    with serving(SecuredServer(base / "data", credentials)) as srv:
        yield srv


def address(server: RaftMQServer) -> str:
    assert server.ready is not None
    return f"127.0.0.1:{server.ready.grpc_port}"


@pytest.fixture
async def clients(secured: SecuredServer, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[dict[str, AsyncClient]]:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)  # "none" must really send no token
    made = {name: AsyncClient(address(secured), retries=1, credentials=key)
            for name, key in (("a", ROOT_A), ("b", ROOT_B), ("carol", CAROL), ("nobody", NOBODY),
                              ("wrong", (ROOT_A[0], "not-the-secret")), ("unknown", ("AKIAUNKNOWN0000001", "x")),
                              ("none", None))}
    try:
        yield made
    finally:
        for client in made.values():
            await client.close()


async def refused(call: Any) -> RaftMQError:
    with pytest.raises(RaftMQError) as info:
        await call
    return info.value


async def test_a_signed_caller_uses_every_service(clients: dict[str, AsyncClient]) -> None:
    a = clients["a"]
    await a.create_queue("every")
    assert [r.HasField("error") for r in await a.send("every", ["one", "two"])] == [False, False]
    async with a.consumer("every", max_batch=2) as consumer:  # the Consume stream is authorized too
        bodies = set()
        async for message in consumer:
            bodies.add(message.body)
            await message.ack()
            if len(bodies) == 2:
                break
    assert bodies == {"one", "two"}
    await a.streams.create("every-stream")
    shard = (await a.streams.put("every-stream", [(b"r1", "k")]))[0].shard_id
    assert [r.data for r in (await a.streams.read("every-stream", shard)).records] == [b"r1"]
    assignment = await AsyncGroups(a).join("every-stream", "workers", "m1")
    assert [s.shard_id for s in assignment.shards] == [shard]
    assert await AsyncGroups(a).list_groups("every-stream") == ["workers"]
    error = await refused(AsyncGroups(clients["carol"]).join("every-stream", "workers", "m2"))  # sqs:* only
    assert (error.status, error.code) == (grpc.StatusCode.PERMISSION_DENIED, "AccessDenied")
    arn = await a.topics.create("every-topic")
    assert arn == f"arn:aws:sns:us-east-1:{A}:every-topic"
    assert all(r.message_id for r in await a.topics.publish("every-topic", ["hello"]))
    status = await a.cluster_status()
    assert status.role == "leader"


@pytest.mark.parametrize(("who", "code"), [
    ("wrong", "SignatureDoesNotMatch"), ("unknown", "InvalidClientTokenId"), ("none", "MissingAuthenticationToken")])
async def test_bad_credentials_are_unauthenticated(clients: dict[str, AsyncClient], who: str, code: str) -> None:
    error = await refused(clients[who].list_queues())
    assert (error.status, error.code) == (grpc.StatusCode.UNAUTHENTICATED, code)
    error = await refused(clients[who].cluster_status())
    assert (error.status, error.code) == (grpc.StatusCode.UNAUTHENTICATED, code)


async def test_an_expired_or_malformed_token_is_unauthenticated_and_health_needs_none(secured: SecuredServer) -> None:
    method = "/raftmq.broker.v1.Queues/ListQueues"
    stale = sign(*ROOT_A, "us-east-1", method, datetime.now(UTC) - timedelta(minutes=20))
    malformed = (("authorization", "RAFTMQ-HMAC-SHA256 Credential=AKIAROOTA00000000001"),
                 ("x-amz-date", "20261128T000000Z"))
    async with grpc.aio.insecure_channel(address(secured)) as channel:
        stub = queues_grpc.QueuesStub(channel)
        for metadata, code in ((stale, "RequestExpired"), (malformed, "IncompleteSignature")):
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await stub.ListQueues(queues_pb2.ListQueuesRequest(), metadata=metadata, timeout=10)
            error = RaftMQError.from_rpc(info.value)
            assert (error.status, error.code) == (grpc.StatusCode.UNAUTHENTICATED, code)
        health = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
        assert health.status == health_pb2.HealthCheckResponse.SERVING  # load balancers need no key


async def test_a_policy_denying_send_refuses_send_but_not_receive(clients: dict[str, AsyncClient]) -> None:
    a, carol = clients["a"], clients["carol"]
    await a.create_queue("carols")
    await a.send("carols", ["from root"])
    error = await refused(carol.send("carols", ["from carol"]))
    assert (error.status, error.code) == (grpc.StatusCode.PERMISSION_DENIED, "AccessDenied")
    assert "sqs:SendMessage" in error.message and "explicit deny" in error.message
    assert [m.body for m in await carol.receive("carols", 10, wait_seconds=1)] == ["from root"]
    error = await refused(clients["nobody"].receive("carols"))
    assert (error.status, error.code) == (grpc.StatusCode.PERMISSION_DENIED, "AccessDenied")
    async with clients["nobody"].consumer("carols") as consumer:
        error = await refused(anext(consumer))
    assert error.code == "AccessDenied"


async def test_admin_needs_the_operators_account(clients: dict[str, AsyncClient]) -> None:
    error = await refused(clients["b"].cluster_status())  # a tenant's root is not the cluster's operator
    assert (error.status, error.code) == (grpc.StatusCode.PERMISSION_DENIED, "AccessDenied")
    assert (await clients["a"].cluster_status()).node_id


async def test_two_accounts_each_own_a_queue_named_orders(clients: dict[str, AsyncClient]) -> None:
    a, b = clients["a"], clients["b"]
    await a.create_queue("orders")
    await b.create_queue("orders")
    await a.send("orders", ["for a"])
    await b.send("orders", ["for b"])
    assert [m.body for m in await a.receive("orders", 10, wait_seconds=1)] == ["for a"]
    assert [m.body for m in await b.receive("orders", 10, wait_seconds=1)] == ["for b"]
    await a.create_queue("only-a")
    assert "only-a" in await a.list_queues() and "only-a" not in await b.list_queues()
    lists = await asyncio.gather(*(client.list_queues() for client in [a, b] * 20))  # concurrent calls
    assert all(("only-a" in names) == (i % 2 == 0) for i, names in enumerate(lists))  # no caller leaks
    attributes = await b.get_queue_attributes("orders", ["QueueArn"])
    assert attributes["QueueArn"] == f"arn:aws:sqs:us-east-1:{B}:orders"


async def test_a_queue_policy_grants_another_account(clients: dict[str, AsyncClient]) -> None:
    a, b = clients["a"], clients["b"]
    await a.create_queue("shared")
    other = queues_pb2.QueueRef(queue="shared", account=A)

    async def b_gets_a_queue() -> Any:
        return await b.retrying(lambda stub: stub.GetQueue(other, timeout=10))

    error = await refused(b_gets_a_queue())
    assert (error.status, error.code) == (grpc.StatusCode.PERMISSION_DENIED, "AccessDenied")
    assert "no resource-based policy allows" in error.message
    policy = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": B}, "Action": ["sqs:GetQueueUrl", "sqs:PurgeQueue"],
        "Resource": f"arn:aws:sqs:us-east-1:{A}:shared"}]}
    await a.set_queue_attributes("shared", {"Policy": json.dumps(policy)})
    ref: queues_pb2.QueueRef = await b_gets_a_queue()
    assert (ref.queue, ref.account) == ("shared", A)
    await b.retrying(lambda stub: stub.PurgeQueue(other, timeout=10))
    error = await refused(b.retrying(lambda stub: stub.DeleteQueue(other, timeout=10)))  # not granted
    assert error.code == "AccessDenied"


def test_the_threaded_client_signs_and_keys_come_from_the_aws_environment(
        secured: SecuredServer, monkeypatch: pytest.MonkeyPatch) -> None:
    with Client(address(secured), retries=1, credentials=ROOT_B) as client:
        client.create_queue("threaded")
        assert "threaded" in client.list_queues()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ROOT_B[0])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", ROOT_B[1])
    with Client(address(secured), retries=1) as client:
        assert "threaded" in client.list_queues()
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
    with Client(address(secured), retries=1) as client, pytest.raises(RaftMQError) as info:
        client.list_queues()
    assert info.value.code == "SignatureDoesNotMatch"


def test_the_cluster_cli_signs_with_an_admins_key(secured: SecuredServer) -> None:
    def cli(key: tuple[str, str]) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        return subprocess.run([sys.executable, "-m", "broker.cli", "cluster", "--endpoint", address(secured),
                               "--access-key", key[0], "--secret-key", key[1], "status"],
                              capture_output=True, text=True, timeout=60, env=env, check=False)

    ok = cli(ROOT_A)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["role"] == "leader"
    denied = cli(ROOT_B)
    assert denied.returncode == 1 and "AccessDenied" in denied.stderr
    assert "not-the-secret" not in (wrong := cli((ROOT_A[0], "not-the-secret"))).stderr
    assert wrong.returncode == 1 and "SignatureDoesNotMatch" in wrong.stderr
