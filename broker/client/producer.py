"""Automatic send batching: messages sent within ``linger_ms`` (or until ``max_batch``) share one Send call."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from broker.client.errors import RaftMQError
from proto.broker.v1 import queues_pb2 as pb

if TYPE_CHECKING:
    from broker.client.aio import AsyncClient


class Producer:
    """Created by ``AsyncClient.producer``; ``close()`` (or ``async with``) flushes what is pending."""

    def __init__(self, client: AsyncClient, queue: str, *, linger_ms: float, max_batch: int) -> None:
        self._client = client
        self.queue = queue
        self.linger_s = linger_ms / 1000
        self.max_batch = max_batch
        self._entries: list[pb.SendEntry] = []
        self._futures: list[asyncio.Future[pb.SendResult]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._inflight: set[asyncio.Task[None]] = set()
        self._failures: list[BaseException] = []  # of send_nowait, until the next flush raises them
        self.failed = 0  # send_nowait failures raised by flush so far

    async def __aenter__(self) -> Producer:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def send(self, body: str | pb.SendEntry) -> pb.SendResult:
        """Queue one message for the next batch; resolves with its result, raises RaftMQError if it failed."""
        return await self._queue(body)

    def send_nowait(self, body: str | pb.SendEntry) -> asyncio.Future[pb.SendResult]:
        """``send`` without waiting: the message joins the next batch and the future resolves as ``send`` would.
        A loop that awaits every send sends one batch per commit (a few hundred messages a second); one that does
        not fills batches. A failure is raised by the next ``flush()`` (or ``close()``) as well, so that none goes
        unseen when nobody awaits the future. Batches leave only when the caller awaits something: a loop that
        runs forever should ``await flush()`` now and then, which also bounds what waits in memory."""
        future = self._queue(body)
        future.add_done_callback(self._keep_failure)
        return future

    def _queue(self, body: str | pb.SendEntry) -> asyncio.Future[pb.SendResult]:
        future: asyncio.Future[pb.SendResult] = asyncio.get_running_loop().create_future()
        self._entries.append(pb.SendEntry(body=body) if isinstance(body, str) else body)
        self._futures.append(future)
        if len(self._entries) >= self.max_batch:
            self._dispatch()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.linger_s, self._dispatch)
        return future

    def _keep_failure(self, future: asyncio.Future[pb.SendResult]) -> None:
        if not future.cancelled():
            failure = future.exception()  # retrieved: asyncio logs nothing
            if failure is not None:
                self._failures.append(failure)

    async def flush(self) -> None:
        """Send what is pending now and wait for every batch in flight; raise the first failure of a
        ``send_nowait`` since the last flush (``failed`` counts them all)."""
        self._dispatch()
        while self._inflight:
            await asyncio.gather(*self._inflight, return_exceptions=True)
        if self._failures:
            failures, self._failures = self._failures, []
            self.failed += len(failures)
            raise failures[0]

    async def close(self) -> None:
        await self.flush()

    def _dispatch(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._entries:
            return
        entries, futures = self._entries, self._futures
        self._entries, self._futures = [], []
        task = asyncio.get_running_loop().create_task(self._send(entries, futures))
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)

    async def _send(self, entries: list[pb.SendEntry], futures: list[asyncio.Future[pb.SendResult]]) -> None:
        try:
            results = await self._client.send(self.queue, entries)
        except Exception as exc:
            for future in futures:
                if not future.done():
                    future.set_exception(exc)
            return
        for future, result in zip(futures, results, strict=True):
            if future.done():
                continue
            if result.HasField("error"):
                future.set_exception(RaftMQError.from_detail(result.error))
            else:
                future.set_result(result)
