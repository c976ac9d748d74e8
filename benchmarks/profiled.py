"""Run a server entry point under cProfile: ``python -m benchmarks.profiled OUT module:func -- ARGS...``.

Used by ``--server-profile``: the stats are dumped when the server returns after SIGTERM/SIGINT (graceful shutdown),
so the profile covers the whole run. The timer is the main thread's CPU time, not wall time: on a shared 2-core
machine wall time charges preemption by other processes to whatever function was running, and CPU-us per message
is the figure we want to explain (time spent waiting in the event loop's poll therefore counts almost nothing).
With an empty OUT it just runs the entry point (no ``raftmq`` script needed).
This module is the only place in ``benchmarks`` that loads server code, and only inside the server's process.
"""

from __future__ import annotations

import cProfile
import importlib
import sys
import time


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[2] != "--":
        print("usage: python -m benchmarks.profiled OUT module:func -- ARGS...", file=sys.stderr)
        return 2
    out, entry, args = argv[0], argv[1], argv[3:]
    module_name, func_name = entry.split(":", 1)
    func = getattr(importlib.import_module(module_name), func_name)
    sys.argv = [entry, *args]
    if not out:
        return int(func() or 0)
    profiler = cProfile.Profile(time.thread_time)
    code: int = 0
    try:
        code = int(profiler.runcall(func) or 0)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        profiler.dump_stats(out)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
