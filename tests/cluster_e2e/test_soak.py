"""A seeded sequence of faults on 3 real nodes under load; a few rounds in CI, many with RAFTMQ_SLOW=1.

Each round picks a fault (kill -9 and restart, SIGSTOP/SIGCONT, a full or one-way partition, slow links, a
leadership transfer) and a victim, proves the cluster keeps serving (with RAFTMQ_SLOW=1 for at least 10 s per
fault), heals, and waits for the victim to catch up. The checker runs once at the end over the whole history.
RAFTMQ_SEED replays a failing run.
"""

from __future__ import annotations

import os
import random

import pytest

from tests.cluster_e2e.cluster import Cluster
from tests.cluster_e2e.conftest import SLOW
from tests.cluster_e2e.proxy import DROP, delay
from tests.cluster_e2e.scenario import finish_and_check, serving, start_load
from tests.cluster_e2e.workload import Workload

HOLD_S = 10.0 if SLOW else 0.0  # how long each fault lasts at least in the full soak
FAULTS = ("kill9", "sigstop", "partition", "deaf", "slow", "transfer")


def _round(c: Cluster, load: Workload, fault: str, rng: random.Random) -> None:
    leader = c.leader()
    victim = leader if rng.random() < 0.6 else rng.choice([n for n in c.ids if n != leader])
    others = [n for n in c.ids if n != victim]
    if fault == "kill9":
        c.kill9(victim)
        load.set_targets(serving(c))
        c.leader(others)
        load.wait_acked(20, 60, at_least_s=HOLD_S)
        c.restart(victim)
    elif fault == "sigstop":
        c.sigstop(victim)
        load.set_targets(serving(c))
        c.leader(others)
        load.wait_acked(20, 60, at_least_s=HOLD_S)
        c.sigcont(victim)
    elif fault in ("partition", "deaf"):
        if fault == "partition":
            c.proxy.isolate(victim, others)
        else:
            for other in others:
                c.proxy.set_link(other, victim, DROP)
        load.set_targets([c.endpoint(n) for n in others])
        c.leader(others)
        load.wait_acked(20, 60, at_least_s=HOLD_S)
        c.proxy.heal()
    elif fault == "slow":
        for other in others:
            c.proxy.isolate(victim, [other], delay(0.1))
        load.wait_acked(20, 60, at_least_s=HOLD_S)
        c.proxy.heal()
    else:
        target = rng.choice(others)
        proc = c.cli(leader, "transfer-leader", target)
        assert proc.returncode == 0, proc.stderr
        load.wait_acked(20, 60, at_least_s=HOLD_S)
    load.set_targets(serving(c))
    c.wait_caught_up(victim)


@pytest.mark.slow
def test_seeded_fault_rounds_lose_nothing(cluster3: Cluster) -> None:
    seed = int(os.environ.get("RAFTMQ_SEED", "20261128"))
    rng = random.Random(seed)
    rounds = 12 if SLOW else 2
    faults = [rng.choice(FAULTS) for _ in range(rounds)]
    c = cluster3
    load = start_load(c)
    try:
        for fault in faults:
            _round(c, load, fault, rng)
    finally:
        load.stop()
    finish_and_check(c, load)
    print(f"seed={seed} faults={faults}")
