"""``raftmq cluster ...`` (admin over any node's gRPC port) and ``raftmq dev-cluster`` (a local cluster to try)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile

import grpc

from broker.certs import create_ca, issue
from broker.client import AsyncClient
from broker.client.credentials import Credentials
from broker.tls import channel_credentials
from cluster.forwarding import AdminClient
from proto.broker.v1 import admin_pb2


def add_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    admin = commands.add_parser("cluster", help="inspect or change a running cluster (talks to any node)")
    admin.add_argument("--endpoint", default="127.0.0.1:50051", help="gRPC HOST:PORT of any node")
    admin.add_argument("--ca", default=None, metavar="FILE",
                       help="cluster CA: talk mutual TLS to the node's cluster port (with --cert/--key)")
    admin.add_argument("--cert", default=None, metavar="FILE", help="a certificate signed by the cluster CA")
    admin.add_argument("--key", default=None, metavar="FILE", help="private key of --cert")
    admin.add_argument("--access-key", default=os.environ.get("AWS_ACCESS_KEY_ID"),
                       help="an admin's access key for a node started with --credentials: the signed v1 Admin API "
                            "on --endpoint (default: $AWS_ACCESS_KEY_ID)")
    admin.add_argument("--secret-key", default=os.environ.get("AWS_SECRET_ACCESS_KEY"),
                       help="its secret (default: $AWS_SECRET_ACCESS_KEY)")
    actions = admin.add_subparsers(dest="action", required=True)
    actions.add_parser("status", help="leader, term, commit/applied index and lag per node (JSON)")
    add = actions.add_parser("add-node", help="add a node: it joins as a learner, catches up, becomes a voter")
    add.add_argument("node_id")
    add.add_argument("--address", required=True, help="the new node's gRPC HOST:PORT")
    remove = actions.add_parser("remove-node", help="remove a node from the membership")
    remove.add_argument("node_id")
    transfer = actions.add_parser("transfer-leader", help="hand leadership to a node")
    transfer.add_argument("node_id")

    dev = commands.add_parser("dev-cluster", help="start a local cluster on this machine for trying it out")
    dev.add_argument("--nodes", type=int, default=3, choices=[1, 3, 5])
    dev.add_argument("--data-dir", default=None, help="parent directory of the nodes' data (default: a temp dir)")
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--tls", action="store_true",
                     help="make a development CA under the data dir and run HTTPS, gRPC over TLS and mutual TLS "
                          "between the nodes")


def _admin_credentials(args: argparse.Namespace) -> grpc.ChannelCredentials | None:
    if args.ca is None and args.cert is None and args.key is None:
        return None
    if args.ca is None or args.cert is None or args.key is None:
        raise ValueError("--ca, --cert and --key go together (the cluster port requires a client certificate)")
    return channel_credentials(args.ca, args.cert, args.key)


class _SignedAdmin:
    """``AdminClient``'s operations over the v1 Admin API with signed calls (needs raftmq:Admin* rights)."""

    def __init__(self, endpoint: str, credentials: Credentials) -> None:
        self._client = AsyncClient(endpoint, retries=2, credentials=credentials)
        self._status = admin_pb2.ClusterStatusResponse()

    async def status(self) -> _SignedAdmin:
        self._status = await self._client.cluster_status()
        return self

    def as_dict(self) -> dict[str, object]:
        s = self._status
        return {"node_id": s.node_id, "leader": s.leader, "term": s.term, "role": s.role, "commit": s.commit,
                "applied": s.applied, "voters": list(s.voters), "learners": list(s.learners),
                "peers": [{"node_id": p.node_id, "match": p.match, "state": p.state, "learner": p.learner,
                           "recent_active": p.recent_active, "lag": p.lag, "address": p.address} for p in s.peers]}

    async def add_node(self, node_id: str, address: str) -> None:
        await self._client.add_node(node_id, address)

    async def remove_node(self, node_id: str) -> None:
        await self._client.remove_node(node_id)

    async def transfer_leader(self, node_id: str) -> None:
        await self._client.transfer_leadership(node_id)

    async def close(self) -> None:
        await self._client.close()


