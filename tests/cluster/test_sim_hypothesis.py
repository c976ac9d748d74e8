"""Hypothesis drives the simulated cluster with schedules of steps, so a failure shrinks to a short script.

A shrunk failure should be kept: copy the printed steps into ``KEPT`` below (it then runs on every test run).
"""

from __future__ import annotations

import os

from hypothesis import given, settings
from hypothesis import strategies as st

from cluster.core.types import ConfChangeOp
from cluster.sim.network import NetParams
from cluster.sim.world import SimCluster, SimConfig

Step = tuple[object, ...]

node = st.integers(min_value=0, max_value=4)
steps = st.lists(
    st.one_of(
        st.tuples(st.just("tick"), st.integers(min_value=1, max_value=15)),
        st.tuples(st.just("propose"), st.integers(min_value=1, max_value=3)),
        st.tuples(st.just("crash"), node),
        st.tuples(st.just("crash-soon"), node),
        st.tuples(st.just("restart"), node),
        st.tuples(st.just("partition"), st.frozensets(node, min_size=1, max_size=2), st.booleans()),
        st.tuples(st.just("heal")),
        st.tuples(st.just("transfer"), node),
        st.tuples(st.just("conf"), st.sampled_from(ConfChangeOp), node),
        st.tuples(st.just("read"), node),
    ),
    max_size=40,
)
nets = st.builds(NetParams, drop=st.sampled_from([0.0, 0.1]), dup=st.sampled_from([0.0, 0.1]),
                 max_delay=st.integers(min_value=0, max_value=3))

# Shrunk failures found by this test, kept as regressions: (nodes, net, steps).
KEPT: list[tuple[int, NetParams, list[Step]]] = [
    # Harness bug: a crash scheduled for the next tick fired during the post-heal liveness phase (heal_all now
    # cancels it), so a node stayed down and the cluster could never converge.
    (3, NetParams(drop=0.0, dup=0.0, max_delay=0), [("crash-soon", 0)]),
]


def run(nodes: int, net: NetParams, script: list[Step], interleave: float = 0.0) -> list[str]:
    sim = SimCluster(1, SimConfig(nodes=nodes, net=net, interleave=interleave))
    ids = sim.ids
    for step in script:
        kind, args = step[0], step[1:]
        if kind == "tick":
            sim.tick(int(args[0]))  # type: ignore[call-overload]
        elif kind == "propose":
            for _ in range(int(args[0])):  # type: ignore[call-overload]
                sim.propose(f"p{sim.proposals}".encode())
        elif kind == "read":
            sim.read(ids[int(args[0]) % nodes], f"r{sim.now}".encode())  # type: ignore[call-overload]
        elif kind in ("crash", "crash-soon", "restart", "transfer"):
            nid = ids[int(args[0]) % nodes]  # type: ignore[call-overload]
            action = {"crash": sim.crash, "crash-soon": sim.crash_soon, "restart": sim.restart,
                      "transfer": sim.transfer}[str(kind)]
            action(nid)
        elif kind == "partition":
            side = {ids[int(i) % nodes] for i in args[0]}  # type: ignore[attr-defined]
            if len(side) < nodes:
                sim.partition(side, one_way=bool(args[1]))
        elif kind == "heal":
            sim.heal()
        elif kind == "conf":
            sim.conf_change(args[0], ids[int(args[1]) % nodes])  # type: ignore[arg-type, call-overload]
        if sim.check.violations:
            return sim.check.violations
    sim.heal_all()
    sim.check_liveness(400)
    return sim.check.violations


def test_kept_schedules() -> None:
    for nodes, net, script in KEPT:
        assert run(nodes, net, script) == []


@settings(max_examples=int(os.environ.get("RAFTMQ_HYPOTHESIS_EXAMPLES", "150")), deadline=None, derandomize=True)
@given(st.sampled_from([3, 5]), nets, steps, st.sampled_from([0.0, 0.5]))
def test_random_schedules(nodes: int, net: NetParams, script: list[Step], interleave: float) -> None:
    assert run(nodes, net, script, interleave) == []
