"""An interceptor that wraps each v1 API method's handler once (cached per method), not on every call."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import grpc

API_PREFIX = "/raftmq.broker.v1."


class MethodWrappingInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Subclasses give ``_wrap``; health, reflection and the cluster's services pass through untouched."""

    def __init__(self) -> None:
        # method -> (the handler it was given, its wrapper)
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    def _wraps(self, handler: grpc.RpcMethodHandler) -> bool:
        """Whether this handler is one to wrap (beyond being a v1 method)."""
        return True

    def _wrap(self, handler: grpc.RpcMethodHandler, method: str) -> grpc.RpcMethodHandler:
        raise NotImplementedError

    async def intercept_service(
            self, continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
            details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        method: str = details.method
        if handler is None or not method.startswith(API_PREFIX) or not self._wraps(handler):
            return handler
        cached = self._wrapped.get(method)
        if cached is None or cached[0] is not handler:
            cached = self._wrapped[method] = (handler, self._wrap(handler, method))
        return cached[1]
