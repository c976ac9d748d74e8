"""Membership changes with ``raftmq cluster`` against real processes under load: nothing acknowledged is lost.

- add a 4th node (``serve --join`` + ``cluster add-node``), then remove the leader (``cluster remove-node``);
- the wiped-node procedure: a node loses its disk, is removed, starts empty with ``--join``, is added back, and
  catches up.
"""

from __future__ import annotations

from tests.cluster_e2e.cluster import Cluster, describe
from tests.cluster_e2e.scenario import converged, finish_and_check, serving, start_load


def test_add_a_fourth_node_then_remove_the_leader_under_load(cluster3: Cluster) -> None:
    c = cluster3
    load = start_load(c)
    try:
        n4 = c.add_process("n4")
        added = c.cli("n2", "add-node", "n4", "--address", n4.peer_address)
        assert added.returncode == 0 and "added n4" in added.stdout, describe(added)
        load.set_targets(serving(c))
        c.wait_for(lambda: (s := c.status("n4")) is not None and "n4" in s.voters, 10, "n4 to see itself a voter")
        load.wait_acked(40, 60)  # also through n4

        leader = c.leader()
        via = next(n for n in c.ids if n != leader)
        removed = c.cli(via, "remove-node", leader)
        assert removed.returncode == 0 and f"removed {leader}" in removed.stdout, describe(removed)
        load.set_targets(serving(c, exclude=(leader,)))
        remaining = tuple(sorted(n for n in [*c.ids, "n4"] if n != leader))
        c.wait_for(lambda: all((s := c.status(n)) is not None and s.voters == remaining for n in remaining), 15,
                   f"{remaining} to apply the removal of {leader}")
        c.stop(leader)  # graceful, exit code 0: it is no member any more
        assert c.leader(list(remaining)) in remaining
        load.wait_acked(40, 60)
    finally:
        load.stop()
    finish_and_check(c, load)
    converged(c)


def test_a_wiped_node_is_removed_rejoins_empty_and_catches_up(cluster3: Cluster) -> None:
    c = cluster3
    load = start_load(c)
    try:
        leader = c.leader()
        lost = next(n for n in c.ids if n != leader)
        c.kill9(lost)
        c.wipe(lost)
        load.set_targets(serving(c))
        removed = c.cli(leader, "remove-node", lost)
        assert removed.returncode == 0, describe(removed)
        load.wait_acked(30, 60)

        node = c.add_process(lost)  # same id and address, empty data dir, --join
        added = c.cli(leader, "add-node", lost, "--address", node.peer_address)
        assert added.returncode == 0, describe(added)
        load.set_targets(serving(c))
        c.wait_caught_up(lost)
        status = c.status(lost)
        assert status is not None and lost in status.voters and status.learners == ()
        load.wait_acked(30, 60)
    finally:
        load.stop()
    finish_and_check(c, load)
