"""AWS JSON 1.0 / 1.1 calls over the raw HTTP client, shaped exactly like botocore's requests.

Each call carries ``X-Amz-Target``, ``Content-Type: application/x-amz-json-1.x``, a real SigV4 ``Authorization``
(dummy credentials), ``X-Amz-Date``, botocore's invocation headers and, for SQS, ``x-amzn-query-mode: true``.
Bodies are serialised with orjson; scenarios may pass pre-built bodies to keep generator CPU low.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

import orjson

from benchmarks.http1 import HttpConnection, HttpResponse
from benchmarks.sigv4 import AmzClock, SigV4Signer

USER_AGENT = "raftmq-bench/0.1 md/Botocore#compatible"


@dataclass(frozen=True, slots=True)
class Target:
    """Where and as whom to send requests; picklable, so worker processes receive it as is."""

    endpoint: str
    region: str = "us-east-1"
    access_key: str = "AKIDRAFTMQBENCH00000"
    secret_key: str = "raftmq-bench-secret"  # dummy: the server accepts any credential for now
    alternates: tuple[str, ...] = ()  # more endpoints of the same cluster: connections are spread over all
    grpc: str = ""  # HOST:PORT of the same server's gRPC API ("" when unknown: gRPC scenarios refuse to run)
    grpc_alternates: tuple[str, ...] = ()  # the gRPC addresses of the ``alternates``, in the same order

    def for_connection(self, index: int) -> Target:
        """The single-endpoint target connection ``index`` uses (round robin over endpoint + alternates)."""
        if not self.alternates and not self.grpc_alternates:
            return self
        endpoints = (self.endpoint, *self.alternates)
        grpcs = (self.grpc, *self.grpc_alternates)
        return replace(self, endpoint=endpoints[index % len(endpoints)], alternates=(),
                       grpc=grpcs[index % len(grpcs)], grpc_alternates=())

    @property
    def host_port(self) -> tuple[str, int]:
        parts = urlsplit(self.endpoint)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"only http://HOST[:PORT] endpoints are supported, got {self.endpoint!r}")
        return parts.hostname, parts.port or 80


@dataclass(frozen=True, slots=True)
class JsonService:
    """The wire constants of one AWS JSON service."""

    signing_name: str
    target_prefix: str
    json_version: str
    query_compatible: bool = False


SQS = JsonService("sqs", "AmazonSQS", "1.0", query_compatible=True)
KINESIS = JsonService("kinesis", "Kinesis_20131202", "1.1")


class AwsError(Exception):
    """An error response (HTTP status >= 300), with the AWS error code as botocore would report it."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{code} (HTTP {status}): {message}")
        self.status = status
        self.code = code
        self.message = message


def error_from(response: HttpResponse) -> AwsError:
    """Decode an AWS JSON error: ``__type`` (``ns#Code``) names it; unparseable bodies become ``HTTP<status>``."""
    code = f"HTTP{response.status}"
    message = ""
    try:
        data = orjson.loads(response.body)
    except orjson.JSONDecodeError:
        data = None
    if isinstance(data, dict):
        raw = data.get("__type") or data.get("code") or ""
        if isinstance(raw, str) and raw:
            code = raw.rsplit("#", 1)[-1].split(":", 1)[0]
        msg = data.get("message") or data.get("Message") or ""
        message = msg if isinstance(msg, str) else str(msg)
    return AwsError(response.status, code, message)


def _invocation_id() -> str:
    h = os.urandom(16).hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class AwsJsonClient:
    """One keep-alive connection that speaks one AWS JSON service."""

    def __init__(self, target: Target, service: JsonService = SQS, timeout: float = 30.0,
                 clock: Callable[[], str] | None = None) -> None:
        host, port = target.host_port
        self.connection = HttpConnection(host, port, timeout)
        self._host_header = host if port == 80 else f"{host}:{port}"
        self._service = service
        self._content_type = f"application/x-amz-json-{service.json_version}"
        self._signer = SigV4Signer(target.access_key, target.secret_key, target.region, service.signing_name)
        self._now = clock or AmzClock().now  # X-Amz-Date text; injectable so tests can sign at a fixed time
        self._prepared: dict[str, tuple[str, tuple[tuple[str, str], ...]]] = {}

    def build_request(self, operation: str, body: bytes) -> bytes:
        """The complete request (head + body) for ``operation``, signed now."""
        prepared = self._prepared.get(operation)
        if prepared is None:
            prepared = self._prepared[operation] = self._prepare(operation)
        static_head, signed = prepared
        amz_date = self._now()
        auth = self._signer.authorization(amz_date, signed, body)
        head = (f"{static_head}X-Amz-Date: {amz_date}\r\nAuthorization: {auth}\r\n"
                f"amz-sdk-invocation-id: {_invocation_id()}\r\namz-sdk-request: attempt=1\r\n"
                f"Content-Length: {len(body)}\r\n\r\n")
        return head.encode("latin-1") + body

    def _prepare(self, operation: str) -> tuple[str, tuple[tuple[str, str], ...]]:
        """Headers that do not change between calls of ``operation``: the head's start and the ones to sign."""
        target = f"{self._service.target_prefix}.{operation}"
        signed = [("x-amz-target", target), ("content-type", self._content_type), ("host", self._host_header)]
        query_mode = ""
        if self._service.query_compatible:
            signed.append(("x-amzn-query-mode", "true"))
            query_mode = "x-amzn-query-mode: true\r\n"
        static_head = (f"POST / HTTP/1.1\r\nHost: {self._host_header}\r\nX-Amz-Target: {target}\r\n"
                       f"Content-Type: {self._content_type}\r\n{query_mode}User-Agent: {USER_AGENT}\r\n")
        return static_head, tuple(signed)

    async def call_raw(self, operation: str, body: bytes) -> HttpResponse:
        """Send a pre-serialised JSON body; returns the response whatever its status."""
        return await self.connection.request(self.build_request(operation, body))

    async def call(self, operation: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Send ``payload``; returns the decoded result or raises ``AwsError``."""
        response = await self.call_raw(operation, orjson.dumps(payload))
        if response.status >= 300:
            raise error_from(response)
        if not response.body:
            return {}
        result = orjson.loads(response.body)
        if not isinstance(result, dict):
            raise AwsError(response.status, "MalformedResponse", "JSON result is not an object")
        return result

    def close(self) -> None:
        self.connection.close()
