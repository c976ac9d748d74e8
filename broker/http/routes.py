"""Operational routes served next to the AWS APIs: liveness/readiness and Prometheus metrics.

They are exact ``(method, path)`` routes of ``HttpServer``, so they bypass the AWS gateway (no signature, no
protocol detection) and stay cheap enough for a load balancer to poll.
"""

from __future__ import annotations

from collections.abc import Callable

from broker.http.types import HttpHandler, HttpRequest, HttpResponse
from broker.metrics import exposition

# What ``generate_latest`` emits (prometheus_client's CONTENT_TYPE_LATEST moved to 1.0.0 in 0.22; the bytes did not).
PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"
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
        return HttpResponse(200, exposition(), content_type=PROMETHEUS_TEXT)

    return metrics


def operational_routes(is_ready: Callable[[], bool]) -> dict[tuple[str, str], HttpHandler]:
    """Both routes keyed as ``HttpServer(routes=...)`` expects."""
    return {("GET", "/health"): health_route(is_ready), ("GET", "/metrics"): metrics_route()}
