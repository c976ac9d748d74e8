"""The operator's commands as docs/operations.md shows them: ``raftmq cluster status|transfer-leader``, refusals,
``raftmq dev-cluster``, and ``raftmq serve`` refusing a member list that does not name it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.cluster_e2e.cluster import REPO, Cluster, describe
from tests.cluster_e2e.workload import sqs_client
from tests.integration.server import parse_ready_line


def test_status_from_any_node_names_the_leader_and_the_leader_reports_lag(cluster3: Cluster) -> None:
    c = cluster3
    leader = c.leader()
    for via in c.ids:
        proc = c.cli(via, "status")
        assert proc.returncode == 0, describe(proc)
        status = json.loads(proc.stdout)
        assert status["node_id"] == via and status["leader"] == leader
        assert status["voters"] == c.ids and status["learners"] == []
        assert status["applied"] <= status["commit"] and status["term"] >= 1
        assert status["role"] == ("leader" if via == leader else "follower")
        if via == leader:
            peers = {p["node_id"]: p for p in status["peers"]}
            assert set(peers) == set(c.ids)
            assert all(p["lag"] >= 0 and "match" in p for p in peers.values())
            assert peers[via]["address"] == c.nodes[via].peer_address  # the advertised (proxied) address
        else:
            assert status["peers"] == []


def test_transfer_leader_moves_leadership_and_refuses_a_non_member(cluster3: Cluster) -> None:
    c = cluster3
    leader = c.leader()
    target = next(n for n in c.ids if n != leader)
    via = next(n for n in c.ids if n not in (leader, target))  # a follower passes it to the leader
    proc = c.cli(via, "transfer-leader", target)
    assert proc.returncode == 0 and f"leadership transferred to {target}" in proc.stdout, describe(proc)
    assert c.leader() == target
    refused = c.cli(leader, "transfer-leader", "n9")
    assert refused.returncode == 1 and "not a voter" in refused.stderr, describe(refused)
    bad = c.cli(leader, "add-node", "bad|id", "--address", "127.0.0.1:1")
    assert bad.returncode == 1 and "bad node id" in bad.stderr, describe(bad)


def test_serve_refuses_peers_that_do_not_name_this_node(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "broker.cli", "serve", "--node-id", "n9", "--data-dir",
                           str(tmp_path / "d"), "--port", "0", "--peers", "n1=127.0.0.1:1,n2=127.0.0.1:2"],
                          capture_output=True, text=True, timeout=60, cwd=str(REPO), check=False)
    assert proc.returncode == 1 and "is not in --peers" in proc.stderr, describe(proc)


def test_dev_cluster_prints_every_node_serves_through_a_follower_and_stops_on_sigterm(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "broker.cli", "dev-cluster", "--nodes", "3", "--data-dir",
                             str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            cwd=str(REPO), start_new_session=True)  # its own group: killable as a whole
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline().strip() for _ in range(4)]
        ready = [parse_ready_line(line) for line in lines[:3]]
        assert all(r is not None for r in ready), lines
        assert [r.node for r in ready if r is not None] == ["n1", "n2", "n3"]
        assert lines[3].startswith("RaftMQ dev cluster: 3 nodes, peers=n1="), lines[3]
        endpoints = [r.endpoint for r in ready if r is not None]
        first = sqs_client(endpoints[0])
        url = first.create_queue(QueueName="dev-cluster-check")["QueueUrl"]
        for endpoint in endpoints:  # any node serves: followers forward
            sqs_client(endpoint).send_message(QueueUrl=url, MessageBody=f"via {endpoint}")
        bodies: set[str] = set()
        for _ in range(20):
            got = first.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
            bodies |= {m["Body"] for m in got.get("Messages", [])}
            if len(bodies) == 3:
                break
        assert bodies == {f"via {e}" for e in endpoints}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        # The nodes were its children in its session: none may outlive it.
        leftovers = subprocess.run(["pgrep", "-s", str(proc.pid)], capture_output=True, text=True, check=False)
        if leftovers.stdout.strip():
            os.killpg(proc.pid, signal.SIGKILL)
        assert not leftovers.stdout.strip(), f"dev-cluster left nodes running: {leftovers.stdout}"


def test_sigterm_on_the_leader_exits_0_and_the_others_carry_on(cluster3: Cluster) -> None:
    c = cluster3
    leader = c.leader()
    c.stop(leader)  # asserts exit code 0
    others = [n for n in c.ids if n != leader]
    new = c.leader(others, timeout=5)
    assert new in others
    client = sqs_client(c.endpoint(others[0]))
    url = client.create_queue(QueueName="after-sigterm")["QueueUrl"]
    client.send_message(QueueUrl=url, MessageBody="still served")
    got = client.receive_message(QueueUrl=url, WaitTimeSeconds=5)["Messages"]
    assert [m["Body"] for m in got] == ["still served"]
