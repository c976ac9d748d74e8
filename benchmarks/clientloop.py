"""The shipped client's own loops, timed: ``python -m benchmarks.clientloop HOST:PORT [COUNT]``.

What a user of ``broker.client`` writes (docs/grpc.md): a producer loop, then an ``async for`` consumer loop, once
awaiting every message (``await producer.send``, ``await message.ack()``: each waits for its command to be durable)
and once not (``send_nowait``, ``ack_nowait``). The harness's grpc-* scenarios drive raw stubs (see grpcload.py);
this measures the client library itself, one connection, one queue per loop pair (deleted after).
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from dataclasses import dataclass

from broker.client import AsyncClient

AWAITED_COUNT = 2_000  # the awaited loops do a few hundred a second: enough to time them, not to wait minutes


@dataclass(frozen=True)
class LoopRates:
    sent_per_s: float
    consumed_per_s: float
    failed: int  # sends and acks that failed


async def measure(address: str, count: int, *, wait: bool) -> LoopRates:
    """Send ``count`` messages from one producer loop, then consume and ack them in one ``async for`` loop."""
    async with AsyncClient(address) as client:
        queue = f"clientloop-{uuid.uuid4().hex[:12]}"
        await client.create_queue(queue)
        try:
            started = time.perf_counter()
            async with client.producer(queue) as producer:
                for i in range(count):
                    if wait:
                        await producer.send(f"m{i}")
                    else:
                        producer.send_nowait(f"m{i}")
            sent = time.perf_counter() - started
            started = time.perf_counter()
            consumed = 0
            async with client.consumer(queue, max_in_flight=1000, max_batch=500) as consumer:
                async for message in consumer:
                    if wait:
                        await message.ack()
                    else:
                        message.ack_nowait()
                    consumed += 1
                    if consumed == count:
                        break
            took = time.perf_counter() - started  # close() included: it waits for the acks on their way
            return LoopRates(count / sent, consumed / took, producer.failed + consumer.failed_settlements)
        finally:
            await client.delete_queue(queue)


async def _main(address: str, count: int) -> None:
    for wait, n in ((True, min(count, AWAITED_COUNT)), (False, count)):
        rates = await measure(address, n, wait=wait)
        label = "await each" if wait else "nowait    "
        print(f"{label} ({n:,} msgs): producer loop {rates.sent_per_s:,.0f} msgs/s, consumer loop "
              f"{rates.consumed_per_s:,.0f} msgs/s, failed {rates.failed}")


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        print("usage: python -m benchmarks.clientloop HOST:PORT [COUNT]", file=sys.stderr)
        sys.exit(2)
    asyncio.run(_main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) == 3 else 50_000))
