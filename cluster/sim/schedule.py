"""Random fault schedules: one seed fixes the network's behaviour and every fault, so a failure replays exactly."""

from __future__ import annotations

import random

from cluster.core.types import ConfChangeOp
from cluster.sim.network import NetParams
from cluster.sim.world import SimCluster, SimConfig

CHAOS_TICKS = 120
LIVENESS_TICKS = 300


def make_config(seed: int, nodes: int) -> SimConfig:
    """Per-seed network faults and flow-control limits (tiny windows and chunks reach the corner cases)."""
    rng = random.Random(seed ^ 0x5EED)
    net = NetParams(drop=rng.choice([0.0, 0.02, 0.1, 0.25]), dup=rng.choice([0.0, 0.05, 0.2]),
                    max_delay=rng.choice([0, 1, 2, 3, 6]))
    return SimConfig(nodes=nodes, net=net, max_inflight_msgs=rng.choice([1, 2, 4, 64]),
                     chunk_bytes=rng.choice([5, 24, 4096]), compact_every=rng.choice([4, 12, 40]),
                     compact_keep=rng.choice([0, 3]), interleave=rng.choice([0.0, 0.3]))


def run_seed(seed: int, nodes: int = 3, chaos_ticks: int = CHAOS_TICKS) -> list[str]:
    """Run one random schedule; return the safety and liveness violations found (empty: the seed passed)."""
    return simulate(seed, nodes, chaos_ticks).check.violations


def simulate(seed: int, nodes: int = 3, chaos_ticks: int = CHAOS_TICKS) -> SimCluster:
    """Run one random schedule and return the finished simulation (violations in ``.check``, counts in ``.stats``).

    An exception inside the core (its own assertions: conflicting committed entry, commit beyond the log, ...)
    is a violation too."""
    sim = SimCluster(seed, make_config(seed, nodes))
    try:
        _drive(sim, seed, nodes, chaos_ticks)
    except Exception as exc:  # any internal error is a finding, reported with the seed that replays it
        sim.check.fail(f"exception: {type(exc).__name__}: {exc}")
    return sim


def _drive(sim: SimCluster, seed: int, nodes: int, chaos_ticks: int) -> None:
    rng = random.Random(seed)
    ids = sim.ids
    max_down = (nodes - 1) // 2
    for t in range(chaos_ticks):
        for _ in range(rng.choice([0, 0, 1, 2])):
            sim.propose(f"p{t}.{sim.proposals}".encode())
        x = rng.random()
        down = [n for n in ids if sim.nodes[n].node is None]
        if x < 0.03 and len(down) < max_down:
            victim = rng.choice([n for n in ids if n not in down])
            if rng.random() < 0.5:
                sim.crash(victim)
            else:
                sim.crash_soon(victim)
        elif x < 0.05 and not sim.net.blocked:
            side = set(rng.sample(ids, rng.randint(1, nodes // 2)))
            sim.partition(side, one_way=rng.random() < 0.3)
        elif x < 0.09 and sim.net.blocked:
            sim.heal()
        elif x < 0.10:
            sim.transfer(rng.choice(ids))
        elif x < 0.13:
            _membership(sim, rng)
        elif x < 0.18:
            sim.read(rng.choice(ids), f"r{t}".encode())
        for n in down:
            if rng.random() < 0.1:
                sim.restart(n)
        sim.tick()
        if sim.check.violations:
            return
    sim.heal_all()
    sim.check_liveness(LIVENESS_TICKS)


def _membership(sim: SimCluster, rng: random.Random) -> None:
    """One single-server change: remove a voter, re-add a non-member as a learner, or promote a learner."""
    ld = sim.leader()
    if ld is None or ld.node is None:
        return
    conf = ld.node.conf_state
    outsiders = [n for n in sim.ids if n not in conf.members()]
    choice = rng.random()
    if conf.learners and choice < 0.5:
        sim.conf_change(ConfChangeOp.PROMOTE, rng.choice(sorted(conf.learners)))
    elif outsiders and choice < 0.8:
        sim.conf_change(ConfChangeOp.ADD_LEARNER, rng.choice(outsiders))
    elif len(conf.voters) > max(2, len(sim.ids) - 2):
        sim.conf_change(ConfChangeOp.REMOVE, rng.choice(sorted(conf.voters)))
