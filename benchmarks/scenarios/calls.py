"""One timed AWS JSON call as every scenario makes it: failures are counted by code, never raised."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson

from benchmarks.awsjson import AwsJsonClient, error_from
from benchmarks.http1 import HttpConnectionError
from benchmarks.stats import WorkerStats

BACKOFF_S = 0.05  # after a connection failure, so a dead server does not turn the generator into a busy loop


async def timed_call(client: AwsJsonClient, call: str, body: bytes, stats: WorkerStats,
                     intended_ns: int | None = None) -> dict[str, Any] | None:
    """Send ``call``; record its latency under ``call`` (and, from ``intended_ns``, under ``call@intended``);
    count errors as ``call:Code``; the decoded result or None."""
    start = time.perf_counter_ns()
    try:
        response = await client.call_raw(call, body)
    except HttpConnectionError:
        stats.error(f"{call}:ConnectionError")
        await asyncio.sleep(BACKOFF_S)
        return None
    except TimeoutError:
        stats.error(f"{call}:Timeout")
        return None
    if response.status >= 300:
        stats.error(f"{call}:{error_from(response).code}")
        return None
    end = time.perf_counter_ns()
    stats.record(call, (end - start) // 1000)
    if intended_ns is not None:
        stats.record(f"{call}@intended", (end - intended_ns) // 1000)
    try:
        result = orjson.loads(response.body) if response.body else {}
    except orjson.JSONDecodeError:
        result = None
    if not isinstance(result, dict):
        stats.error(f"{call}:MalformedResponse")
        return None
    return result
