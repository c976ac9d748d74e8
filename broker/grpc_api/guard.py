"""Refuse the client API on the gRPC port when the node requires credentials.

The gRPC API does not verify credentials yet, so on a node started with ``--credentials`` it would let anyone in
that the HTTP APIs keep out. Until gRPC authentication exists, every call of the broker API is answered
UNAUTHENTICATED there; health, reflection and the cluster's internal services are not affected.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc

API_PREFIX = "/raftmq.broker.v1."
MESSAGE = ("this node requires credentials (--credentials) and the gRPC client API cannot check them yet: "
           "use the AWS HTTP APIs")


async def _deny(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
    await context.abort(grpc.StatusCode.UNAUTHENTICATED, MESSAGE)


class RefuseClientApi(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    async def intercept_service(
            self, continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
            handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None or not handler_call_details.method.startswith(API_PREFIX):
            return handler
        kwargs = {"request_deserializer": handler.request_deserializer,
                  "response_serializer": handler.response_serializer}
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(_deny, **kwargs)
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(_deny, **kwargs)
        if handler.stream_unary is not None:
            return grpc.stream_unary_rpc_method_handler(_deny, **kwargs)
        return grpc.stream_stream_rpc_method_handler(_deny, **kwargs)
