"""Replicated proposals/s of a 3-process RaftReplicator cluster on this machine, and the leader's CPU per proposal.

    python -m tests.cluster_runtime.bench_replicator --concurrency 256 --proposals 10000

Three processes each run a RaftReplicator (real LMDB with fsync, gRPC on 127.0.0.1) with the tests' ListMachine.
The process that ends up leading drives ``--concurrency`` concurrent ``propose_and_wait`` loops itself (no client
network hop, so the figure is the replication layer alone) and prints proposals/s and its own CPU (user + system)
per proposal. Not a test: it is not collected by pytest.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc

from cluster.runtime import RaftReplicator, RaftSettings, parse_peers
from cluster.transport import SERVER_OPTIONS
from storage.lmdb_store import LmdbStore
from tests.cluster_runtime.harness import ListMachine

IDS = ("n1", "n2", "n3")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def _node(node_id: str, data_dir: str, peers_text: str, total: int, concurrency: int, size: int,
                done_file: str) -> None:
    peers = parse_peers(peers_text)
    server = grpc.aio.server(options=SERVER_OPTIONS)
    server.add_insecure_port(peers[node_id])
    store = LmdbStore(data_dir)
    rep = RaftReplicator(store, ListMachine(), RaftSettings(node_id, peers, snapshot_every=10**9))
    rep.register(server)
    await server.start()
    rep.start()
    try:
        while not rep.leader:
            await asyncio.sleep(0.05)
        if rep.is_leader:
            await _drive(rep, total, concurrency, size)
            Path(done_file).touch()
        else:
            while not os.path.exists(done_file):
                await asyncio.sleep(0.05)
    finally:
        await rep.stop(hand_over=False)
        await server.stop(None)
        store.close()


async def _drive(rep: RaftReplicator, total: int, concurrency: int, size: int) -> None:
    payload = b"x" * size
    for _ in range(200):  # warm-up
        await rep.propose_and_wait(payload)
    sent = 0

    async def worker() -> None:
        nonlocal sent
        while sent < total:
            sent += 1
            await rep.propose_and_wait(payload)

    r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed, r1 = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    print(f"3 nodes, leader {rep.node_id}: concurrency={concurrency} payload={size} B: {sent / elapsed:,.0f} "
          f"proposals/s, leader CPU {cpu / sent * 1e6:.0f} us/proposal", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--proposals", type=int, default=10_000)
    parser.add_argument("--payload", type=int, default=300)
    parser.add_argument("--node", nargs=3, metavar=("ID", "DIR", "PEERS"), help=argparse.SUPPRESS)
    parser.add_argument("--done", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.node:
        logging.disable(logging.WARNING)
        node_id, data_dir, peers = args.node
        asyncio.run(_node(node_id, data_dir, peers, args.proposals, args.concurrency, args.payload, args.done))
        return
    with tempfile.TemporaryDirectory() as root:
        peers = ",".join(f"{i}=127.0.0.1:{_free_port()}" for i in IDS)
        done = os.path.join(root, "done")
        common = ["--concurrency", str(args.concurrency), "--proposals", str(args.proposals), "--payload",
                  str(args.payload), "--done", done]
        procs = [subprocess.Popen([sys.executable, "-m", "tests.cluster_runtime.bench_replicator", "--node", i,
                                   os.path.join(root, i), peers, *common]) for i in IDS]
        try:
            for p in procs:
                p.wait(timeout=300)
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()


if __name__ == "__main__":
    main()
