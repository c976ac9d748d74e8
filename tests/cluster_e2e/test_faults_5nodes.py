"""Five real nodes lose two at once (the leader by kill -9, a follower by SIGSTOP) and keep serving; nothing
acknowledged is lost. Then the same with a two-node partition through the proxy."""

from __future__ import annotations

from tests.cluster_e2e.cluster import Cluster
from tests.cluster_e2e.scenario import finish_and_check, serving, start_load


def test_five_nodes_keep_serving_with_the_leader_killed_and_a_follower_frozen(cluster5: Cluster) -> None:
    c = cluster5
    load = start_load(c)
    try:
        killed = c.leader()
        frozen = next(n for n in c.ids if n != killed)
        c.kill9(killed)
        c.sigstop(frozen)
        load.set_targets(serving(c))
        survivors = [n for n in c.ids if n not in (killed, frozen)]
        assert c.leader(survivors) in survivors
        load.wait_acked(50, 60)  # three of five are a majority: the cluster serves on
        c.restart(killed)
        c.sigcont(frozen)
        load.set_targets(serving(c))
        c.wait_caught_up(killed)
        c.wait_caught_up(frozen)
        load.wait_acked(30, 60)
    finally:
        load.stop()
    finish_and_check(c, load)


def test_five_nodes_keep_serving_while_two_are_partitioned_away(cluster5: Cluster) -> None:
    c = cluster5
    load = start_load(c)
    try:
        leader = c.leader()
        minority = [leader, next(n for n in c.ids if n != leader)]
        majority = [n for n in c.ids if n not in minority]
        for node in minority:
            c.proxy.isolate(node, majority)  # the two still reach each other, but they are only two of five
        load.set_targets([c.endpoint(n) for n in majority])
        assert c.leader(majority) in majority
        load.wait_acked(50, 60)
        c.proxy.heal()
        load.set_targets(serving(c))
        for node in minority:
            c.wait_caught_up(node)
        load.wait_acked(30, 60)
    finally:
        load.stop()
    finish_and_check(c, load)
