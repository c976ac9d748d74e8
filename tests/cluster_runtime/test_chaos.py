"""Seeded chaos on an in-process 3-node cluster: crashes, restarts, partitions and transfers under load.

After every run the checker proves: each node applied the same sequence; every acknowledged proposal is in it; it
holds nothing that was never proposed, and nothing twice (the runtime never re-sends an ambiguous proposal).
"""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import pytest

from tests.cluster_runtime.harness import FAST, Cluster
from tests.cluster_runtime.test_membership import Load

IDS = ["n1", "n2", "n3"]


@pytest.mark.parametrize("seed", [7])
async def test_chaos_loses_nothing_acknowledged(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    c = Cluster(tmp_path, replace(FAST, snapshot_every=150, keep_log_entries=20, election_wait_s=3.0))
    await c.start(IDS)
    try:
        await c.leader()
        load = Load(c, list(IDS), workers=8)
        actions = ["crash", "crash", "partition", "partition", "transfer"]
        rng.shuffle(actions)  # every kind of fault in every run, in a seeded order
        for step, action in enumerate(actions):
            before = len(load.acked)
            await c.wait_for(lambda b=before: len(load.acked) >= b + 30, what=f"progress before step {step}")
            victim = rng.choice(IDS)
            if action == "partition":
                others = {n for n in IDS if n != victim}
                c.nodes[victim].rep.transport.block(others)
                for n in others:
                    c.nodes[n].rep.transport.block({victim})
                await c.leader(sorted(others))
                mid = len(load.acked)
                await c.wait_for(lambda m=mid: len(load.acked) >= m + 20, what="progress during the partition")
                for n in IDS:
                    c.nodes[n].rep.transport.block(set())
            elif action == "transfer":
                leader = await c.leader()
                if victim != leader.node_id:
                    await leader.rep.transfer_leader(victim)
            else:
                load.targets[:] = [n for n in IDS if n != victim]
                await c.nodes[victim].stop(hand_over=rng.random() < 0.5)
                await c.leader(load.targets)
                mid = len(load.acked)
                await c.wait_for(lambda m=mid: len(load.acked) >= m + 20, what="progress with a node down")
                await c.restart(victim)
                load.targets[:] = list(IDS)
        await load.stop()
        datas = await c.converged(IDS, timeout=15)
        assert len(datas) == len(set(datas))
        assert set(load.acked) <= set(datas)
        assert set(datas) <= load.sent
        assert len(load.acked) >= 150
    finally:
        await c.stop()
