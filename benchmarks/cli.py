"""Command line: ``python -m benchmarks run SCENARIO [options]`` and ``python -m benchmarks list``.

Where the server comes from: ``--target URL`` (already running; its pid is found through ``/proc`` when it listens
locally, or given with ``--server-pid``), ``--spawn-server`` (``raftmq serve`` on a temp dir and port 0, stopped
afterwards; ``--server-profile OUT`` runs it under cProfile) or ``--spawn-cmd 'CMD ... {port}'`` (any other
server, e.g. moto, for a baseline measured the same way).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import platform
import shlex
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

from benchmarks import procstat, report, runner, summarize
from benchmarks.awsjson import Target
from benchmarks.cluster import SpawnedCluster
from benchmarks.scenarios import SCENARIOS
from benchmarks.server import SpawnedCommand, SpawnedServer

_LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "0.0.0.0", "[::1]"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description="RaftMQ load harness")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list the scenarios")
    rep = sub.add_parser("report", help="result JSON files -> Markdown table with ratios + SVG charts")
    rep.add_argument("files", nargs="+", help="result files written by run --json")
    rep.add_argument("--label", action="append", default=[], help="label of each file, in order (default: name)")
    rep.add_argument("--out", help="directory for summary.md, timeline.svg and latency.svg")
    cmp = sub.add_parser("compare", help="run one scenario against several targets in one session, then report",
                         description="Every option after the targets is passed to `run SCENARIO` for each "
                                     "target, e.g. `compare sqs-cycle --peer raftmq=spawn-server --peer "
                                     "moto='cmd:moto_server -p {port}' --out DIR -- --duration 10 --repeat 3`.")
    cmp.add_argument("scenario", choices=sorted(SCENARIOS))
    cmp.add_argument("--peer", action="append", required=True, metavar="LABEL=WHERE",
                     help="WHERE: spawn-server, cluster:N, cluster-spread:N, cmd:COMMAND ({port}), or http://URL")
    cmp.add_argument("--out", required=True, help="directory for each target's JSON, summary.md and the charts")
    run = sub.add_parser("run", help="run a scenario")
    scen = run.add_subparsers(dest="scenario", required=True, metavar="SCENARIO")
    for spec in SCENARIOS.values():
        p = scen.add_parser(spec.name, help=spec.help, description=spec.help)
        _add_common(p)
        spec.add_arguments(p)
    return parser


def _add_common(p: argparse.ArgumentParser) -> None:
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--target", help="endpoint of a running server, e.g. http://127.0.0.1:4566")
    where.add_argument("--spawn-server", action="store_true", help="start raftmq serve on a temp dir and port 0")
    where.add_argument("--spawn-cmd", help="start this server command ({port} = a free port) for a baseline")
    where.add_argument("--spawn-cluster", type=int, metavar="N",
                       help="start N raftmq serve nodes as one cluster on 127.0.0.1; load goes to the leader")
    p.add_argument("--spread", action="store_true",
                   help="with --spawn-cluster: spread the connections over all nodes instead of the leader")
    p.add_argument("--grpc-target", metavar="HOST:PORT",
                   help="with --target: the server's gRPC address (needed by the grpc-* scenarios)")
    p.add_argument("--server-pid", type=int, help="pid whose CPU to measure (default: found via /proc)")
    p.add_argument("--server-profile", metavar="OUT", help="with --spawn-server: cProfile the server into OUT")
    p.add_argument("--server-arg", action="append", default=[], help="extra argument for raftmq serve (repeatable)")
    p.add_argument("--processes", type=int, default=2, help="worker processes (default 2)")
    p.add_argument("--connections", type=int, default=32, help="connections per worker process (default 32)")
    p.add_argument("--duration", type=float, default=20.0, help="seconds per run (default 20)")
    p.add_argument("--warmup", type=float, default=0.0,
                   help="seconds of load before the measured window, excluded from all figures (default 0)")
    p.add_argument("--rate", type=float, metavar="R",
                   help="open loop: R units/s (e.g. msgs/s) on a fixed schedule, latency also timed from each "
                        "operation's intended start; default: closed loop, as fast as the server answers")
    p.add_argument("--repeat", type=int, default=1, help="runs to make; the summary gives medians (default 1)")
    p.add_argument("--json", metavar="OUT", help="write all runs and their medians as JSON")
    p.add_argument("--region", default="us-east-1")
    p.add_argument("--access-key", default=Target.__dataclass_fields__["access_key"].default)
    p.add_argument("--secret-key", default=Target.__dataclass_fields__["secret_key"].default)
    p.add_argument("--no-progress", action="store_true", help="no per-second progress lines")
    p.add_argument("--no-uvloop", action="store_true", help="use asyncio's default loop in the workers")


def machine_info() -> dict[str, Any]:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {"date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"), "nproc": os.cpu_count(),
            "cpu_model": model, "python": platform.python_version(), "platform": platform.platform()}


@dataclass(frozen=True)
class ServerUnderTest:
    """Where the load goes and which processes' CPU is read."""

    endpoint: str
    pid: int | None
    alternates: tuple[str, ...] = ()  # more endpoints to spread connections over
    node_pids: tuple[tuple[str, int], ...] = ()  # every node of a spawned cluster
    grpc: str = ""  # HOST:PORT of the gRPC API of ``endpoint``'s server, when known
    grpc_alternates: tuple[str, ...] = ()  # the gRPC addresses of ``alternates``


