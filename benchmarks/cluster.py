"""``--spawn-cluster N``: N ``raftmq serve`` processes on 127.0.0.1 forming one Raft cluster, for one benchmark.

Why here: the replicated figure must be reproducible with one command, exactly like the single-node one. Every node
gets free HTTP and gRPC ports and its own temp data dir; all are started before any is waited for (a node may need
its peers to come up), then the leader is found with ``raftmq cluster --endpoint HOST:GRPC status`` (its JSON
``leader``), asked over the network like any operator would. Load goes to the leader's HTTP endpoint, or to every
node in turn with ``spread``; each node's pid is kept so its CPU can be read from ``/proc``.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from benchmarks.server import ServerStartError, SpawnedServer, free_port, raftmq_command

LEADER_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class ClusterNode:
    node_id: str
    endpoint: str  # http://HOST:PORT of its AWS APIs
    grpc: str  # HOST:PORT
    pid: int


def status_via_cli(grpc: str, command: list[str] | None = None, timeout: float = 15.0) -> dict[str, Any]:
    """``raftmq cluster --endpoint GRPC status`` as a dict; raises ``RuntimeError`` when the command fails."""
    argv = [*(command or raftmq_command()), "cluster", "--endpoint", grpc, "status"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"cluster status via {grpc} failed: {done.stderr.strip() or done.returncode}")
    data = json.loads(done.stdout)
    if not isinstance(data, dict):
        raise RuntimeError(f"cluster status via {grpc} is not a JSON object")
    return data


class SpawnedCluster:
    """N nodes ``n1..nN`` with ``--peers`` naming them all; ``leader`` is known once ``__enter__`` returns."""

    def __init__(self, size: int, extra_args: list[str] | None = None, host: str = "127.0.0.1",
                 ready_timeout: float = 60.0, leader_timeout: float = LEADER_TIMEOUT_S,
                 command: list[str] | None = None,
                 status: Callable[[str], dict[str, Any]] | None = None) -> None:
        """``command`` replaces the ``raftmq`` argv prefix of the nodes; ``status`` how the leader is asked for."""
        if size < 1:
            raise ValueError("--spawn-cluster needs at least 1 node")
        self.size = size
        self.ids = [f"n{i + 1}" for i in range(size)]
        grpc_ports = [free_port(host) for _ in range(size)]
        http_ports = [free_port(host) for _ in range(size)]
        peers = ",".join(f"{node}={host}:{port}" for node, port in zip(self.ids, grpc_ports, strict=True))
        self.peers = peers
        self.servers = [
            SpawnedServer([*(extra_args or []), "--host", host, "--port", str(http), "--grpc-port", str(grpc),
                           "--node-id", node, "--peers", peers], ready_timeout=ready_timeout, command=command)
            for node, http, grpc in zip(self.ids, http_ports, grpc_ports, strict=True)]
        self.leader_timeout = leader_timeout
        self._status = status or status_via_cli
        self.nodes: list[ClusterNode] = []
        self.leader_id = ""

    @property
    def leader(self) -> ClusterNode:
        return next(n for n in self.nodes if n.node_id == self.leader_id)

    def __enter__(self) -> SpawnedCluster:
        try:
            for server in self.servers:
                server.launch()
            for node, server in zip(self.ids, self.servers, strict=True):
                server.wait_ready()
                self.nodes.append(ClusterNode(node, server.endpoint, server.grpc, server.pid))
            self.leader_id = self.wait_for_leader()
        except BaseException:
            self.stop()
            raise
        return self

    def wait_for_leader(self) -> str:
        """Ask each node in turn until one names a leader that is a member; the leader is polled for, as the
        cluster offers no event to wait on from outside."""
        deadline = time.monotonic() + self.leader_timeout
        last_error = "no answer yet"
        while time.monotonic() < deadline:
            for node in self.nodes:
                try:
                    leader = str(self._status(node.grpc).get("leader") or "")
                except (RuntimeError, ValueError, OSError, subprocess.TimeoutExpired) as exc:
                    last_error = str(exc)
                    continue
                if leader in self.ids:
                    return leader
                last_error = f"{node.node_id} knows no leader yet"
            time.sleep(0.2)
        raise ServerStartError(f"no leader within {self.leader_timeout:.0f} s: {last_error}")

    def stop(self) -> list[int | None]:
        """Stop every node (SIGTERM to all at once, then SIGKILL after the grace period); their exit codes."""
        for server in self.servers:
            if server.proc is not None and server.proc.poll() is None:
                server.proc.send_signal(signal.SIGTERM)
        return [server.stop() for server in self.servers]

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
