"""--spawn-cluster: N nodes started with consistent --peers, the leader found by asking, all stopped; per-node CPU."""

from __future__ import annotations

import os
import sys
from typing import Any

import pytest

from benchmarks import runner
from benchmarks.awsjson import Target
from benchmarks.cluster import SpawnedCluster
from benchmarks.server import ServerStartError

# Prints the ready line from its own --port/--grpc-port/--node-id, then waits for SIGTERM like raftmq serve.
_FAKE_NODE = """
import signal, sys
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM])
a = sys.argv[1:]
opt = lambda name: a[len(a) - 1 - a[::-1].index(name) + 1]
print("RaftMQ ready: endpoint=http://127.0.0.1:%s grpc=127.0.0.1:%s data_dir=%s node=%s"
      % (opt("--port"), opt("--grpc-port"), opt("--data-dir"), opt("--node-id")), flush=True)
signal.sigwait([signal.SIGTERM])
sys.exit(0)
"""


def test_cluster_nodes_share_peers_and_the_leader_is_found_by_asking() -> None:
    asked: list[str] = []

    def status(grpc: str) -> dict[str, Any]:
        asked.append(grpc)
        return {"leader": "n2" if len(asked) >= 4 else None}  # no leader for the first round and a bit

    with SpawnedCluster(3, ["--log-level", "info"], command=[sys.executable, "-c", _FAKE_NODE],
                        status=status) as cluster:
        assert [n.node_id for n in cluster.nodes] == ["n1", "n2", "n3"]
        peers = dict(p.split("=") for p in cluster.peers.split(","))
        assert {n.node_id: n.grpc for n in cluster.nodes} == peers  # every node listens where its peers look
        assert len({n.endpoint for n in cluster.nodes}) == 3
        assert all(s.argv.count("--peers") == 1 and "--log-level" in s.argv for s in cluster.servers)
        assert cluster.leader.node_id == "n2" and cluster.leader.pid == cluster.servers[1].pid
        assert asked[:3] == [n.grpc for n in cluster.nodes]
        dirs = [s.tmp for s in cluster.servers]
    assert [s.returncode for s in cluster.servers] == [0, 0, 0]
    assert not any(d.exists() for d in dirs)


def test_a_cluster_without_a_leader_fails_and_stops_its_nodes() -> None:
    cluster = SpawnedCluster(2, command=[sys.executable, "-c", _FAKE_NODE], leader_timeout=0.5,
                             status=lambda grpc: {"leader": "someone-else"})
    with pytest.raises(ServerStartError, match="no leader"), cluster:
        pass
    assert all(s.proc is None for s in cluster.servers)


def test_connections_are_spread_round_robin_over_the_alternates() -> None:
    target = Target("http://a:1", alternates=("http://b:2", "http://c:3"))
    assert [target.for_connection(i).endpoint for i in range(4)] == ["http://a:1", "http://b:2", "http://c:3",
                                                                     "http://a:1"]
    assert target.for_connection(1).alternates == ()
    single = Target("http://a:1")
    assert single.for_connection(5) is single


def test_node_cpu_is_read_per_node_and_summed() -> None:
    me = os.getpid()
    before = runner._nodes_cpu((("n1", me), ("n2", me)))
    sum(i * i for i in range(300_000))  # burn some CPU so the delta is visible at tick resolution
    after = runner._nodes_cpu((("n1", me), ("n2", me)))
    delta = runner._cpu_delta(before, after)
    assert delta is not None and set(delta) == {"n1", "n2"} and all(v >= 0 for v in delta.values())
    assert runner._cpu_delta({}, {}) is None
    assert runner._cpu_delta({"n1": 1.0}, {"n1": None}) is None