@contextlib.contextmanager
def _server(args: argparse.Namespace) -> Iterator[ServerUnderTest]:
    if args.spawn_cluster is not None:
        with SpawnedCluster(args.spawn_cluster, args.server_arg) as cluster:
            leader = cluster.leader
            print(f"spawned cluster: peers={cluster.peers}, leader {leader.node_id} at {leader.endpoint} "
                  f"(pid {leader.pid})", file=sys.stderr)
            others = [n for n in cluster.nodes if n is not leader] if args.spread else []
            yield ServerUnderTest(leader.endpoint, args.server_pid or leader.pid,
                                  tuple(n.endpoint for n in others), tuple((n.node_id, n.pid) for n in cluster.nodes),
                                  leader.grpc, tuple(n.grpc for n in others))
            codes = cluster.stop()
        print(f"cluster stopped with exit codes {codes}", file=sys.stderr)
        return
    with _single_server(args) as server:
        yield server


@contextlib.contextmanager
def _single_server(args: argparse.Namespace) -> Iterator[ServerUnderTest]:
    """Yields the one server (endpoint, pid to measure, gRPC address when known) once."""
    if args.spawn_server:
        with SpawnedServer(args.server_arg, profile_out=args.server_profile) as srv:
            print(f"spawned: {srv.ready_line}", file=sys.stderr)
            yield ServerUnderTest(srv.endpoint, args.server_pid or srv.pid, grpc=srv.grpc)
        print(f"server stopped with exit code {srv.returncode}", file=sys.stderr)
    elif args.spawn_cmd:
        with SpawnedCommand(args.spawn_cmd) as cmd:
            print(f"spawned: {shlex.join(cmd.argv)} (pid {cmd.pid})", file=sys.stderr)
            yield ServerUnderTest(cmd.endpoint, args.server_pid or cmd.pid, grpc=args.grpc_target or "")
    else:
        pid = args.server_pid
        parts = urlsplit(args.target)
        if pid is None and parts.hostname in _LOCAL_HOSTS and parts.port:
            pid = procstat.find_listening_pid(parts.port)
        yield ServerUnderTest(args.target, pid, grpc=args.grpc_target or "")


def where_args(where: str) -> list[str]:
    """``run`` options that select the server a ``--peer LABEL=WHERE`` names."""
    if where == "spawn-server":
        return ["--spawn-server"]
    kind, _, rest = where.partition(":")
    if kind == "cluster" and rest.isdigit():
        return ["--spawn-cluster", rest]
    if kind == "cluster-spread" and rest.isdigit():
        return ["--spawn-cluster", rest, "--spread"]
    if kind == "cmd" and rest:
        return ["--spawn-cmd", rest]
    if where.startswith("http://"):
        return ["--target", where]
    raise SystemExit(f"cannot tell where {where!r} is: use spawn-server, cluster:N, cluster-spread:N, cmd:..., "
                     "or http://...")


def compare(args: argparse.Namespace) -> int:
    """Run the scenario against each peer in turn (same options, same session), then print the ratios."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    run_args: list[str] = args.run_args
    peers = []
    for peer in args.peer:
        label, sep, where = peer.partition("=")
        if not sep or not label:
            raise SystemExit(f"--peer wants LABEL=WHERE, got {peer!r}")
        peers.append((label, where_args(where)))
    codes, files = [], []
    for label, server_args in peers:
        path = out / f"{label}.json"
        print(f"=== {label}", flush=True)
        codes.append(main(["run", args.scenario, *server_args, *run_args, "--json", str(path)]))
        if path.exists():
            files.append((label, path))
    print(summarize.write(summarize.load([p for _, p in files], [lbl for lbl, _ in files]), out), flush=True)
    return max(codes, default=1)


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    passed: list[str] = []
    if words[:1] == ["compare"] and "--" in words:  # compare's own options, then -- and those of each run
        cut = words.index("--")
        words, passed = words[:cut], words[cut + 1:]
    args = build_parser().parse_args(words)
    args.run_args = passed
    if args.command == "list":
        for spec in SCENARIOS.values():
            print(f"{spec.name:<16}{spec.help}")
        return 0
    if args.command == "report":
        loaded = summarize.load(args.files, args.label)
        if args.out:
            print(summarize.write(loaded, Path(args.out)))
        else:
            print(summarize.markdown_table(loaded))
        return 0
    if args.command == "compare":
        return compare(args)
    if args.repeat < 1:
        raise SystemExit("--repeat must be >= 1")
    spec = SCENARIOS[args.scenario]
    results: list[runner.RunResult] = []
    if args.spread and args.spawn_cluster is None:
        raise SystemExit("--spread needs --spawn-cluster")
    with _server(args) as server:
        endpoint = server.endpoint
        if server.pid is None:
            print("server pid unknown: CPU per message will not be reported (use --server-pid)", file=sys.stderr)
        target = Target(endpoint, args.region, args.access_key, args.secret_key, server.alternates, server.grpc,
                        server.grpc_alternates)
        config = runner.RunConfig(args.processes, args.connections, args.duration, server.pid,
                                  not args.no_progress, not args.no_uvloop, args.warmup, server.node_pids,
                                  args.rate)
        for i in range(args.repeat):
            result = runner.run(spec.from_args(args), target, config)
            results.append(result)
            print(f"--- run {i + 1}/{args.repeat}\n{report.summary(result)}", flush=True)
    if len(results) > 1:
        print(report.median_summary(results), flush=True)
    if args.json:
        extra = {"command": shlex.join(["python", "-m", "benchmarks", *(argv or sys.argv[1:])]),
                 "endpoint": endpoint, "endpoints": [endpoint, *server.alternates], "machine": machine_info()}
        Path(args.json).write_bytes(orjson.dumps(report.to_json(results, extra), option=orjson.OPT_INDENT_2))
    failed = any(r.failures for r in results) or not any(r.total for r in results)
    return 1 if failed else 0
