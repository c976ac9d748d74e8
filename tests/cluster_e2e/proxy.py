"""A fault-injecting TCP proxy: one listener in front of each node's gRPC port, faults per directed node pair.

Every peer reaches node X through X's listener, so cutting that listener alone would not isolate X: X also dials its
peers (through THEIR listeners). Each accepted connection is therefore attributed to the node that opened it (the
``identify`` callback, see ``procnet``), and every byte is judged by the directed link it travels on: client->server
bytes by (client node, server node), the replies by (server node, client node). A test can thus cut one node off
completely, cut one direction only, or slow a link down.

A connection whose process cannot be found is refused (reset) rather than let through unjudged: the node redials
at once and is identified then. (``/proc/net/tcp`` is read in chunks while other sockets come and go, so a lookup
can miss a line; ``procnet`` retries, and this is the last resort.) Without ``identify`` every connection is
``CLIENT``.

Modes per link: ``PASS``; ``DROP`` (a blackhole: bytes vanish, connections stay open and silent; a connection that
lost bytes is reset when its link heals, as a TCP stream with a hole cannot resume); ``delay(seconds)`` (every chunk
is held that long, order kept).

All listeners share one asyncio loop in a daemon thread; ``close()`` stops it, and so does a lifetime timer, so a
crashed test cannot leave a proxy running.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

CLIENT = "client"
CHUNK = 64 << 10


class Mode(enum.Enum):
    PASS = "pass"
    DROP = "drop"
    DELAY = "delay"


@dataclass(frozen=True, slots=True)
class Link:
    """What happens to bytes on one directed link."""

    mode: Mode = Mode.PASS
    delay_s: float = 0.0


PASS = Link()
DROP = Link(Mode.DROP)


def delay(seconds: float) -> Link:
    return Link(Mode.DELAY, seconds)


Address = tuple[str, int]
# (client address as the proxy sees it, proxy listen address) -> node id of the client, or None if unknown
Identify = Callable[[Address, Address], str | None]


@dataclass(eq=False)
class _Conn:
    src: str
    dst: str
    transports: list[asyncio.Transport] = field(default_factory=list)
    tainted: bool = False  # bytes were dropped: the stream has a hole

    def abort(self) -> None:
        for transport in self.transports:
            transport.abort()


class FaultProxy:
    """All listeners of one cluster test. Thread-safe: tests call it from their own thread."""

    def __init__(self, identify: Identify | None = None, *, lifetime_s: float = 900.0) -> None:
        self._identify = identify
        self._lifetime_s = lifetime_s
        self._links: dict[tuple[str, str], Link] = {}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="fault-proxy", daemon=True)
        self._servers: list[asyncio.AbstractServer] = []
        self._conns: set[_Conn] = set()
        self.passed: Counter[tuple[str, str]] = Counter()  # bytes forwarded per directed link
        self.dropped: Counter[tuple[str, str]] = Counter()  # bytes blackholed per directed link
        self.connections: Counter[tuple[str, str]] = Counter()  # connections accepted per (client, server)
        self.refused = 0  # connections reset because their process could not be identified

    # -- lifecycle -----------------------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.call_later(self._lifetime_s, self._shutdown)
        try:
            self._loop.run_forever()
        finally:
            self._loop.close()

    def _call(self, coro: Any) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result(10)

    def close(self) -> None:
        """Close every listener and connection and stop the loop's thread."""
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._shutdown)
            self._thread.join(10)

    def _shutdown(self) -> None:
        for server in self._servers:
            server.close()
        for conn in list(self._conns):
            conn.abort()
        self._loop.call_later(0.05, self._loop.stop)

    # -- listeners -----------------------------------------------------------------------------------------------
    def listen(self, dst: str, listen: Address, target: Address) -> None:
        """Accept on ``listen`` and forward to node ``dst`` at ``target``."""

        async def open_listener() -> None:
            server = await asyncio.start_server(
                lambda r, w: self._accept(r, w, dst, listen, target), listen[0], listen[1], reuse_address=True)
            self._servers.append(server)

        self._call(open_listener())

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, dst: str,
                      listen: Address, target: Address) -> None:
        src = CLIENT
        if self._identify is not None:
            peer = writer.get_extra_info("peername")
            found = await asyncio.to_thread(self._identify, (peer[0], peer[1]), listen)
            if found is None:
                self.refused += 1
                writer.transport.abort()
                return
            src = found
        self.connections[(src, dst)] += 1
        conn = _Conn(src, dst, [writer.transport])  # type: ignore[list-item]  # a TCP stream's is a Transport
        try:
            up_reader, up_writer = await asyncio.open_connection(*target)
        except OSError:
            writer.transport.abort()  # the node is down: the client sees its connection reset
            return
        conn.transports.append(up_writer.transport)  # type: ignore[arg-type]
        self._conns.add(conn)
        try:
            await asyncio.gather(self._pump(conn, reader, up_writer, src, dst),
                                 self._pump(conn, up_reader, writer, dst, src))
        finally:
            self._conns.discard(conn)
            conn.abort()

    async def _pump(self, conn: _Conn, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, src: str,
                    dst: str) -> None:
        """Copy one direction; each chunk is judged by the link's mode when it arrives."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue(maxsize=256)
        sender = loop.create_task(self._send(queue, writer))
        try:
            while data := await reader.read(CHUNK):
                link = self._links.get((src, dst), PASS)
                if link.mode is Mode.DROP:
                    conn.tainted = True
                    self.dropped[(src, dst)] += len(data)
                    continue
                if conn.tainted:
                    break
                self.passed[(src, dst)] += len(data)
                await queue.put((loop.time() + link.delay_s, data))
        except OSError:
            pass
        finally:
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(None)
            conn.abort()
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await sender

    @staticmethod
    async def _send(queue: asyncio.Queue[tuple[float, bytes] | None], writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        while (item := await queue.get()) is not None:
            due, data = item
            if (wait := due - loop.time()) > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()

    # -- faults --------------------------------------------------------------------------------------------------
    def set_link(self, src: str, dst: str, link: Link) -> None:
        """Set the fault on the directed link ``src`` -> ``dst`` (applies to open connections at once)."""
        links = dict(self._links)
        links[(src, dst)] = link
        self._links = links  # one atomic swap: the loop thread reads either the old or the new map
        if link.mode is not Mode.DROP:
            self._loop.call_soon_threadsafe(self._reset_tainted)

    def link(self, src: str, dst: str) -> Link:
        return self._links.get((src, dst), PASS)

    def isolate(self, node: str, others: Iterable[str], link: Link = DROP) -> None:
        """Apply ``link`` to both directions between ``node`` and each of ``others``."""
        for other in others:
            self.set_link(node, other, link)
            self.set_link(other, node, link)

    def heal(self) -> None:
        """Every link back to ``PASS``; connections that lost bytes are reset so their peers redial."""
        self._links = {}
        self._loop.call_soon_threadsafe(self._reset_tainted)

    def _reset_tainted(self) -> None:
        for conn in list(self._conns):
            if conn.tainted and self.link(conn.src, conn.dst).mode is not Mode.DROP \
                    and self.link(conn.dst, conn.src).mode is not Mode.DROP:
                conn.abort()
