"""gRPC plumbing shared by the ``grpc-*`` scenarios: one raw ``grpc.aio`` channel per connection, timed unary calls.

Why raw stubs and not ``broker.client``: the convenience client retries, batches and follows leaders, which would
hide exactly what the benchmark must see (every failed call, every round trip). Each benchmark connection gets its
own channel with a local subchannel pool, so N connections are N TCP connections (gRPC would otherwise share one
connection between channels of a process with the same target and options) and the server sees the concurrency the
options say. Failures are counted as ``Call:Code``, where Code is the AWS error code of the ``raftmq-error-bin``
detail when the server sent one, else the gRPC status name (``UNAVAILABLE``, ``DEADLINE_EXCEEDED``, ...).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc

from benchmarks.awsjson import Target
from benchmarks.stats import WorkerStats
from proto.broker.v1 import errors_pb2, queues_pb2_grpc, streams_pb2_grpc

DETAIL_KEY = "raftmq-error-bin"
MAX_MESSAGE_BYTES = 64 * 1024 * 1024  # a Receive of 1,000 large bodies must not hit gRPC's 4 MiB default
CALL_TIMEOUT_S = 30.0
BACKOFF_S = 0.05  # after UNAVAILABLE, so a dead or electing server does not turn the generator into a busy loop

Response = TypeVar("Response")


class NoGrpcAddress(ValueError):
    """The target has no gRPC address: the scenario cannot run against it."""


def channel(target: Target) -> grpc.aio.Channel:
    """A fresh channel (its own TCP connection) to the target's gRPC address."""
    if not target.grpc:
        raise NoGrpcAddress("gRPC scenarios need the server's gRPC address: use --spawn-server, --spawn-cluster N, "
                            "or --target URL with --grpc-target HOST:PORT")
    return grpc.aio.insecure_channel(target.grpc, options=[
        ("grpc.use_local_subchannel_pool", 1),
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ])


def queues_stub(chan: grpc.aio.Channel) -> Any:
    """The Queues stub (``Any``: the generated stub module has no type hints)."""
    return queues_pb2_grpc.QueuesStub(chan)  # type: ignore[no-untyped-call]


def streams_stub(chan: grpc.aio.Channel) -> Any:
    """The Streams stub (``Any``: the generated stub module has no type hints)."""
    return streams_pb2_grpc.StreamsStub(chan)  # type: ignore[no-untyped-call]


def error_code(exc: grpc.aio.AioRpcError) -> str:
    """The AWS error code of the failure when the server sent its detail, else the gRPC status name."""
    for key, value in exc.trailing_metadata() or ():
        if key == DETAIL_KEY and isinstance(value, bytes):
            detail = errors_pb2.ErrorDetail()
            try:
                detail.ParseFromString(value)
            except Exception:  # a malformed detail still leaves the status code to report
                break
            if detail.code:
                return detail.code
    code = exc.code()
    return code.name if code is not None else "UNKNOWN"


async def timed_rpc(call: str, method: Callable[..., Awaitable[Response]], request: object, stats: WorkerStats,
                    intended_ns: int | None = None, timeout: float = CALL_TIMEOUT_S) -> Response | None:
    """Call the unary ``method`` (a stub attribute) with ``request``; record its latency under ``call`` (and
    from ``intended_ns`` under ``call@intended``); count a failure as ``call:Code``, returning None, never raise."""
    start = time.perf_counter_ns()
    try:
        response = await method(request, timeout=timeout)
    except grpc.aio.AioRpcError as exc:
        stats.error(f"{call}:{error_code(exc)}")
        if exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNKNOWN):
            await asyncio.sleep(BACKOFF_S)
        return None
    end = time.perf_counter_ns()
    stats.record(call, (end - start) // 1000)
    if intended_ns is not None:
        stats.record(f"{call}@intended", (end - intended_ns) // 1000)
    return response
