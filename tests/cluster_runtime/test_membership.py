"""Membership changes under load and a 5-node cluster that loses two: nothing acknowledged is lost."""

from __future__ import annotations

import asyncio
from pathlib import Path

from cluster.api import NotLeader
from cluster.forwarding import AdminClient
from cluster.local import ReplicatorClosed
from tests.cluster_runtime.harness import FAST, Cluster


class Load:
    """Workers proposing unique commands through the nodes in ``targets`` until stopped; records what was
    acknowledged and everything that was ever proposed (a failed proposal may still have been applied)."""

    def __init__(self, c: Cluster, targets: list[str], workers: int = 6) -> None:
        self.c = c
        self.targets = targets
        self.acked: list[bytes] = []
        self.sent: set[bytes] = set()
        self.failures = 0
        self._stop = asyncio.Event()
        self._tasks = [asyncio.create_task(self._work(w)) for w in range(workers)]

    async def _work(self, w: int) -> None:
        n = 0
        while not self._stop.is_set():
            data = f"w{w}-{n}".encode()
            n += 1
            node = self.c.nodes[self.targets[n % len(self.targets)]]
            self.sent.add(data)
            try:
                await node.rep.propose_and_wait(data)
            except (NotLeader, ReplicatorClosed):  # no leader for a moment, or we asked a node being stopped
                self.failures += 1
                continue
            self.acked.append(data)

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)


async def test_add_a_fourth_node_and_remove_the_first_under_load(tmp_path: Path) -> None:
    c = Cluster(tmp_path, FAST)
    await c.start(["n1", "n2", "n3"])
    try:
        await c.leader()
        load = Load(c, ["n1", "n2", "n3"])
        await c.wait_for(lambda: len(load.acked) >= 50, what="load before the change")
        await c.restart("n4", join=True)
        admin = AdminClient(c.addr("n2"))
        try:
            await admin.add_node("n4", c.addr("n4"))
            load.targets[:] = ["n2", "n3", "n4"]
            acked_before_removal = len(load.acked)
            await c.wait_for(lambda: len(load.acked) >= acked_before_removal + 50, what="load with four nodes")
            await admin.remove_node("n1")
        finally:
            await admin.close()
        await c.nodes["n1"].stop()
        remaining = ["n2", "n3", "n4"]
        await c.wait_for(lambda: all(c.nodes[n].rep.status().voters == tuple(remaining) for n in remaining),
                         what="every remaining node applying the removal")
        await c.leader(remaining)
        acked_after = len(load.acked)
        await c.wait_for(lambda: len(load.acked) >= acked_after + 50, what="load after removing n1")
        await load.stop()
        datas = await c.converged(remaining)
        assert len(datas) == len(set(datas))  # each command applied once
        assert set(load.acked) <= set(datas)  # nothing acknowledged was lost
        assert set(datas) <= load.sent  # nothing applied that was never proposed
        assert c.nodes["n4"].rep.status().learners == ()
    finally:
        await c.stop()


async def test_five_nodes_survive_losing_two_including_the_leader(tmp_path: Path) -> None:
    ids = ["n1", "n2", "n3", "n4", "n5"]
    c = Cluster(tmp_path, FAST)
    await c.start(ids)
    try:
        leader = await c.leader()
        load = Load(c, ids)
        await c.wait_for(lambda: len(load.acked) >= 50, what="load on five nodes")
        victims = [leader.node_id, next(n for n in ids if n != leader.node_id)]
        rest = [n for n in ids if n not in victims]
        load.targets[:] = rest
        await asyncio.gather(*(c.nodes[v].stop() for v in victims))
        await c.leader(rest)
        acked = len(load.acked)
        await c.wait_for(lambda: len(load.acked) >= acked + 50, what="load on three of five")
        await load.stop()
        datas = await c.converged(rest)
        assert set(load.acked) <= set(datas)
        assert set(datas) <= load.sent
        assert len(datas) == len(set(datas))
    finally:
        await c.stop()
