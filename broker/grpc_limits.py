"""Abuse limits for the node's gRPC server, as ``grpc.aio.server(options=...)`` options.

The gRPC port carries the client API and the cluster's Raft transport, so the limits must leave Raft alone:
its frames stay under ``cluster.transport.MAX_FRAME_BYTES`` (3 MiB) and peers ping idle streams every 20 s
(``CHANNEL_OPTIONS``). Everything here starts from ``cluster.transport.SERVER_OPTIONS`` and overrides only what
``GrpcLimits`` says:

- ``max_receive_bytes``: one request message; a larger one fails with RESOURCE_EXHAUSTED before the handler runs.
- ``max_concurrent_streams``: calls in flight per HTTP/2 connection (streams beyond wait in the client).
- ``max_metadata_bytes``: the header block of a call (SigV4-style tokens included).
- keepalive enforcement: a client pinging more often than ``min_ping_interval_s`` (or pinging with no call open
  when ``permit_ping_without_calls`` is off) gets ``max_ping_strikes`` warnings, then GOAWAY.
- ``max_connection_idle_s``: a connection with no call for this long is closed (clients reconnect by themselves).
- ``max_connection_age_s`` (+ ``age_grace_s``): recycle connections so load spreads after a node joins; the grace
  lets long streams (Kinesis-style subscriptions, gRPC consumers) finish. Off by default: Raft streams are long.
"""

from __future__ import annotations

from dataclasses import dataclass

from cluster.transport import MAX_FRAME_BYTES, SERVER_OPTIONS

GrpcOption = tuple[str, int]


@dataclass(frozen=True, slots=True)
class GrpcLimits:
    max_receive_bytes: int = 16 << 20
    max_concurrent_streams: int = 256
    max_metadata_bytes: int = 16 << 10
    min_ping_interval_s: float = 10.0  # peers ping every 20 s: twice as often is still allowed
    max_ping_strikes: int = 2
    permit_ping_without_calls: bool = True  # Raft peers keep idle streams alive
    max_connection_idle_s: float | None = None
    max_connection_age_s: float | None = None
    age_grace_s: float = 300.0  # a SubscribeToShard-length stream may finish after the age is reached

    def __post_init__(self) -> None:
        if self.max_receive_bytes <= MAX_FRAME_BYTES:
            raise ValueError(f"max_receive_bytes must exceed the Raft frame size ({MAX_FRAME_BYTES} bytes)")
        if self.max_concurrent_streams < 1 or self.max_metadata_bytes < 1024:
            raise ValueError("max_concurrent_streams must be >= 1 and max_metadata_bytes >= 1024")


def grpc_server_options(limits: GrpcLimits | None = None) -> list[GrpcOption]:
    """``cluster.transport.SERVER_OPTIONS`` with ``limits`` applied (later entries win in gRPC's channel args, but
    the list holds each key once so the result reads unambiguously)."""
    limits = limits or GrpcLimits()
    overrides: dict[str, int] = {
        "grpc.max_receive_message_length": limits.max_receive_bytes,
        "grpc.max_concurrent_streams": limits.max_concurrent_streams,
        "grpc.max_metadata_size": limits.max_metadata_bytes,
        "grpc.http2.min_ping_interval_without_data_ms": int(limits.min_ping_interval_s * 1000),
        "grpc.http2.max_ping_strikes": limits.max_ping_strikes,
        "grpc.keepalive_permit_without_calls": int(limits.permit_ping_without_calls),
    }
    if limits.max_connection_idle_s is not None:
        overrides["grpc.max_connection_idle_ms"] = int(limits.max_connection_idle_s * 1000)
    if limits.max_connection_age_s is not None:
        overrides["grpc.max_connection_age_ms"] = int(limits.max_connection_age_s * 1000)
        overrides["grpc.max_connection_age_grace_ms"] = int(limits.age_grace_s * 1000)
    options = [(name, value) for name, value in SERVER_OPTIONS if name not in overrides]
    return [*options, *overrides.items()]
