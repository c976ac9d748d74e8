"""The ``raftmq`` command line: a contract that scripts and tests rely on (see README)."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import signal
import sys
from collections.abc import Sequence

from broker.certs import add_commands as add_cert_commands
from broker.certs import run as run_certs
from broker.cluster_cli import add_commands, run_admin, run_dev_cluster
from broker.config import NodeConfig
from broker.logs import configure

log = logging.getLogger("raftmq")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="raftmq", description="RaftMQ: SQS/SNS/Kinesis-compatible broker on Raft")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run a broker node")
    defaults = NodeConfig()
    serve.add_argument("--data-dir", default=defaults.data_dir, help="LMDB data directory (default ./data)")
    serve.add_argument("--host", default=defaults.host, help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=defaults.port, help="HTTP port for the AWS APIs (0: pick one)")
    serve.add_argument("--grpc-port", type=int, default=defaults.grpc_port, help="gRPC port (0: pick one)")
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    serve.add_argument("--account-id", default=defaults.account_id, help="AWS account id the broker reports")
    serve.add_argument("--region", default=defaults.region, help="region used when a request names none")
    serve.add_argument("--public-endpoint", default=None,
                       help="scheme://host[:port] for queue URLs instead of the Host the client used")
    serve.add_argument("--node-id", default=defaults.node_id, help="this node's id")
    serve.add_argument("--peers", default=None,
                       help="cluster members as n1=HOST:GRPC_PORT,n2=...; omitted: a one-node broker")
    serve.add_argument("--join", action="store_true",
                       help="join an existing cluster (a node added later with 'cluster add-node', or with wiped data)")
    serve.add_argument("--raft-tick-ms", type=int, default=int(defaults.raft_tick_s * 1000),
                       help="Raft tick (default 100 ms); elections start after --raft-election-ticks silent ticks")
    serve.add_argument("--raft-election-ticks", type=int, default=defaults.raft_election_ticks)
    serve.add_argument("--credentials", default=None, metavar="FILE",
                       help="accounts/users/access keys/policies (TOML or JSON): every request is SigV4-verified "
                            "and authorized; omitted: dev mode (any credentials), allowed on loopback only")
    serve.add_argument("--insecure", action="store_true",
                       help="allow dev mode (any credentials accepted) on a non-loopback --host")
    tls = serve.add_argument_group("TLS (docs/security.md)")
    tls.add_argument("--tls-cert", default=None, metavar="FILE",
                     help="PEM certificate (chain) for HTTPS and the gRPC client API; needs --tls-key")
    tls.add_argument("--tls-key", default=None, metavar="FILE", help="PEM private key of --tls-cert")
    tls.add_argument("--cluster-ca", default=None, metavar="FILE",
                     help="CA of the cluster: Raft, forwarding and admin use mutual TLS verified against it; the "
                          "client gRPC API then moves to --grpc-port")
    tls.add_argument("--node-cert", default=None, metavar="FILE", help="this node's certificate from --cluster-ca")
    tls.add_argument("--node-key", default=None, metavar="FILE", help="private key of --node-cert")
    tls.add_argument("--cluster-id", default=defaults.cluster_id,
                     help="cluster name; nodes refuse Raft streams and messages of any other cluster id")
    serve.add_argument("--kms-keys", default=None, metavar="FILE",
                       help="key file (TOML or JSON, the same on every node) for SQS SSE and Kinesis stream "
                            "encryption with KMS-like key ids and aliases (docs/security.md)")
    _add_limit_options(serve, defaults)
    add_commands(commands)
    add_cert_commands(commands)
    return parser


def _add_limit_options(serve: argparse.ArgumentParser, defaults: NodeConfig) -> None:
    limits = serve.add_argument_group("abuse limits (docs/security.md); 0 turns a limit off")
    limits.add_argument("--max-connections", type=int, default=defaults.max_connections,
                        help=f"open HTTP connections; the next gets 503 (default {defaults.max_connections})")
    limits.add_argument("--max-body-bytes", default=None, metavar="SERVICE=BYTES,...",
                        help="request body caps per service over the defaults sqs=4M,kinesis=15M,sns=1M,sts=64K")
    limits.add_argument("--header-timeout", type=float, default=defaults.header_timeout_s, metavar="SECONDS",
                        help="a request head must arrive within this (408); default 20")
    limits.add_argument("--body-timeout", type=float, default=defaults.body_timeout_s, metavar="SECONDS",
                        help="a body must arrive within this plus 1 s per 16 KiB (408); default 20")
    limits.add_argument("--idle-timeout", type=float, default=defaults.idle_timeout_s, metavar="SECONDS",
                        help="close keep-alive connections idle this long; default 75")
    limits.add_argument("--max-request-rate", type=float, default=None, metavar="PER_SECOND",
                        help="requests per second per access key (per client address in dev mode); credentials-"
                             "file rate_limit entries override it; default: no limit")
    limits.add_argument("--request-burst", type=float, default=None, metavar="REQUESTS",
                        help="requests at once above --max-request-rate (default: one second's worth)")


def _config(args: argparse.Namespace) -> NodeConfig:
    return NodeConfig(data_dir=args.data_dir, host=args.host, port=args.port, grpc_port=args.grpc_port,
                      node_id=args.node_id, account_id=args.account_id, region=args.region,
                      public_endpoint=args.public_endpoint, peers=args.peers, join=args.join,
                      raft_tick_s=args.raft_tick_ms / 1000, raft_election_ticks=args.raft_election_ticks,
                      credentials_file=args.credentials, insecure=args.insecure, tls_cert=args.tls_cert,
                      tls_key=args.tls_key, cluster_ca=args.cluster_ca, node_cert=args.node_cert,
                      node_key=args.node_key, cluster_id=args.cluster_id, kms_keys_file=args.kms_keys,
                      max_connections=args.max_connections, max_body_bytes=args.max_body_bytes,
                      header_timeout_s=args.header_timeout, body_timeout_s=args.body_timeout,
                      idle_timeout_s=args.idle_timeout, max_request_rate=args.max_request_rate,
                      request_burst=args.request_burst)


# The LMDB writer thread must get the GIL back within a fraction of a millisecond after each fsync, or every commit
# (and so every reply) waits out the default 5 ms switch interval behind the busy event loop.
GIL_SWITCH_INTERVAL_S = 0.0002
# Every message allocates a few dozen tuples and objects; with CPython's default gen-0 threshold (700 allocations)
# the cyclic collector ran thousands of times a second and took ~6% of a busy node's CPU (perf). Few of those
# objects ever form cycles, so collect less often; start-up objects (modules, the restored model) are frozen out of
# collections altogether.
GC_THRESHOLDS = (50_000, 20, 20)


async def _serve(config: NodeConfig) -> int:
    from broker.app import BrokerApp

    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    app = BrokerApp(config)
    await app.start()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    print(app.ready_line(), flush=True)
    try:
        await stop.wait()
        log.info("event=shutdown-requested")
    finally:
        await app.stop()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    configure(getattr(args, "log_level", "warning"))
    if args.command == "serve":
        from broker.datadir import DataDirLocked

        try:
            import uvloop
        except ImportError:  # pragma: no cover - uvloop is a declared dependency; still run without it
            runner = asyncio.run
        else:
            runner = uvloop.run
        try:
            return runner(_serve(_config(args)))
        except (DataDirLocked, OSError, ValueError) as exc:
            log.error("event=start-failed error=%r", str(exc))
            print(f"raftmq: cannot start: {exc}", file=sys.stderr)
            return 1
    if args.command == "cluster":
        return run_admin(args)
    if args.command == "dev-cluster":
        return run_dev_cluster(args)
    if args.command == "certs":
        try:
            return run_certs(args)
        except (OSError, ValueError) as exc:
            print(f"raftmq certs: {exc}", file=sys.stderr)
            return 1
    return 2


if __name__ == "__main__":
    sys.exit(main())
