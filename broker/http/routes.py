"""Operational routes served next to the AWS APIs: liveness/readiness and Prometheus metrics.

They are exact ``(method, path)`` routes of ``HttpServer``, so they bypass the AWS gateway (no signature, no
protocol detection) and stay cheap enough for a load balancer to poll.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CONTENT_TYPE_LATEST

from broker.http.types import HttpHandler, HttpRequest, HttpResponse
from broker.metrics import exposition

_OK = b'{"status":"ok"}'
_UNAVAILABLE = b'{"status":"unavailable"}'


def health_route(is_ready: Callable[[], bool]) -> HttpHandler:
    """``GET /health``: 200 ``{"status":"ok"}`` when ``is_ready()``, else 503 so a balancer routes elsewhere."""

    async def health(request: HttpRequest) -> HttpResponse:
        if is_ready():
            return HttpResponse(200, _OK)
        return HttpResponse(503, _UNAVAILABLE)

    return health


def metrics_route() -> HttpHandler:
    """``GET /metrics``: the node's Prometheus registry in the text exposition format."""

    async def metrics(request: HttpRequest) -> HttpResponse:
        return HttpResponse(200, exposition(), content_type=CONTENT_TYPE_LATEST)

    return metrics


def operational_routes(is_ready: Callable[[], bool]) -> dict[tuple[str, str], HttpHandler]:
    """Both routes keyed as ``HttpServer(routes=...)`` expects."""
    return {("GET", "/health"): health_route(is_ready), ("GET", "/metrics"): metrics_route()}
