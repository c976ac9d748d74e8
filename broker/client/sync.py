"""``Client``: the same API for threaded code, run on a private event loop in a background thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Iterator, Sequence
from typing import Any, TypeVar

from broker.client.aio import AsyncClient
from broker.client.consumer import ConsumedMessage, Consumer
from proto.broker.v1 import admin_pb2 as admin_pb
from proto.broker.v1 import queues_pb2 as pb

T = TypeVar("T")


class Client:
    """``with Client("127.0.0.1:7001") as client: client.send("jobs", ["a", "b"])``."""

    def __init__(self, addresses: str | Sequence[str], **options: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="raftmq-client", daemon=True)
        self._thread.start()
        self._async = self._run(_make(addresses, options))
        self.streams = SyncFacade(self, self._async.streams)
        self.topics = SyncFacade(self, self._async.topics)
        self.groups = SyncFacade(self, self._async.groups)

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        if self._loop.is_closed():
            return
        self._run(self._async.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def create_queue(self, name: str, attributes: dict[str, str] | None = None,
                     tags: dict[str, str] | None = None) -> str:
        return self._run(self._async.create_queue(name, attributes, tags))

    def get_queue(self, name: str) -> str:
        return self._run(self._async.get_queue(name))

    def list_queues(self, prefix: str = "") -> list[str]:
        return self._run(self._async.list_queues(prefix))

    def delete_queue(self, name: str) -> None:
        self._run(self._async.delete_queue(name))

    def purge_queue(self, name: str) -> None:
        self._run(self._async.purge_queue(name))

    def get_queue_attributes(self, name: str, names: Sequence[str] = ()) -> dict[str, str]:
        return self._run(self._async.get_queue_attributes(name, names))

    def set_queue_attributes(self, name: str, attributes: dict[str, str]) -> None:
        self._run(self._async.set_queue_attributes(name, attributes))

    def send(self, queue: str, entries: Sequence[str | pb.SendEntry]) -> list[pb.SendResult]:
        return self._run(self._async.send(queue, entries))

    def receive(self, queue: str, max_messages: int = 10, *, wait_seconds: int | None = None,
                visibility_timeout: int | None = None) -> list[pb.Message]:
        return self._run(self._async.receive(queue, max_messages, wait_seconds=wait_seconds,
                                             visibility_timeout=visibility_timeout))

    def delete(self, queue: str, receipt_handles: Sequence[str]) -> list[pb.EntryFailure]:
        return self._run(self._async.delete(queue, receipt_handles))

    def change_visibility(self, queue: str, changes: Sequence[tuple[str, int]]) -> list[pb.EntryFailure]:
        return self._run(self._async.change_visibility(queue, changes))

    def cluster_status(self) -> admin_pb.ClusterStatusResponse:
        return self._run(self._async.cluster_status())

    def transfer_leadership(self, node_id: str) -> None:
        self._run(self._async.transfer_leadership(node_id))

    def add_node(self, node_id: str, address: str) -> None:
        self._run(self._async.add_node(node_id, address))

    def remove_node(self, node_id: str) -> None:
        self._run(self._async.remove_node(node_id))

    def consume(self, queue: str, *, max_in_flight: int = 100,
                visibility_timeout: int | None = None) -> SyncConsumer:
        """``for message in client.consume("jobs"): message.ack()``; close it (or ``with``) to end the stream."""
        return SyncConsumer(self, self._async.consumer(queue, max_in_flight=max_in_flight,
                                                       visibility_timeout=visibility_timeout))


class SyncFacade:
    """Blocking versions of the coroutine methods of ``inner`` (``client.streams``, ``client.topics``)."""

    def __init__(self, client: Client, inner: object) -> None:
        self._client = client
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._inner, name)
        return lambda *args, **kwargs: self._client._run(method(*args, **kwargs))


class SyncMessage:
    """A delivered message; ``ack()``, ``nack()`` and ``extend()`` block until the server confirmed."""

    __slots__ = ("_client", "_inner")

    def __init__(self, client: Client, inner: ConsumedMessage) -> None:
        self._client = client
        self._inner = inner

    @property
    def message(self) -> pb.Message:
        return self._inner.message

    @property
    def body(self) -> str:
        return self._inner.body

    def ack(self) -> None:
        self._client._run(self._inner.ack())

    def nack(self) -> None:
        self._client._run(self._inner.nack())

    def extend(self, seconds: int) -> None:
        self._client._run(self._inner.extend(seconds))

    def ack_nowait(self) -> None:
        """``ack()`` without waiting for the server (``ConsumedMessage.ack_nowait``)."""
        self._client._run(_on_loop(self._inner.ack_nowait))

    def nack_nowait(self) -> None:
        self._client._run(_on_loop(self._inner.nack_nowait))


class SyncConsumer:
    def __init__(self, client: Client, inner: Consumer) -> None:
        self._client = client
        self._inner = inner

    def __iter__(self) -> Iterator[SyncMessage]:
        while True:
            try:
                message = self._client._run(anext(self._inner))
            except StopAsyncIteration:
                return
            yield SyncMessage(self._client, message)

    def __enter__(self) -> SyncConsumer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._client._run(self._inner.close())


async def _on_loop(call: Callable[[], None]) -> None:
    """``call()`` on the client's loop, where its consumer's state lives."""
    call()


async def _make(addresses: str | Sequence[str], options: dict[str, Any]) -> AsyncClient:
    """Channels belong to the loop they are made on: build the client on the background loop."""
    return AsyncClient(addresses, **options)