async def _admin(args: argparse.Namespace) -> int:
    client: AdminClient | _SignedAdmin
    try:
        tls = _admin_credentials(args)
        if tls is None and getattr(args, "access_key", None) and getattr(args, "secret_key", None):
            client = _SignedAdmin(args.endpoint, Credentials(args.access_key, args.secret_key))
        else:
            client = AdminClient(args.endpoint, tls)
    except ValueError as exc:
        print(f"raftmq cluster {args.action}: {exc}", file=sys.stderr)
        return 1
    try:
        if args.action == "status":
            status = await client.status()
            print(json.dumps(status.as_dict(), indent=2))
        elif args.action == "add-node":
            await client.add_node(args.node_id, args.address)
            print(f"added {args.node_id} ({args.address})")
        elif args.action == "remove-node":
            await client.remove_node(args.node_id)
            print(f"removed {args.node_id}")
        elif args.action == "transfer-leader":
            await client.transfer_leader(args.node_id)
            print(f"leadership transferred to {args.node_id}")
        return 0
    except Exception as exc:  # a CLI reports the failure in one line and exits non-zero
        print(f"raftmq cluster {args.action}: {exc}", file=sys.stderr)
        return 1
    finally:
        await client.close()


def run_admin(args: argparse.Namespace) -> int:
    return asyncio.run(_admin(args))


def _free_ports(host: str, count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind((host, 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _dev_pki(tls_dir: str, ids: list[str], host: str) -> None:
    """A development CA, one certificate per node (server and peer) and one for the admin CLI."""
    create_ca(tls_dir)
    hosts = list(dict.fromkeys([host, "localhost"]))
    for node in ids:
        issue(tls_dir, node, hosts)
    issue(tls_dir, "admin", [])


def run_dev_cluster(args: argparse.Namespace) -> int:
    """Start N ``raftmq serve`` processes, print every node's endpoints, stop them all on Ctrl-C/SIGTERM."""
    base = args.data_dir or tempfile.mkdtemp(prefix="raftmq-dev-cluster-")
    ports = _free_ports(args.host, 2 * args.nodes)
    http_ports, grpc_ports = ports[: args.nodes], ports[args.nodes:]
    ids = [f"n{i + 1}" for i in range(args.nodes)]
    peers = ",".join(f"{node}={args.host}:{port}" for node, port in zip(ids, grpc_ports, strict=True))
    tls_dir = os.path.join(base, "tls")
    if args.tls:
        _dev_pki(tls_dir, ids, args.host)
    procs: list[subprocess.Popen[str]] = []
    for node, http_port in zip(ids, http_ports, strict=True):
        cmd = [sys.executable, "-m", "broker.cli", "serve", "--node-id", node, "--peers", peers,
               "--host", args.host, "--port", str(http_port), "--data-dir", os.path.join(base, node)]
        if args.tls:
            cert, key = os.path.join(tls_dir, f"{node}.pem"), os.path.join(tls_dir, f"{node}.key")
            cmd += ["--tls-cert", cert, "--tls-key", key, "--cluster-ca", os.path.join(tls_dir, "ca.pem"),
                    "--node-cert", cert, "--node-key", key, "--grpc-port", "0"]
        procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True))
    try:
        for proc in procs:
            assert proc.stdout is not None
            line = proc.stdout.readline().strip()
            if not line:
                raise RuntimeError("a node exited before it was ready")
            print(line, flush=True)
        print(f"RaftMQ dev cluster: {args.nodes} nodes, peers={peers}, data under {base}; Ctrl-C stops it",
              flush=True)
        if args.tls:
            print(f"RaftMQ dev cluster TLS: ca={tls_dir}/ca.pem admin-cert={tls_dir}/admin.pem "
                  f"admin-key={tls_dir}/admin.key", flush=True)
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
        return 0
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
