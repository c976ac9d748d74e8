"""gRPC server limits: the options keep what the Raft transport needs, and a real server built with them refuses
an oversized message while serving a normal one."""

from __future__ import annotations

import grpc
import pytest

from broker.grpc_limits import GrpcLimits, grpc_server_options
from cluster.transport import MAX_FRAME_BYTES, SERVER_OPTIONS


def test_options_override_the_transport_defaults_once_each() -> None:
    listed = grpc_server_options(GrpcLimits(max_receive_bytes=8 << 20, max_connection_idle_s=60,
                                            max_connection_age_s=3600))
    options = dict(listed)
    assert len(options) == len(listed)
    assert options["grpc.max_receive_message_length"] == 8 << 20
    assert options["grpc.max_send_message_length"] == dict(SERVER_OPTIONS)["grpc.max_send_message_length"]
    assert options["grpc.keepalive_permit_without_calls"] == 1  # Raft peers ping idle streams
    assert options["grpc.http2.min_ping_interval_without_data_ms"] == 10_000
    assert options["grpc.max_connection_idle_ms"] == 60_000
    assert options["grpc.max_connection_age_grace_ms"] == 300_000
    names = [name for name, _ in grpc_server_options()]
    assert len(names) == len(set(names))
    assert "grpc.max_connection_age_ms" not in names  # off by default: Raft streams live long


def test_limits_that_would_break_raft_are_refused() -> None:
    with pytest.raises(ValueError, match="Raft frame"):
        GrpcLimits(max_receive_bytes=MAX_FRAME_BYTES)
    with pytest.raises(ValueError):
        GrpcLimits(max_concurrent_streams=0)


async def test_a_server_with_these_options_refuses_an_oversized_message() -> None:
    async def echo(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        return request[:10]

    server = grpc.aio.server(options=grpc_server_options(GrpcLimits(max_receive_bytes=4 << 20)))
    handler = grpc.method_handlers_generic_handler("t.T", {"Echo": grpc.unary_unary_rpc_method_handler(echo)})
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=[
                ("grpc.max_send_message_length", 64 << 20)]) as channel:
            call = channel.unary_unary("/t.T/Echo")
            assert await call(b"x" * (1 << 20)) == b"x" * 10
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await call(b"x" * ((4 << 20) + 1))
            assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert await call(b"ok") == b"ok"  # the connection and server are still fine
    finally:
        await server.stop(None)
