"""Prometheus metrics of one node: one registry, created once, exposed on ``GET /metrics``.

Gauges that describe state (queue depth, in flight, delayed) are read from the model at scrape time through a
collector registered by the app, so the hot path only pays for the request counter and histogram.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

REGISTRY = CollectorRegistry(auto_describe=True)

REQUESTS = Counter(
    "raftmq_requests",
    "API requests by service, action and HTTP status",
    ["service", "action", "status"],
    registry=REGISTRY,
)
REQUEST_SECONDS = Histogram(
    "raftmq_request_seconds",
    "API request latency by service and action",
    ["service", "action"],
    registry=REGISTRY,
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25),
)
FSYNC_SECONDS = Histogram(
    "raftmq_fsync_seconds",
    "Duration of one durable LMDB commit (write + fsync)",
    registry=REGISTRY,
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5),
)
COMMIT_BATCH = Histogram(
    "raftmq_commit_batch_entries",
    "Log entries per durable commit (group commit)",
    registry=REGISTRY,
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
)

# Abuse limits (broker.http.limits, broker.auth.ratelimit): what was refused or cut off, and why.
REJECTED_REQUESTS = Counter(
    "raftmq_rejected_requests",
    "Requests and connections refused by an abuse limit, by reason (body_too_large, headers_too_large, "
    "too_many_headers, url_too_long, connection_limit, header_timeout, body_timeout, rate_limit)",
    ["reason"],
    registry=REGISTRY,
)
HTTP_IDLE_CLOSED = Counter(
    "raftmq_http_idle_closed",
    "Keep-alive connections closed after the idle timeout",
    registry=REGISTRY,
)
HTTP_CONNECTIONS = Gauge(
    "raftmq_http_connections",
    "Open HTTP connections",
    registry=REGISTRY,
)
_rejected: dict[str, Counter] = {}


def count_rejected(reason: str) -> None:
    """One refusal by an abuse limit (label children cached: refusals can come in floods)."""
    child = _rejected.get(reason)
    if child is None:
        child = _rejected[reason] = REJECTED_REQUESTS.labels(reason)
    child.inc()


_children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}


def observe_request(service: str, action: str, status: int, seconds: float) -> None:
    # labels() costs several µs per call; the label children are looked up once and kept.
    key = (service, action, status)
    children = _children.get(key)
    if children is None:
        children = _children[key] = (
            REQUESTS.labels(service, action, str(status)),
            REQUEST_SECONDS.labels(service, action),
        )
    children[0].inc()
    children[1].observe(seconds)


QueueGaugeSource = Callable[[], Iterable[tuple[str, str, int, int, int]]]


class QueueGauges(Collector):
    """Depth, in-flight and delayed counts per queue, read from the model when scraped."""

    def __init__(self, source: QueueGaugeSource) -> None:
        self._source = source

    def collect(self) -> Iterable[GaugeMetricFamily]:
        depth = GaugeMetricFamily(
            "raftmq_queue_messages", "Messages available for retrieval", labels=["account", "queue"]
        )
        inflight = GaugeMetricFamily(
            "raftmq_queue_messages_in_flight", "Messages received and not yet deleted", labels=["account", "queue"]
        )
        delayed = GaugeMetricFamily(
            "raftmq_queue_messages_delayed",
            "Messages not yet available because of a delay",
            labels=["account", "queue"],
        )
        for account, name, visible, not_visible, delayed_count in self._source():
            depth.add_metric([account, name], visible)
            inflight.add_metric([account, name], not_visible)
            delayed.add_metric([account, name], delayed_count)
        return [depth, inflight, delayed]


def register_queue_gauges(source: QueueGaugeSource) -> None:
    REGISTRY.register(QueueGauges(source))


def exposition() -> bytes:
    return generate_latest(REGISTRY)
