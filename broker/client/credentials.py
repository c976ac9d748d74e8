"""Access keys for the gRPC client: every call carries a signed token (see ``broker.auth.grpc_auth``).

``Credentials.resolve`` takes what ``AsyncClient(credentials=...)`` was given, or the usual AWS environment
variables (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_REGION`` / ``AWS_DEFAULT_REGION``).
``interceptors`` add the token to every call of a channel; a token is computed once per method and second
(an HMAC of a few dozen bytes under a cached derived key), so signing costs nothing per message.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import grpc

from broker.auth.grpc_auth import sign

DEFAULT_REGION = "us-east-1"
Metadata = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Credentials:
    access_key_id: str
    secret_access_key: str = field(repr=False)
    region: str = DEFAULT_REGION

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Credentials | None:
        """The AWS environment variables' key, or None when they name none."""
        env = dict(os.environ) if env is None else env
        key, secret = env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY")
        if not key or not secret:
            return None
        return cls(key, secret, env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or DEFAULT_REGION)

    @classmethod
    def resolve(cls, given: Credentials | tuple[str, str] | None) -> Credentials | None:
        if isinstance(given, Credentials):
            return given
        if given is not None:
            key, secret = given
            return cls(key, secret)
        return cls.from_env()


class Signer:
    """Call metadata per method, re-signed when the second changes (the server accepts 15 minutes of skew)."""

    def __init__(self, credentials: Credentials, clock: Callable[[], float] = time.time) -> None:
        self._credentials = credentials
        self._clock = clock
        self._cache: dict[str, tuple[int, Metadata]] = {}

    def metadata(self, method: str) -> Metadata:
        second = int(self._clock())
        cached = self._cache.get(method)
        if cached is not None and cached[0] == second:
            return cached[1]
        c = self._credentials
        signed = sign(c.access_key_id, c.secret_access_key, c.region, method, datetime.fromtimestamp(second, UTC))
        self._cache[method] = (second, signed)
        return signed


def _signed(details: grpc.aio.ClientCallDetails, signer: Signer) -> grpc.aio.ClientCallDetails:
    method = details.method.decode() if isinstance(details.method, bytes) else str(details.method)
    metadata = grpc.aio.Metadata(*(details.metadata or ()), *signer.metadata(method))
    return grpc.aio.ClientCallDetails(method=details.method, timeout=details.timeout, metadata=metadata,
                                      credentials=details.credentials, wait_for_ready=details.wait_for_ready)


class _Signing:
    def __init__(self, signer: Signer) -> None:
        self._signer = signer


# One class per call kind: a channel files each interceptor under the first kind it implements only.
class _SignUnaryUnary(_Signing, grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    async def intercept_unary_unary(self, continuation: Callable[..., Awaitable[Any]],
                                    details: grpc.aio.ClientCallDetails, request: Any) -> Any:
        return await continuation(_signed(details, self._signer), request)


class _SignUnaryStream(_Signing, grpc.aio.UnaryStreamClientInterceptor):  # type: ignore[misc]
    async def intercept_unary_stream(self, continuation: Callable[..., Awaitable[Any]],
                                     details: grpc.aio.ClientCallDetails, request: Any) -> Any:
        return await continuation(_signed(details, self._signer), request)


class _SignStreamUnary(_Signing, grpc.aio.StreamUnaryClientInterceptor):  # type: ignore[misc]
    async def intercept_stream_unary(self, continuation: Callable[..., Awaitable[Any]],
                                     details: grpc.aio.ClientCallDetails,
                                     request_iterator: AsyncIterable[Any] | Iterable[Any]) -> Any:
        return await continuation(_signed(details, self._signer), request_iterator)


class _SignStreamStream(_Signing, grpc.aio.StreamStreamClientInterceptor):  # type: ignore[misc]
    async def intercept_stream_stream(self, continuation: Callable[..., Awaitable[Any]],
                                      details: grpc.aio.ClientCallDetails,
                                      request_iterator: AsyncIterable[Any] | Iterable[Any]) -> Any:
        return await continuation(_signed(details, self._signer), request_iterator)


def interceptors(credentials: Credentials | None) -> list[grpc.aio.ClientInterceptor]:
    """What a channel needs to sign every call (one signer, so one cache): nothing without credentials."""
    if credentials is None:
        return []
    signer = Signer(credentials)
    return [_SignUnaryUnary(signer), _SignUnaryStream(signer), _SignStreamUnary(signer), _SignStreamStream(signer)]
