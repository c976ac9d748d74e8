"""``async for message in consumer`` over one Consume stream, with acks, nacks and extensions on the same stream.

A background task owns the stream: it pushes received messages into a buffer and resolves settlements. Acks of one
loop turn travel as one request. When the stream breaks retryably (the node died, a leader change) it reconnects to
the next node and sends again every settlement not yet confirmed: receipt handles stay valid across nodes because
they are replicated state, so an ack that returned was durable and one that did not is retried.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import grpc

from broker.client.errors import RaftMQError
from proto.broker.v1 import queues_pb2 as pb

if TYPE_CHECKING:
    from broker.client.aio import AsyncClient

_ACK, _NACK, _EXTEND = "ack", "nack", "extend"
CLOSE_SETTLE_S = 5.0  # how long close() waits for settlements still on their way
Pending = tuple[str, str, int, "asyncio.Future[None]"]  # (kind, receipt handle, extension seconds, future)


class ConsumedMessage:
    """A delivered message; settle it with exactly one ``ack()`` or ``nack()`` (``extend()`` any number of times)."""

    __slots__ = ("_consumer", "message")

    def __init__(self, consumer: Consumer, message: pb.Message) -> None:
        self._consumer = consumer
        self.message = message

    @property
    def body(self) -> str:
        return self.message.body

    @property
    def message_id(self) -> str:
        return self.message.message_id

    @property
    def receipt_handle(self) -> str:
        return self.message.receipt_handle

    async def ack(self) -> None:
        """Delete the message; returns once that is durable (raises RaftMQError if it failed, e.g. handle expired)."""
        await self._consumer.settle(_ACK, self.message.receipt_handle)

    async def nack(self) -> None:
        """Make the message visible again now, for redelivery."""
        await self._consumer.settle(_NACK, self.message.receipt_handle)

    async def extend(self, seconds: int) -> None:
        """Keep the message invisible for ``seconds`` more."""
        await self._consumer.settle(_EXTEND, self.message.receipt_handle, seconds)

    def ack_nowait(self) -> None:
        """``ack()`` without waiting for it to be durable: a loop that awaits every ack handles one message per
        commit (a few hundred a second), one that does not runs at the stream's pace. The acks still travel on the
        stream, one request per loop turn, and ``close()`` waits for them. One that fails (the handle expired, say)
        is counted in ``Consumer.failed_settlements`` and the message comes back after its visibility timeout, as
        SQS does after a lost delete."""
        self._consumer.settle_nowait(_ACK, self.message.receipt_handle)

    def nack_nowait(self) -> None:
        """``nack()`` without waiting, as ``ack_nowait``."""
        self._consumer.settle_nowait(_NACK, self.message.receipt_handle)


class Consumer:
    """Created by ``AsyncClient.consumer``; the stream opens at the first iteration, ``close()`` ends it."""

    def __init__(self, client: AsyncClient, queue: str, *, max_in_flight: int, max_batch: int,
                 visibility_timeout: int | None) -> None:
        self._client = client
        self.queue = queue
        self._start = pb.ConsumeStart(queue=queue, max_in_flight=max_in_flight, max_batch=max_batch)
        if visibility_timeout is not None:
            self._start.visibility_timeout = visibility_timeout
        self._buffer: asyncio.Queue[pb.Message | RaftMQError] = asyncio.Queue()
        self._unsent: list[Pending] = []
        self._sent: dict[int, list[Pending]] = {}
        self._tokens = itertools.count(1)
        self._call: Any = None
        self._write_lock = asyncio.Lock()
        self._flush_scheduled = False
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.reconnects = 0
        self.failed_settlements = 0  # settlements made with *_nowait that failed (or were cut off by close)

    def __aiter__(self) -> Consumer:
        return self

    async def __anext__(self) -> ConsumedMessage:
        if self._closed:
            raise StopAsyncIteration
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"consume-{self.queue}")
        item = await self._buffer.get()
        if isinstance(item, RaftMQError):
            raise item
        return ConsumedMessage(self, item)

    async def __aenter__(self) -> Consumer:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """End the stream once the settlements made so far are confirmed (at most ``CLOSE_SETTLE_S``); messages
        not acked become visible again after their visibility timeout."""
        waiting = [p[3] for p in itertools.chain(self._unsent, *self._sent.values())]
        if waiting and self._call is not None:
            await asyncio.wait(waiting, timeout=CLOSE_SETTLE_S)
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._call is not None:
            self._call.cancel()
        for pending in [*self._unsent, *itertools.chain.from_iterable(self._sent.values())]:
            if not pending[3].done():
                pending[3].set_exception(RaftMQError("ConsumerClosed", "the consumer was closed"))

    # -- settlements -------------------------------------------------------------------------------------------

    async def settle(self, kind: str, handle: str, seconds: int = 0) -> None:
        await self._queue_settlement(kind, handle, seconds)

    def settle_nowait(self, kind: str, handle: str, seconds: int = 0) -> None:
        """``settle`` without waiting: a failure is counted in ``failed_settlements`` rather than raised."""
        self._queue_settlement(kind, handle, seconds).add_done_callback(self._count_failure)

    def _queue_settlement(self, kind: str, handle: str, seconds: int) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._unsent.append((kind, handle, seconds, future))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._schedule_flush)
        return future

    def _count_failure(self, future: asyncio.Future[None]) -> None:
        if not future.cancelled() and future.exception() is not None:  # retrieved: asyncio logs nothing
            self.failed_settlements += 1

    def _schedule_flush(self) -> None:
        self._flush_scheduled = False
        if self._call is not None:
            asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        """Send every unsent settlement, one request per kind (and extension length)."""
        call = self._call
        if call is None or not self._unsent:
            return
        pending, self._unsent = self._unsent, []
        groups: dict[tuple[str, int], list[Pending]] = {}
        for item in pending:
            groups.setdefault((item[0], item[2]), []).append(item)
        try:
            async with self._write_lock:
                for (kind, seconds), items in groups.items():
                    token = next(self._tokens)
                    self._sent[token] = items
                    await call.write(_request(kind, token, [i[1] for i in items], seconds))
        except (grpc.aio.AioRpcError, grpc.aio.UsageError, asyncio.InvalidStateError):
            pass  # the stream broke: _run resends everything in _sent on the next stream

    def _settled(self, settled: pb.Settled) -> None:
        items = self._sent.pop(settled.token, [])
        failed = {f.index: f.error for f in settled.failures}
        for index, (_kind, _handle, _seconds, future) in enumerate(items):
            if future.done():
                continue
            if index in failed:
                future.set_exception(RaftMQError.from_detail(failed[index]))
            else:
                future.set_result(None)

    # -- the stream --------------------------------------------------------------------------------------------

    async def _run(self) -> None:
        attempt = 0
        while not self._closed:
            call = self._client.stub().Consume()
            try:
                await call.write(pb.ConsumeRequest(start=self._start))
                self._call = call
                # Settlements sent on a broken stream are sent again (deleting twice is harmless).
                for token in sorted(self._sent):
                    self._unsent[:0] = self._sent.pop(token)
                await self._flush()
                while True:
                    response = await call.read()
                    if response is grpc.aio.EOF:
                        break
                    attempt = 0
                    if response.HasField("settled"):
                        self._settled(response.settled)
                    else:
                        for message in response.messages.messages:
                            self._buffer.put_nowait(message)
                error = RaftMQError("ServiceUnavailable", "the stream ended", retryable=True)
            except grpc.aio.AioRpcError as exc:
                error = RaftMQError.from_rpc(exc)
            finally:
                self._call = None
                call.cancel()
            if not error.retryable or attempt >= self._client.retries:
                self._buffer.put_nowait(error)
                return
            self.reconnects += 1
            self._client.next_node()
            await asyncio.sleep(self._client.backoff(attempt))
            attempt += 1


def _request(kind: str, token: int, handles: Sequence[str], seconds: int) -> pb.ConsumeRequest:
    if kind == _ACK:
        return pb.ConsumeRequest(ack=pb.Ack(token=token, receipt_handles=handles))
    if kind == _NACK:
        return pb.ConsumeRequest(nack=pb.Nack(token=token, receipt_handles=handles))
    return pb.ConsumeRequest(extend=pb.Extend(token=token, receipt_handles=handles, visibility_timeout=seconds))
