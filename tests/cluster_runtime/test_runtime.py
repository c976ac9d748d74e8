"""Three RaftReplicators over real gRPC and real LMDB: replication, failover, restart, snapshot catch-up, timeouts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import cast

import grpc
import pytest

from cluster.api import NotLeader
from cluster.core.messages import Message, MsgType
from cluster.forwarding import AdminClient, AdminError, pb_grpc
from cluster.local import ReplicatorClosed
from cluster.runtime import RaftReplicator
from proto.cluster.v1 import transport_pb2 as pb
from storage.lmdb_store import LmdbStore
from tests.cluster_runtime.harness import FAST, Cluster, ListMachine

IDS = ["n1", "n2", "n3"]


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    c = Cluster(tmp_path, FAST)
    await c.start(IDS)
    try:
        yield c
    finally:
        await c.stop()


async def propose_all(c: Cluster, count: int, prefix: str, via: list[str]) -> list[tuple[int, bytes]]:
    """``count`` concurrent proposals spread over the nodes ``via``; their replies (index, data)."""
    replies = await asyncio.gather(*(
        c.nodes[via[i % len(via)]].rep.propose_and_wait(f"{prefix}{i}".encode()) for i in range(count)))
    return [cast(tuple[int, bytes], r) for r in replies]


async def test_proposals_through_leader_and_followers_apply_everywhere_in_one_order(cluster: Cluster) -> None:
    leader = await cluster.leader()
    replies = await propose_all(cluster, 60, "x", IDS)
    # Every proposer got the reply of its own entry: (index, data), whichever node it asked.
    assert [data for _, data in replies] == [f"x{i}".encode() for i in range(60)]
    indexes = [index for index, _ in replies]
    assert len(set(indexes)) == 60
    datas = await cluster.converged()
    assert sorted(datas) == sorted(f"x{i}".encode() for i in range(60))
    for node in cluster.nodes.values():
        assert [i for i, _ in node.sm.items] == sorted(indexes)  # same order, no gaps besides Raft's own entries
        assert node.sm.durable_calls > 0
    status = leader.rep.status()
    assert status.role == "leader" and status.leader == leader.node_id
    assert {p.node_id for p in status.peers} == set(IDS)
    # Read barrier on a follower: returns, and the follower then holds every acknowledged write.
    follower = next(n for n in cluster.live() if n is not leader)
    await follower.rep.read_barrier()
    assert len(follower.sm.items) == 60


async def test_stopping_the_leader_elects_another_and_keeps_acknowledged_entries(cluster: Cluster) -> None:
    old = await cluster.leader()
    acked = await propose_all(cluster, 20, "a", IDS)
    await old.stop(hand_over=False)  # as abrupt as in-process gets: the others must time out and elect
    rest = [n for n in IDS if n != old.node_id]
    new = await cluster.leader(rest)
    assert new.node_id != old.node_id
    acked += await propose_all(cluster, 20, "b", rest)
    datas = await cluster.converged(rest)
    for reply in acked:
        assert reply[1] in datas


async def test_a_leader_stopping_gracefully_hands_leadership_over_first(cluster: Cluster) -> None:
    old = await cluster.leader()
    await propose_all(cluster, 5, "a", IDS)
    term = old.rep.status().term
    await old.stop()
    assert old.rep.node.raft.role.value == "follower"  # it stepped down before closing its streams
    rest = [n for n in IDS if n != old.node_id]
    new = await cluster.leader(rest)
    assert new.rep.status().term == term + 1  # one campaign (TimeoutNow), no election rounds
    assert await new.rep.propose_and_wait(b"after") == (new.rep.log.last_index(), b"after")


async def test_restarted_node_catches_up_from_its_data_dir(cluster: Cluster) -> None:
    leader = await cluster.leader()
    await propose_all(cluster, 10, "before", IDS)
    follower = next(n for n in IDS if n != leader.node_id)
    await cluster.converged()
    await cluster.nodes[follower].stop()
    await propose_all(cluster, 10, "during", [leader.node_id])
    node = await cluster.restart(follower)
    assert node.sm.restores == 1
    assert len(node.sm.items) >= 10  # restored from its own tables before catching up
    datas = await cluster.converged()
    assert len(datas) == 20


async def test_no_quorum_fails_proposals_and_reads_with_not_leader_within_the_bound(cluster: Cluster) -> None:
    leader = await cluster.leader()
    await propose_all(cluster, 3, "ok", IDS)
    survivor = next(n for n in IDS if n != leader.node_id)
    await asyncio.gather(*(cluster.nodes[n].stop() for n in IDS if n != survivor))
    started = time.monotonic()
    with pytest.raises(NotLeader):
        await cluster.nodes[survivor].rep.propose_and_wait(b"lost")
    with pytest.raises(NotLeader):
        await cluster.nodes[survivor].rep.read_barrier()
    elapsed = time.monotonic() - started
    assert elapsed < 2 * FAST.election_wait_s + FAST.commit_timeout_s


async def test_deposed_leader_never_serves_a_read(cluster: Cluster) -> None:
    old = await cluster.leader()
    await propose_all(cluster, 5, "p", IDS)
    others = [n for n in IDS if n != old.node_id]
    old.rep.transport.block(set(others))
    for n in others:
        cluster.nodes[n].rep.transport.block({old.node_id})
    new = await cluster.leader(others)
    await new.rep.propose_and_wait(b"after-partition")
    with pytest.raises(NotLeader):
        await old.rep.read_barrier()
    assert b"after-partition" not in old.sm.datas()
    # Healed: the old leader follows and catches up.
    old.rep.transport.block(set())
    for n in others:
        cluster.nodes[n].rep.transport.block(set())
    datas = await cluster.converged()
    assert b"after-partition" in datas
    await old.rep.read_barrier()


async def test_transfer_leader_through_the_admin_api_of_a_follower(cluster: Cluster) -> None:
    leader = await cluster.leader()
    follower, target = [n for n in IDS if n != leader.node_id]
    client = AdminClient(cluster.addr(follower))
    try:
        await client.transfer_leader(target)
        status = await client.status()
    finally:
        await client.close()
    assert cluster.nodes[target].rep.is_leader
    assert status.leader == target
    assert await cluster.nodes[leader.node_id].rep.propose_and_wait(b"via-old") == (
        cluster.nodes[target].rep.log.last_index(), b"via-old")


async def test_wiped_node_is_removed_readded_and_catches_up_by_snapshot(tmp_path: Path) -> None:
    c = Cluster(tmp_path, replace(FAST, snapshot_every=20, keep_log_entries=5))
    await c.start(IDS)
    try:
        leader = await c.leader()
        victim = next(n for n in IDS if n != leader.node_id)
        await propose_all(c, 10, "v", IDS)
        await c.nodes[victim].stop()
        admin = AdminClient(c.addr(leader.node_id))
        try:
            await admin.remove_node(victim)
            rest = [n for n in IDS if n != victim]
            await propose_all(c, 60, "w", rest)
            await c.wait_for(lambda: leader.rep.log.first_index() > 10, what="compaction on the leader")
            node = await c.restart(victim, wipe=True, join=True)
            assert node.sm.items == []
            await admin.add_node(victim, c.addr(victim))
            status = await admin.status()
        finally:
            await admin.close()
        assert victim in status.voters
        datas = await c.converged()
        assert len(datas) == 70
        assert node.rep.log.snapshot().meta.index > 0  # it got there by InstallSnapshot
        assert node.sm.restores >= 2
        await propose_all(c, 5, "z", IDS)  # and takes part again
        assert len(await c.converged()) == 75
    finally:
        await c.stop()


async def test_proposals_during_an_election_wait_for_the_new_leader(tmp_path: Path) -> None:
    c = Cluster(tmp_path, replace(FAST, election_wait_s=4.0))
    await c.start(IDS)
    try:
        old = await c.leader()
        rest = [n for n in IDS if n != old.node_id]
        await propose_all(c, 3, "a", IDS)
        await old.stop(hand_over=False)
        # The followers still believe in the old leader: these are forwarded to a dead node, then must wait.
        replies = await propose_all(c, 10, "during", rest)
        assert [d for _, d in replies] == [f"during{i}".encode() for i in range(10)]
        assert (await c.leader(rest)).node_id != old.node_id
    finally:
        await c.stop()


async def test_admin_refusals_come_back_as_admin_errors(cluster: Cluster) -> None:
    await cluster.leader()
    client = AdminClient(cluster.addr("n3"))
    try:
        with pytest.raises(AdminError, match="bad node id"):
            await client.add_node("bad|id", "127.0.0.1:1")
        with pytest.raises(AdminError, match="not a voter"):
            await client.transfer_leader("n9")
        await client.remove_node("n9")  # not a member: nothing to do
        assert set((await client.status()).voters) == set(IDS)
    finally:
        await client.close()


async def test_a_one_node_raft_cluster_commits_alone_and_survives_restart(tmp_path: Path) -> None:
    c = Cluster(tmp_path, FAST)
    await c.start(["solo"])
    try:
        await c.leader()
        replies = await propose_all(c, 20, "s", ["solo"])
        assert [d for _, d in replies] == [f"s{i}".encode() for i in range(20)]
        await c.nodes["solo"].rep.read_barrier()
        node = await c.restart("solo")
        assert node.sm.datas() == [f"s{i}".encode() for i in range(20)]
        await c.leader()
        assert await node.rep.propose_and_wait(b"again") == (node.rep.log.last_index(), b"again")
    finally:
        await c.stop()


async def test_stopping_during_a_forward_fails_its_proposals_instead_of_stranding_them(tmp_path: Path) -> None:
    arrived, hold = asyncio.Event(), asyncio.Event()

    class HangingLeader:
        async def Forward(self, request: pb.ForwardRequest, context: object) -> pb.ForwardResponse:
            arrived.set()
            await hold.wait()
            return pb.ForwardResponse(rejected=True)

    server = grpc.aio.server()
    port = server.add_insecure_port("127.0.0.1:0")
    pb_grpc.add_RaftForwardServicer_to_server(HangingLeader(), server)
    await server.start()
    store = LmdbStore(str(tmp_path / "n1"))
    rep = RaftReplicator(store, ListMachine(), replace(FAST, node_id="n1", peers={
        "n1": "127.0.0.1:1", "n2": f"127.0.0.1:{port}"}))
    rep.start()
    try:
        # n2 makes itself known as leader; n1 forwards to it, and n2 never answers.
        rep._on_messages([Message(MsgType.HEARTBEAT, "n2", "n1", term=1, cluster_id=FAST.cluster_id)])
        proposal = asyncio.create_task(rep.propose_and_wait(b"stranded?"))
        await asyncio.wait_for(arrived.wait(), 5)
        await rep.stop()
        with pytest.raises(ReplicatorClosed):
            await asyncio.wait_for(proposal, 1)
    finally:
        hold.set()
        await server.stop(None)
        store.close()


async def test_a_failed_disk_write_stops_that_node_and_the_others_carry_on(cluster: Cluster) -> None:
    leader = await cluster.leader()

    def broken_write(*args: object, **kwargs: object) -> None:
        raise OSError("disk on fire")

    leader.store.write = broken_write  # type: ignore[method-assign]
    with pytest.raises(ReplicatorClosed):
        await leader.rep.propose_and_wait(b"never durable")
    assert isinstance(leader.rep.failed, OSError)
    with pytest.raises(ReplicatorClosed):
        await leader.rep.read_barrier()
    rest = [n for n in IDS if n != leader.node_id]
    new = await cluster.leader(rest)
    assert await new.rep.propose_and_wait(b"fine") == (new.rep.log.last_index(), b"fine")
    # The leader sent its append before its own write failed (followers write in parallel), so the entry may
    # still be committed by the next leader, as after any leader crash: the client got a retryable error, and
    # either way both remaining nodes hold the same history.
    agreed = await cluster.converged(rest)
    assert agreed[-1] == b"fine" and set(agreed) <= {b"never durable", b"fine"}
