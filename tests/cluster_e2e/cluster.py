"""Real ``raftmq serve`` processes forming one cluster on 127.0.0.1, each gRPC port behind the fault proxy.

Node ``nK`` binds its gRPC port P on 127.0.0.1 but is known to the cluster (``--peers``, and so its advertised
address) as 127.0.1.K:P, where the proxy listens and forwards to 127.0.0.1:P. So every Raft stream, forward and admin
call between nodes crosses the proxy, and the proxy learns which node opened a connection from ``/proc``
(``procnet``). The test itself talks to the real ports: it can always ask an isolated node for its status.

Raft runs fast (``--raft-tick-ms 50 --raft-election-ticks 10``: an election after ~0.5-1 s of silence). Status and
leader checks poll the nodes' admin service, since another process offers no event to wait on.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from cluster.forwarding import ClusterStatus, pb_grpc
from proto.cluster.v1 import transport_pb2 as pb
from tests.cluster_e2e import procnet
from tests.cluster_e2e.proxy import Address, FaultProxy
from tests.integration.server import RaftMQServer

TICK_MS = 50
ELECTION_TICKS = 10
REPO = Path(__file__).resolve().parents[2]


class ClusterNodeServer(RaftMQServer):
    """``raftmq serve`` as a cluster member: fixed gRPC port (its --peers entry), HTTP on a free port."""

    def __init__(self, data_dir: Path, node_id: str, peers: str, *, join: bool = False) -> None:
        super().__init__(data_dir, log_level="warning", ready_timeout=30.0)
        self.node_id = node_id
        self.peers = peers
        self.join = join

    def args(self) -> list[str]:
        argv = [sys.executable, "-m", "broker.cli", "serve", "--node-id", self.node_id, "--peers", self.peers,
                "--data-dir", str(self.data_dir), "--host", "127.0.0.1", "--port", "0",
                "--raft-tick-ms", str(TICK_MS), "--raft-election-ticks", str(ELECTION_TICKS),
                "--log-level", self.log_level]
        return [*argv, "--join"] if self.join else argv


@dataclass
class Node:
    node_id: str
    grpc_port: int
    advertised: Address  # where the proxy listens for this node; what its peers dial
    server: ClusterNodeServer
    stopped: bool = False  # SIGSTOPped

    @property
    def admin_address(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def peer_address(self) -> str:
        return f"{self.advertised[0]}:{self.advertised[1]}"


class Cluster:
    """Start, fault and inspect a cluster of real processes; ``close()`` kills everything it started."""

    def __init__(self, root: Path, size: int) -> None:
        self.root = root
        self.ids = [f"n{i + 1}" for i in range(size)]
        self.nodes: dict[str, Node] = {}
        self.proxy = FaultProxy(self._identify)
        self._pids: dict[int, str] = {}
        self._channels: dict[str, grpc.Channel] = {}
        self._lock = threading.Lock()

    # -- processes -------------------------------------------------------------------------------------------
    def start(self) -> None:
        """Reserve ports, open the proxies and start every node in parallel."""
        self.proxy.start()
        ports = {nid: self._reserve(nid) for nid in self.ids}
        peers = ",".join(f"{nid}=127.0.1.{self._index(nid)}:{ports[nid]}" for nid in self.ids)
        for nid in self.ids:
            self._make_node(nid, ports[nid], peers, join=False)
        for nid in self.ids:  # one after another: each start is well under a second
            self._spawn(nid)

    def add_process(self, node_id: str) -> Node:
        """Start ``node_id`` with ``--join`` (it knows the other nodes and itself); a member only once added.

        A node that existed before (wiped, then removed) keeps its gRPC port and proxy listener."""
        known = self.nodes.get(node_id)
        port = known.grpc_port if known is not None else self._reserve(node_id)
        members = [n for n in self.nodes.values() if n.node_id != node_id]
        peers = ",".join([f"{node_id}=127.0.1.{self._index(node_id)}:{port}",
                          *(f"{n.node_id}={n.peer_address}" for n in members)])
        self._make_node(node_id, port, peers, join=True)
        self._spawn(node_id)
        return self.nodes[node_id]

    def _make_node(self, node_id: str, port: int, peers: str, *, join: bool) -> None:
        server = ClusterNodeServer(self.root / node_id, node_id, peers, join=join)
        self.nodes[node_id] = Node(node_id, port, (f"127.0.1.{self._index(node_id)}", port), server)

    @staticmethod
    def _index(node_id: str) -> int:
        return int(node_id[1:])

    def _reserve(self, node_id: str) -> int:
        """A port free on 127.0.0.1 (the node binds it) whose twin on 127.0.1.K gets the node's proxy listener."""
        for _ in range(50):
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                port: int = probe.getsockname()[1]
                try:
                    self.proxy.listen(node_id, (f"127.0.1.{self._index(node_id)}", port), ("127.0.0.1", port))
                except OSError:
                    continue
            return port
        raise AssertionError("no free port pair for the proxy")

    def _spawn(self, node_id: str) -> None:
        node = self.nodes[node_id]
        node.server.start()
        with self._lock:
            self._pids[node.server.pid] = node_id

    def _identify(self, client: Address, server: Address) -> str | None:
        with self._lock:
            pids = dict(self._pids)
        pid = procnet.owner_of(client, server, pids)
        return None if pid is None else pids[pid]

    def endpoint(self, node_id: str) -> str:
        return self.nodes[node_id].server.endpoint

    def running(self) -> list[str]:
        """Nodes whose process is alive and not stopped."""
        return [nid for nid, n in self.nodes.items() if n.server.running and not n.stopped]

    def kill9(self, node_id: str) -> None:
        self.nodes[node_id].server.kill9()

    def sigstop(self, node_id: str) -> None:
        node = self.nodes[node_id]
        os.kill(node.server.pid, signal.SIGSTOP)
        node.stopped = True

    def sigcont(self, node_id: str) -> None:
        node = self.nodes[node_id]
        os.kill(node.server.pid, signal.SIGCONT)
        node.stopped = False

    def restart(self, node_id: str) -> None:
        """Start a killed node again on its data directory (same gRPC port, new HTTP port)."""
        self._spawn(node_id)

    def stop(self, node_id: str) -> None:
        """Graceful SIGTERM; the CLI contract says exit code 0."""
        node = self.nodes[node_id]
        if node.stopped:
            self.sigcont(node_id)
        node.server.stop()

    def wipe(self, node_id: str) -> None:
        """Lose the node's data, as a replaced disk would."""
        shutil.rmtree(self.nodes[node_id].server.data_dir)

    def close(self) -> None:
        for node in self.nodes.values():
            if node.stopped and node.server.running:
                os.kill(node.server.pid, signal.SIGCONT)
            node.server.close()
        for channel in self._channels.values():
            channel.close()
        self.proxy.close()

    # -- inspection ------------------------------------------------------------------------------------------
    def status(self, node_id: str, timeout: float = 1.0) -> ClusterStatus | None:
        """The node's own view (None if it does not answer: dead, stopped, or slow)."""
        node = self.nodes[node_id]
        if not node.server.running or node.stopped:
            return None
        channel = self._channels.get(node_id)
        if channel is None:
            channel = self._channels[node_id] = grpc.insecure_channel(node.admin_address)
        try:
            resp = pb_grpc.RaftAdminStub(channel).Status(pb.StatusRequest(), timeout=timeout)
        except grpc.RpcError:
            return None
        return ClusterStatus.from_pb(resp)

    def views(self) -> str:
        """Every node's status in one line each, for failure messages."""
        lines = []
        for nid in self.nodes:
            st = self.status(nid)
            lines.append(f"{nid}: " + ("down/unresponsive" if st is None else
                                       f"role={st.role} leader={st.leader} term={st.term} commit={st.commit} "
                                       f"applied={st.applied} voters={st.voters} learners={st.learners}"))
        lines.append(f"proxy: connections {dict(self.proxy.connections)} refused {self.proxy.refused} "
                     f"dropped {dict(self.proxy.dropped)}")
        return "\n".join(lines)

    def wait_for(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout} s waiting for {what}\n{self.views()}")
            time.sleep(0.05)

    def leader(self, among: Iterable[str] | None = None, timeout: float = 20.0) -> str:
        """The leader that every answering node of ``among`` (default: running nodes) agrees on."""
        found: list[str] = []

        def agreed() -> bool:
            names = list(among) if among is not None else self.running()
            views = [s for s in (self.status(n) for n in names) if s is not None]
            leaders = {(s.leader, s.term) for s in views}
            if len(views) < len(names) // 2 + 1 or len(leaders) != 1:
                return False
            (lead, _), = leaders
            if not lead or lead not in names:
                return False
            lead_view = next((s for s in views if s.node_id == lead), None)
            if lead_view is None or lead_view.role != "leader":
                return False
            found[:] = [lead]
            return True

        self.wait_for(agreed, timeout, f"one leader agreed by {among or 'the running nodes'}")
        return found[0]

    def wait_caught_up(self, node_id: str, timeout: float = 30.0) -> None:
        """Wait until ``node_id`` has applied everything the leader had committed when this was called."""
        leader = self.leader()
        st = self.status(leader)
        assert st is not None
        target = st.commit

        def caught_up() -> bool:
            mine = self.status(node_id)
            return mine is not None and mine.applied >= target

        self.wait_for(caught_up, timeout, f"{node_id} to apply up to {target}")

    def cli(self, via: str, *args: str, timeout: float = 90.0) -> subprocess.CompletedProcess[str]:
        """``raftmq cluster --endpoint <via's gRPC> ARGS`` exactly as an operator types it."""
        cmd = [sys.executable, "-m", "broker.cli", "cluster", "--endpoint", self.nodes[via].admin_address, *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=str(REPO), check=False)


def describe(proc: subprocess.CompletedProcess[Any]) -> str:
    return f"exit {proc.returncode}\nstdout: {proc.stdout}\nstderr: {proc.stderr}"
