"""A node's configuration: what the command line (and later a TOML file) sets."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class NodeConfig:
    data_dir: str = "./data"
    host: str = "127.0.0.1"
    port: int = 4566
    grpc_port: int = 50051
    node_id: str = "n1"
    account_id: str = "000000000000"
    region: str = "us-east-1"
    # scheme://host[:port] used in queue URLs instead of the Host the client used (behind a proxy, say).
    public_endpoint: str | None = None
    shutdown_grace_s: float = 10.0
    # A cluster member: "n1=HOST:GRPC_PORT,n2=...". None: a one-node broker on the local group-commit log.
    peers: str | None = None
    join: bool = False  # join an existing cluster (a node added later, or one whose data was wiped)
    raft_tick_s: float = 0.1
    raft_election_ticks: int = 10
    # Accounts, users, access keys and policies (broker.auth); None: dev mode, allowed on loopback only.
    credentials_file: str | None = None
    insecure: bool = False  # dev mode (any credentials) even on a non-loopback address
    # TLS (broker/tls.py): HTTPS and gRPC-over-TLS for clients; mutual TLS between cluster members.
    tls_cert: str | None = None
    tls_key: str | None = None
    cluster_ca: str | None = None
    node_cert: str | None = None
    node_key: str | None = None
    # Raft refuses messages and streams of any other cluster id: give each cluster its own.
    cluster_id: str = "raftmq"
    # Encryption at rest (broker/kms): the key file; None: only the AWS-managed keys, derived from cluster secrets.
    kms_keys_file: str | None = None
    # Abuse limits (broker/limits_wiring.py, docs/security.md): 0 turns a timeout or the connection cap off.
    max_connections: int = 10_000
    max_body_bytes: str | None = None  # "sqs=4M,kinesis=15M": per-service body caps over the defaults
    header_timeout_s: float = 20.0
    body_timeout_s: float = 20.0
    idle_timeout_s: float = 75.0
    max_request_rate: float | None = None  # requests/s per access key (per address in dev mode); None: no limit
    request_burst: float | None = None  # None: one second's worth
