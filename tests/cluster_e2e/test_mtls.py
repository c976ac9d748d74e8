"""A 3-node cluster of real processes over mutual TLS (and HTTPS): writes through a follower, replication to every
node, the leader killed and a new one elected; the admin CLI with a cluster certificate; and intruders refused: a
node whose certificate comes from another CA, and a node of another cluster id with a valid certificate.

Nodes are polled through their admin service (another process offers no event to wait on), bounded by deadlines.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import grpc
import pytest
from botocore.config import Config

from broker.certs import create_ca, issue
from broker.tls import channel_credentials
from cluster.core.codec import encode_batch
from cluster.core.messages import Message, MsgType
from cluster.forwarding import ClusterStatus, pb_grpc
from proto.cluster.v1 import transport_pb2 as pb
from tests.cluster_e2e.cluster import ELECTION_TICKS, REPO, TICK_MS
from tests.integration.server import RaftMQServer

IDS = ("n1", "n2", "n3")


@dataclass(frozen=True)
class Pki:
    root: Path

    @property
    def ca(self) -> str:
        return str(self.root / "ca" / "ca.pem")

    def cert(self, name: str, ca: str = "ca") -> tuple[str, str]:
        return str(self.root / ca / f"{name}.pem"), str(self.root / ca / f"{name}.key")


class TlsNode(RaftMQServer):
    """``raftmq serve`` as a member with HTTPS and mTLS; the client gRPC API on a free port."""

    def __init__(self, data_dir: Path, node_id: str, peers: str, pki: Pki, *, cert: tuple[str, str] | None = None,
                 cluster_id: str = "raftmq") -> None:
        super().__init__(data_dir, log_level="warning")
        self.node_id = node_id
        self.peers = peers
        node_cert, node_key = cert or pki.cert(node_id)
        self.tls_args = ["--tls-cert", node_cert, "--tls-key", node_key, "--cluster-ca", pki.ca,
                         "--node-cert", node_cert, "--node-key", node_key, "--cluster-id", cluster_id]

    def args(self) -> list[str]:
        return [sys.executable, "-m", "broker.cli", "serve", "--node-id", self.node_id, "--peers", self.peers,
                "--data-dir", str(self.data_dir), "--host", "127.0.0.1", "--port", "0", "--grpc-port", "0",
                "--raft-tick-ms", str(TICK_MS), "--raft-election-ticks", str(ELECTION_TICKS),
                "--log-level", self.log_level, *self.tls_args]


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


class MtlsCluster:
    def __init__(self, root: Path, pki: Pki) -> None:
        self.pki = pki
        self.root = root
        ports = _free_ports(len(IDS) + 2)
        self.cluster_ports = dict(zip((*IDS, "n4", "n5"), ports, strict=True))
        self.peers = ",".join(f"{n}=127.0.0.1:{self.cluster_ports[n]}" for n in IDS)
        self.nodes = {n: TlsNode(root / n, n, self.peers, pki) for n in IDS}
        self.extra: list[RaftMQServer] = []
        creds = channel_credentials(pki.ca, *pki.cert("admin"))
        self._channels = {n: grpc.secure_channel(f"127.0.0.1:{p}", creds) for n, p in self.cluster_ports.items()}
        # n4 serves a certificate of the other CA (it trusts the cluster CA for its clients, as the members do).
        self._channels["n4"] = grpc.secure_channel(f"127.0.0.1:{self.cluster_ports['n4']}", channel_credentials(
            str(pki.root / "other" / "ca.pem"), *pki.cert("admin")))

    def start(self) -> None:
        for node in self.nodes.values():
            node.start()

    def close(self) -> None:
        for channel in self._channels.values():
            channel.close()
        for server in [*self.nodes.values(), *self.extra]:
            server.close()

    def status(self, node_id: str) -> ClusterStatus | None:
        try:
            resp = pb_grpc.RaftAdminStub(self._channels[node_id]).Status(pb.StatusRequest(), timeout=1.0)
        except grpc.RpcError:
            return None
        return ClusterStatus.from_pb(resp)

    def leader(self, among: tuple[str, ...] = IDS, timeout: float = 20.0) -> str:
        found: list[str] = []

        def agreed() -> bool:
            views = [s for s in (self.status(n) for n in among) if s is not None]
            leaders = {(s.leader, s.term) for s in views}
            if len(views) != len(among) or len(leaders) != 1:
                return False
            ((lead, _),) = leaders
            found[:] = [lead]
            return lead in among
        wait_for(agreed, timeout, f"a leader agreed by {among}")
        return found[0]

    def sqs(self, node_id: str) -> Any:
        return boto3.session.Session().client(
            "sqs", endpoint_url=self.nodes[node_id].endpoint, region_name="us-east-1", aws_access_key_id="AKIADEV",
            aws_secret_access_key="dev", verify=self.pki.ca,
            config=Config(retries={"max_attempts": 5, "mode": "standard"}, read_timeout=30))

    def cli(self, node_id: str, *args: str) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "broker.cli", "cluster", "--endpoint",
               f"127.0.0.1:{self.cluster_ports[node_id]}", *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=str(REPO), check=False)


async def inject(port: int, ca: str, cert: tuple[str, str], term: int) -> grpc.StatusCode:
    """Open a Raft stream as "n4" and send one heartbeat of ``term``; the status code the stream ended with."""
    async def frames() -> AsyncIterator[pb.Frame]:
        yield pb.Frame(hello=pb.Hello(cluster_id="raftmq", node_id="n4", address=""))
        yield pb.Frame(batch=encode_batch([Message(MsgType.HEARTBEAT, "n4", "n1", term=term, cluster_id="raftmq")]))

    async with grpc.aio.secure_channel(f"127.0.0.1:{port}", channel_credentials(ca, *cert)) as channel:
        call = pb_grpc.RaftTransportStub(channel).Stream(frames(), timeout=5)
        try:
            async for _ in call:
                pass
        except grpc.aio.AioRpcError as exc:
            return exc.code()
        return grpc.StatusCode.OK


def wait_for(predicate: Callable[[], bool], timeout: float, what: str,
             detail: Callable[[], str] = lambda: "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}\n{detail()}")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    root = tmp_path_factory.mktemp("pki")
    create_ca(root / "ca")
    create_ca(root / "other")
    for name in (*IDS, "n5"):
        issue(root / "ca", name, ["127.0.0.1", "localhost"])
    issue(root / "ca", "admin", [])
    issue(root / "other", "n4", ["127.0.0.1", "localhost"])
    return Pki(root)


@pytest.fixture
def mtls(tmp_path: Path, pki: Pki) -> Iterator[MtlsCluster]:
    c = MtlsCluster(tmp_path, pki)
    try:
        c.start()
        yield c
    finally:
        c.close()


def test_cluster_over_mtls_replicates_fails_over_and_refuses_intruders(mtls: MtlsCluster, pki: Pki) -> None:
    leader = mtls.leader()
    follower = next(n for n in IDS if n != leader)
    # Writes through a follower (forwarded to the leader over mTLS), over HTTPS.
    sqs = mtls.sqs(follower)
    url = sqs.create_queue(QueueName="mtls")["QueueUrl"]
    assert url.startswith("https://")
    for i in range(10):
        sqs.send_message(QueueUrl=url, MessageBody=f"m{i}")
    lead_status = mtls.status(leader)
    assert lead_status is not None
    wait_for(lambda: all((s := mtls.status(n)) is not None and s.applied >= lead_status.commit for n in IDS),
             20, "every node to apply the leader's commit index")

    # The admin CLI needs a cluster certificate.
    ok = mtls.cli(follower, "--ca", pki.ca, "--cert", pki.cert("admin")[0], "--key", pki.cert("admin")[1], "status")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["leader"] == leader
    refused = mtls.cli(follower, "--ca", pki.ca, "status")
    assert refused.returncode == 1 and "go together" in refused.stderr
    plain = mtls.cli(follower, "status")
    assert plain.returncode == 1

    # Intruders: n4 presents a certificate of another CA; n5 has a valid one but another cluster id. Both claim
    # membership (--peers lists them with the members), so they dial the members and campaign.
    before = mtls.status(leader)
    assert before is not None
    intruder_peers = f"{mtls.peers},n4=127.0.0.1:{mtls.cluster_ports['n4']},n5=127.0.0.1:{mtls.cluster_ports['n5']}"
    n4 = TlsNode(mtls.root / "n4", "n4", intruder_peers, pki, cert=pki.cert("n4", "other"))
    n5 = TlsNode(mtls.root / "n5", "n5", intruder_peers, pki, cluster_id="other-cluster")
    mtls.extra += [n4, n5]
    n4.start()
    n5.start()
    wait_for(lambda: any("event=peer-refused node='n5' cluster='other-cluster'" in mtls.nodes[n].stderr_text()
                         for n in IDS), 15, "a member to log that it refused n5's cluster id")
    # What n4 would send if its handshake succeeded: a heartbeat of a far higher term (it would depose the leader).
    follower_port = mtls.cluster_ports[follower]
    injected = asyncio.run(inject(follower_port, pki.ca, pki.cert("n4", "other"), before.term + 100))
    assert injected == grpc.StatusCode.UNAVAILABLE  # the TLS handshake failed: nothing reached Raft
    after = mtls.status(leader)
    assert after is not None
    assert (after.leader, after.term, set(after.voters), after.learners) == (leader, before.term, set(IDS), ())
    for intruder in ("n4", "n5"):
        view = mtls.status(intruder)
        assert view is not None and view.leader == "", f"{intruder} learnt a leader: {view}"

    # Kill the leader: the other two elect one over mTLS and still hold every message.
    mtls.nodes[leader].kill9()
    survivors = tuple(n for n in IDS if n != leader)
    new_leader = mtls.leader(survivors)
    assert new_leader != leader
    sqs2 = mtls.sqs(next(n for n in survivors if n != new_leader))
    sqs2.send_message(QueueUrl=url, MessageBody="after failover")
    bodies: set[str] = set()
    deadline = time.monotonic() + 30
    while len(bodies) < 11 and time.monotonic() < deadline:
        for m in sqs2.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
            bodies.add(m["Body"])
            sqs2.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    assert bodies == {f"m{i}" for i in range(10)} | {"after failover"}
