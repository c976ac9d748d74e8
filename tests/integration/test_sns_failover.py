"""SNS on a 3-node Raft cluster (in-process nodes, real gRPC, real LMDB): publishers keep publishing through every
node to a topic with an SQS and an HTTP subscriber while the leader is killed; every acknowledged publish reaches
both subscribers at least once (the queue copy exactly once, the same on every survivor)."""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import grpc
import pytest

from broker.model.sns_model import SnsModel
from broker.model.sqs_model import SqsModel
from broker.notify import Notifier
from broker.service import RequestContext
from broker.sns.delivery import DeliveryWorker
from broker.sns.keys import SigningKeys
from broker.sns.service import SnsService
from broker.sqs.service import SqsConfig, SqsService
from broker.state_machine import BrokerStateMachine
from cluster.runtime import RaftReplicator
from cluster.transport import SERVER_OPTIONS
from storage.lmdb_store import LmdbStore
from tests.cluster_runtime.harness import FAST

IDS = ["n1", "n2", "n3"]
ACCOUNT = "123456789012"
CTX = RequestContext(request_id="r", account_id=ACCOUNT, region="us-east-1", endpoint_url="http://127.0.0.1:1",
                     protocol="json")
QUEUE_URL = f"/{ACCOUNT}/fanout"
QUEUE_ARN = f"arn:aws:sqs:us-east-1:{ACCOUNT}:fanout"


@dataclass
class SNode:
    node_id: str
    server: grpc.aio.Server
    store: LmdbStore
    rep: RaftReplicator
    sqs: SqsService
    sns: SnsService
    worker_stop: asyncio.Event
    worker: asyncio.Task[None]
    running: bool = True

    async def kill(self) -> None:
        """Vanish without handing leadership over (its delivery worker stops with it)."""
        self.running = False
        self.worker_stop.set()
        await self.worker
        await self.server.stop(None)
        await self.rep.stop(hand_over=False)
        self.store.close()


async def _start(root: Path) -> dict[str, SNode]:
    servers = {nid: grpc.aio.server(options=SERVER_OPTIONS) for nid in IDS}
    ports = {nid: s.add_insecure_port("127.0.0.1:0") for nid, s in servers.items()}
    peers = {nid: f"127.0.0.1:{port}" for nid, port in ports.items()}
    nodes = {}
    for nid in IDS:
        store = LmdbStore(str(root / nid), map_size=64 << 20)
        sqs_model = SqsModel()
        sns_model = SnsModel(sqs_model)
        notifier = Notifier()
        rep = RaftReplicator(store, BrokerStateMachine(sqs_model, notifier, sns_model),
                             replace(FAST, node_id=nid, peers=peers))
        rep.register(servers[nid])
        await servers[nid].start()
        rep.start()
        keys = SigningKeys(sns_model, rep)
        worker = DeliveryWorker(sns_model, rep, keys.signer, _is_leader(rep), poll_s=0.1, timeout_s=2.0)
        stop = asyncio.Event()
        sqs = SqsService(sqs_model, rep, notifier, SqsConfig(account_id=ACCOUNT))
        sns = SnsService(sns_model, rep, keys, ACCOUNT, "us-east-1", on_delivery=worker.kick)
        nodes[nid] = SNode(nid, servers[nid], store, rep, sqs, sns, stop,
                           asyncio.get_running_loop().create_task(worker.run(stop)))
    return nodes


def _is_leader(rep: RaftReplicator) -> Callable[[], bool]:
    return lambda: rep.is_leader


async def _leader(nodes: dict[str, SNode]) -> SNode:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 15
    while loop.time() < deadline:
        live = [n for n in nodes.values() if n.running]
        leaders = [n for n in live if n.rep.is_leader]
        if len(leaders) == 1 and all(n.rep.leader == leaders[0].node_id for n in live):
            return leaders[0]
        await asyncio.sleep(0.02)  # Raft elections have no event to await across nodes
    raise AssertionError("no agreed leader")


