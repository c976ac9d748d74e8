"""``python -m cluster.sim --seeds N --first-seed S [--nodes 3|5]``: run N random schedules, report violations.

Prints one line ``N seeds, V violations`` and, for each failing seed, the command that replays it (with ``-v``
the violations themselves).
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter

from cluster.sim.schedule import CHAOS_TICKS, simulate


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m cluster.sim", description=__doc__)
    p.add_argument("--seeds", type=int, default=100)
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--nodes", type=int, choices=(3, 5), default=3)
    p.add_argument("--ticks", type=int, default=CHAOS_TICKS, help="ticks of faults before healing")
    p.add_argument("-v", "--verbose", action="store_true", help="print each failing seed's violations")
    p.add_argument("--stats", action="store_true", help="print what the schedules exercised (to stderr)")
    a = p.parse_args(argv)
    failing: list[tuple[int, list[str]]] = []
    stats: Counter[str] = Counter()
    for seed in range(a.first_seed, a.first_seed + a.seeds):
        sim = simulate(seed, a.nodes, a.ticks)
        stats.update(sim.stats)
        if sim.check.violations:
            failing.append((seed, sim.check.violations))
    print(f"{a.seeds} seeds, {len(failing)} violations")
    if a.stats:
        for k, n in sorted(stats.items()):
            print(f"  {k}: {n}", file=sys.stderr)
    for seed, v in failing:
        print(f"  replay: python -m cluster.sim --seeds 1 --first-seed {seed} --nodes {a.nodes} --ticks {a.ticks}")
        if a.verbose:
            for line in v:
                print(f"    {line}")
    return 1 if failing else 0


if __name__ == "__main__":
    sys.exit(main())
