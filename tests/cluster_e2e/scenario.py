"""Steps shared by the fault tests: start load through every node, finish it, and prove nothing was lost."""

from __future__ import annotations

from tests.cluster_e2e.cluster import Cluster
from tests.cluster_e2e.workload import Workload


def serving(c: Cluster, exclude: tuple[str, ...] = ()) -> list[str]:
    """HTTP endpoints of the running nodes (what a health-checking load balancer would offer clients)."""
    return [c.endpoint(n) for n in c.running() if n not in exclude]


def start_load(c: Cluster, warmup: int = 30) -> Workload:
    """Load through every node, once ``warmup`` sends were acknowledged."""
    c.leader()
    load = Workload(serving(c)).start()
    load.wait_acked(warmup, 60)
    return load


def converged(c: Cluster, timeout: float = 30.0) -> None:
    """Every running node has applied what the leader has committed, and all agree on the membership."""
    leader = c.leader()

    def same() -> bool:
        lead = c.status(leader)
        views = [c.status(n) for n in c.running()]
        return (lead is not None and all(v is not None and v.applied >= lead.commit and v.voters == lead.voters
                                         for v in views))

    c.wait_for(same, timeout, "every running node to apply the leader's log")


def finish_and_check(c: Cluster, load: Workload) -> str:
    """Stop the load, drain every queue through all running nodes, assert the checker's verdict; a summary back."""
    load.stop()
    converged(c)
    load.drain(serving(c))
    verdict = load.verdict()
    summary = load.summary()
    assert verdict.ok, f"{verdict.describe()}\n{summary}\n{c.views()}"
    assert load.history.acked_total > 0
    print(f"\n{summary}")  # shown with -s: how much the run actually did
    return summary