async def _until(predicate: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)  # publishers run on this loop; this only yields to them


@dataclass
class Endpoint:
    bodies: list[str] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


@pytest.fixture
def endpoint() -> Iterator[tuple[Endpoint, str]]:
    state = Endpoint()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            doc = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with state.lock:
                if doc["Type"] == "SubscriptionConfirmation":
                    state.tokens.append(doc["Token"])
                else:
                    state.bodies.append(doc["Message"])
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


async def _queue_bodies(node: SNode) -> list[str]:
    bodies: list[str] = []
    while True:
        out = await node.sqs.handle("ReceiveMessage", {"QueueUrl": QUEUE_URL, "MaxNumberOfMessages": 10,
                                                       "VisibilityTimeout": 3600}, CTX)
        if not out.get("Messages"):
            return bodies
        bodies.extend(json.loads(m["Body"])["Message"] for m in out["Messages"])


async def test_publishes_reach_every_subscriber_across_a_leader_kill(
        tmp_path: Path, endpoint: tuple[Endpoint, str]) -> None:
    http, url = endpoint
    nodes = await _start(tmp_path)
    try:
        leader = await _leader(nodes)
        await leader.sqs.handle("CreateQueue", {"QueueName": "fanout"}, CTX)
        topic = (await leader.sns.handle("CreateTopic", {"Name": "t"}, CTX))["TopicArn"]
        await leader.sns.handle("Subscribe", {"TopicArn": topic, "Protocol": "sqs", "Endpoint": QUEUE_ARN}, CTX)
        await leader.sns.handle("Subscribe", {"TopicArn": topic, "Protocol": "http", "Endpoint": url}, CTX)
        await _until(lambda: bool(http.tokens), "the subscription confirmation")
        await leader.sns.handle("ConfirmSubscription", {"TopicArn": topic, "Token": http.tokens[0]}, CTX)

        acked: set[str] = set()
        unknown: set[str] = set()
        stop = asyncio.Event()

        async def publish(worker: int) -> None:
            for n in itertools.count():
                if stop.is_set():
                    return
                live = [x for x in nodes.values() if x.running]
                node = live[(worker + n) % len(live)]
                body = f"{worker}:{n}"
                try:
                    await node.sns.handle("Publish", {"TopicArn": topic, "Message": body}, CTX)
                except Exception:  # not leader, outcome unknown, node gone: try elsewhere
                    unknown.add(body)
                    await asyncio.sleep(0.05)
                    continue
                acked.add(body)

        publishers = [asyncio.create_task(publish(w)) for w in range(4)]
        await _until(lambda: len(acked) >= 60, "publishes before the kill")
        before_kill = len(acked)
        await leader.kill()
        await _leader(nodes)
        await _until(lambda: len(acked) >= before_kill + 60, "publishes after the kill")
        stop.set()
        await asyncio.gather(*publishers)

        def delivered() -> set[str]:
            with http.lock:
                return set(http.bodies)
        await _until(lambda: acked <= delivered(), "every acknowledged publish over HTTP")
        assert delivered() <= acked | unknown
        survivors = [n for n in nodes.values() if n.running]
        counts = []
        for node in survivors:
            await node.rep.read_barrier()
            out = await node.sqs.handle("GetQueueAttributes", {"QueueUrl": QUEUE_URL,
                                                               "AttributeNames": ["ApproximateNumberOfMessages"]}, CTX)
            counts.append(out["Attributes"]["ApproximateNumberOfMessages"])
        assert counts[0] == counts[1]  # both survivors hold the same fan-out
        queued = await _queue_bodies(survivors[0])
        assert len(queued) == int(counts[0])
        assert len(queued) == len(set(queued)), "a publish was enqueued twice"
        assert acked <= set(queued) <= acked | unknown
    finally:
        for node in nodes.values():
            if node.running:
                await node.kill()
