"""Bytes that do not parse as the method's request message are the client's mistake: INVALID_ARGUMENT.

grpcio parses a request in the method's deserializer, before any servicer or interceptor code runs, and answers a
parse failure with UNKNOWN (INTERNAL inside a request stream) and a logged traceback, as if the server had failed.
This interceptor, first in line, gives each v1 method a deserializer that turns a failure into a marker, and
answers the marker with INVALID_ARGUMENT and a SerializationException detail (the code AWS's JSON protocols use
for a body that does not parse) before anything else looks at the request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any, TypeAlias

import grpc

from broker.grpc_api.errors import abort
from broker.grpc_api.wrapping import MethodWrappingInterceptor
from broker.model.errors import SerializationException

Context: TypeAlias = grpc.aio.ServicerContext[Any, Any]


class Unparseable:
    """What the deserializer hands on instead of a request it could not parse."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


def _tolerant(deserializer: Callable[[bytes], Any], method: str) -> Callable[[bytes], Any]:
    def parse(data: bytes) -> Any:
        try:
            return deserializer(data)
        except Exception as exc:  # protobuf's DecodeError, or anything a malformed message makes it raise
            return Unparseable(f"The request to {method} could not be parsed: {type(exc).__name__}.")
    return parse


async def _refuse(context: Context, request: Unparseable) -> None:
    await abort(context, SerializationException(request.reason))


async def _checked(requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
    """The request stream, raising SerializationException at a message that did not parse: raised, not aborted
    here, because this runs inside the servicer, which answers a BrokerError with its own status."""
    async for request in requests:
        if isinstance(request, Unparseable):
            raise SerializationException(request.reason)
        yield request


class RequestParseGuard(MethodWrappingInterceptor):
    """Gives each v1 method a deserializer that marks bytes it cannot parse, and refuses those."""

    def _wraps(self, handler: grpc.RpcMethodHandler) -> bool:
        return handler.request_deserializer is not None

    def _wrap(self, handler: grpc.RpcMethodHandler, method: str) -> grpc.RpcMethodHandler:
        return _wrap(handler, method)


def _wrap(handler: grpc.RpcMethodHandler, method: str) -> grpc.RpcMethodHandler:
    kwargs = {"request_deserializer": _tolerant(handler.request_deserializer, method),
              "response_serializer": handler.response_serializer}
    if handler.unary_unary is not None:
        inner_uu = handler.unary_unary

        async def unary_unary(request: Any, context: Context) -> Any:
            if isinstance(request, Unparseable):
                await _refuse(context, request)
            return await inner_uu(request, context)
        return grpc.unary_unary_rpc_method_handler(unary_unary, **kwargs)
    if handler.unary_stream is not None:
        inner_us = handler.unary_stream

        async def unary_stream(request: Any, context: Context) -> AsyncIterator[Any]:
            if isinstance(request, Unparseable):
                await _refuse(context, request)
            async for item in inner_us(request, context):
                yield item
        return grpc.unary_stream_rpc_method_handler(unary_stream, **kwargs)
    if handler.stream_unary is not None:
        inner_su = handler.stream_unary

        async def stream_unary(requests: AsyncIterator[Any], context: Context) -> Any:
            try:
                return await inner_su(_checked(requests), context)
            except SerializationException as exc:  # a servicer that let it through
                await abort(context, exc)
        return grpc.stream_unary_rpc_method_handler(stream_unary, **kwargs)
    inner_ss = handler.stream_stream

    async def stream_stream(requests: AsyncIterator[Any], context: Context) -> AsyncIterator[Any]:
        try:
            async for item in inner_ss(_checked(requests), context):
                yield item
        except SerializationException as exc:  # a servicer that let it through
            await abort(context, exc)
    return grpc.stream_stream_rpc_method_handler(stream_stream, **kwargs)
