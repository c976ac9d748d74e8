"""The operational routes, served by a real HttpServer next to a default handler."""

from __future__ import annotations

import asyncio

import orjson

from broker.http.routes import health_route, metrics_route, operational_routes
from broker.http.server import HttpServer
from broker.http.types import HttpRequest, HttpResponse
from broker.metrics import observe_request


async def default(request: HttpRequest) -> HttpResponse:
    return HttpResponse(404, b"{}")


async def fetch(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    raw = await asyncio.wait_for(reader.read(), 5.0)  # Connection: close => read to EOF
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def request(method: str, path: str) -> bytes:
    return f"{method} {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode()


async def test_health_follows_readiness() -> None:
    ready = False
    server = HttpServer(default, "127.0.0.1", 0, routes=operational_routes(lambda: ready))
    await server.start()
    try:
        status, _, body = await fetch(server.port, request("GET", "/health"))
        assert status == 503 and orjson.loads(body)["status"] != "ok"
        ready = True
        status, headers, body = await fetch(server.port, request("GET", "/health"))
        assert status == 200 and orjson.loads(body) == {"status": "ok"}
        assert headers["content-type"] == "application/json"
        status, _, _ = await fetch(server.port, request("POST", "/health"))
        assert status == 404  # only the exact (method, path) is routed
    finally:
        await server.stop(1.0)


async def test_metrics_exposes_the_registry_as_prometheus_text() -> None:
    observe_request("sqs", "RouteTestAction", 200, 0.001)
    server = HttpServer(default, "127.0.0.1", 0, routes={("GET", "/metrics"): metrics_route()})
    await server.start()
    try:
        status, headers, body = await fetch(server.port, request("GET", "/metrics"))
    finally:
        await server.stop(1.0)
    assert status == 200
    assert headers["content-type"].startswith("text/plain; version=0.0.4")
    assert b'raftmq_requests_total{action="RouteTestAction",service="sqs",status="200"} 1.0' in body
    assert b"# TYPE raftmq_fsync_seconds histogram" in body


async def test_route_helpers_are_plain_handlers() -> None:
    flag = [True]
    health = health_route(lambda: flag[0])
    probe = HttpRequest("GET", "/health", "", {}, b"")
    assert (await health(probe)).status == 200
    flag[0] = False
    assert (await health(probe)).status == 503
