"""Raft messages between nodes: one long-lived gRPC bidirectional stream per peer pair, batches per frame.

Sending never blocks the Raft loop: ``send`` appends to a bounded per-peer queue and returns; when the queue is full
the message is dropped (Raft retransmits what matters). Whatever stream to that peer is live drains the queue into
frames: the one this node dialled (its request side) or the one the peer dialled (its response side). To keep one
stream per pair, the node with the smaller id dials; the other dials only while no stream from the smaller one is
up (it knows a node added later only once that node has said hello), and hangs up its own stream when one arrives.
Dialling retries with exponential backoff. The first frame of a stream is a ``Hello`` naming the sender, its cluster
and its advertised address, so a node learns the address of a peer that joined after it started.

With ``credentials`` (mutual TLS, see broker/tls.py) every channel to a peer presents this node's certificate and
accepts only a peer certificate from the cluster CA; a peer whose handshake fails is logged as a warning once per
streak of failures. A stream whose Hello names another cluster id is refused on both sides and logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc

from cluster.core.codec import CodecError, decode_batch, encode_batch
from cluster.core.messages import Message
from proto.cluster.v1 import transport_pb2 as pb

# The generated gRPC module has no type information: bind it as Any instead of type-checking generated code.
pb_grpc: Any = importlib.import_module("proto.cluster.v1.transport_pb2_grpc")

log = logging.getLogger(__name__)

CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", 64 << 20),
    ("grpc.max_send_message_length", 64 << 20),
    # Find a silently dead connection (a partition that drops packets) within ~30 s.
    ("grpc.keepalive_time_ms", 20_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    # gRPC's own reconnect backoff grows to 120 s by default: a healed partition must not wait that long.
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 2_000),
]
# Options for the node's gRPC server (``grpc.aio.server(options=SERVER_OPTIONS)``): accept the peers' keepalive
# pings on idle streams instead of answering them with GOAWAY, and large frames.
SERVER_OPTIONS = [
    ("grpc.max_receive_message_length", 64 << 20),
    ("grpc.max_send_message_length", 64 << 20),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ("grpc.http2.max_ping_strikes", 0),
]
MAX_FRAME_BYTES = 3 << 20  # under gRPC's default 4 MiB receive limit of a server we do not configure


def _msg_size(m: Message) -> int:
    size = 64 + sum(e.size() for e in m.entries)
    if m.snapshot is not None:
        size += len(m.snapshot.data)
    return size


class _Stream:
    """One live stream's view of a peer queue; ``closed`` ends its sender."""

    __slots__ = ("call", "closed")

    def __init__(self) -> None:
        self.closed = False
        self.call: Any = None


class _Peer:
    def __init__(self, node_id: str, address: str, limit: int) -> None:
        self.id = node_id
        self.address = address
        self.queue: deque[Message] = deque()
        self.limit = limit
        self.data = asyncio.Event()
        self.inbound: set[_Stream] = set()
        self.outbound: _Stream | None = None
        self.address_known = asyncio.Event()
        if address:
            self.address_known.set()
        self.inbound_gone = asyncio.Event()
        self.inbound_gone.set()
        self.dialer: asyncio.Task[None] | None = None
        self.dropped = 0
        self.sent = 0
        self.connected = False

    def push(self, m: Message) -> None:
        if len(self.queue) >= self.limit:
            self.dropped += 1
            return
        self.queue.append(m)
        self.data.set()

    async def next_batch(self, stream: _Stream) -> list[Message] | None:
        """Messages for one frame (up to MAX_FRAME_BYTES, at least one), or None once ``stream`` has closed."""
        while not self.queue:
            if stream.closed:
                return None
            self.data.clear()
            await self.data.wait()
        if stream.closed:
            return None
        batch: list[Message] = []
        size = 0
        q = self.queue
        while q:
            s = _msg_size(q[0])
            if batch and size + s > MAX_FRAME_BYTES:
                break
            batch.append(q.popleft())
            size += s
        self.sent += len(batch)
        return batch


class PeerTransport:
    """Streams to every peer of ``node_id``; received messages go to ``on_messages`` (on the event loop)."""

    def __init__(self, node_id: str, cluster_id: str, address: str, peers: dict[str, str],
                 on_messages: Callable[[list[Message]], None], *, queue_limit: int = 8192,
                 backoff_s: tuple[float, float] = (0.05, 2.0),
                 credentials: grpc.ChannelCredentials | None = None) -> None:
        self.node_id = node_id
        self._credentials = credentials
        self.cluster_id = cluster_id
        self.address = address
        self._on_messages = on_messages
        self._limit = queue_limit
        self._backoff = backoff_s
        self._peers: dict[str, _Peer] = {}
        self._channels: dict[str, tuple[str, grpc.aio.Channel]] = {}
        self._running = False
        self._blocked: frozenset[str] = frozenset()
        self.rejected_streams = 0
        self.bad_frames = 0
        for nid, addr in peers.items():
            if nid != node_id:
                self._peers[nid] = _Peer(nid, addr, queue_limit)

    # -- lifecycle ---------------------------------------------------------------------------------------------
    def start(self) -> None:
        self._running = True
        for peer in self._peers.values():
            self._start_dialer(peer)

    async def stop(self) -> None:
        self._running = False
        tasks = []
        for peer in self._peers.values():
            self._close_streams(peer)
            if peer.dialer is not None:
                peer.dialer.cancel()
                tasks.append(peer.dialer)
        await asyncio.gather(*tasks, return_exceptions=True)
        for _, channel in self._channels.values():
            await channel.close(None)
        self._channels.clear()

    def _close_streams(self, peer: _Peer) -> None:
        for st in [*peer.inbound, *([peer.outbound] if peer.outbound else [])]:
            st.closed = True
            if st.call is not None:
                st.call.cancel()
        peer.data.set()

    # -- membership of the transport ---------------------------------------------------------------------------
    def set_peer(self, node_id: str, address: str) -> None:
        """Learn (or update) a peer's address; dial it if this node is the one that dials."""
        if node_id == self.node_id or not address:
            return
        peer = self._peers.get(node_id)
        if peer is None:
            peer = self._peers[node_id] = _Peer(node_id, address, self._limit)
            if self._running:
                self._start_dialer(peer)
            return
        if peer.address != address:
            peer.address = address
            peer.address_known.set()
            if peer.outbound is not None and peer.outbound.call is not None:
                peer.outbound.call.cancel()  # redial at the new address

    def remove_peer(self, node_id: str) -> None:
        peer = self._peers.pop(node_id, None)
        if peer is None:
            return
        self._close_streams(peer)
        if peer.dialer is not None:
            peer.dialer.cancel()

    def address_of(self, node_id: str) -> str:
        if node_id == self.node_id:
            return self.address
        peer = self._peers.get(node_id)
        return peer.address if peer is not None else ""

    def peers(self) -> dict[str, str]:
        return {nid: p.address for nid, p in self._peers.items()}

    def connected(self, node_id: str) -> bool:
        peer = self._peers.get(node_id)
        return peer is not None and (bool(peer.inbound) or (peer.outbound is not None and peer.connected))

    def channel(self, node_id: str) -> grpc.aio.Channel | None:
        """A shared client channel to ``node_id`` for unary calls (forwarding, admin), None if its address is
        unknown."""
        address = self.address_of(node_id)
        if not address:
            return None
        cached = self._channels.get(node_id)
        if cached is not None and cached[0] == address:
            return cached[1]
        if self._credentials is None:
            channel = grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS)
        else:
            channel = grpc.aio.secure_channel(address, self._credentials, options=CHANNEL_OPTIONS)
        self._channels[node_id] = (address, channel)
        return channel

    def block(self, node_ids: set[str] | frozenset[str]) -> None:
        """Fault injection (tests, drills): drop every Raft message to and from ``node_ids`` until unblocked."""
        self._blocked = frozenset(node_ids)

    # -- sending -----------------------------------------------------------------------------------------------
    def send(self, messages: list[Message]) -> None:
        peers = self._peers
        blocked = self._blocked
        for m in messages:
            peer = peers.get(m.to)
            if peer is not None and m.to not in blocked:
                peer.push(m)

    def stats(self) -> dict[str, tuple[int, int, int]]:
        """Per peer: (queued, sent, dropped)."""
        return {nid: (len(p.queue), p.sent, p.dropped) for nid, p in self._peers.items()}

    def _hello(self) -> pb.Frame:
        return pb.Frame(hello=pb.Hello(cluster_id=self.cluster_id, node_id=self.node_id, address=self.address))

    def _deliver(self, frame: pb.Frame) -> None:
        if frame.batch:
            try:
                msgs = decode_batch(frame.batch)
            except CodecError:
                self.bad_frames += 1  # Raft tolerates a lost batch; a corrupt one must not reach the core
                return
            if self._blocked:
                msgs = [m for m in msgs if m.frm not in self._blocked]
            self._on_messages(msgs)

    # -- dialling ----------------------------------------------------------------------------------------------
    def _start_dialer(self, peer: _Peer) -> None:
        peer.dialer = asyncio.get_running_loop().create_task(self._dial_loop(peer), name=f"raft-dial-{peer.id}")

    def _defers_to(self, peer: _Peer) -> bool:
        """True when ``peer`` is the one that dials this pair (the smaller id)."""
        return peer.id < self.node_id

    async def _dial_loop(self, peer: _Peer) -> None:
        delay = self._backoff[0]
        tls_warned = False
        while self._running and self._peers.get(peer.id) is peer:
            await peer.address_known.wait()
            if self._defers_to(peer) and peer.inbound:
                await peer.inbound_gone.wait()
                continue
            st = _Stream()
            peer.outbound = st
            got_reply = False
            try:
                channel = self.channel(peer.id)
                if channel is None:
                    peer.address_known.clear()
                    continue
                call = pb_grpc.RaftTransportStub(channel).Stream(self._outbound_frames(peer, st))
                st.call = call
                async for frame in call:
                    if not got_reply:
                        got_reply = True
                        peer.connected = True
                        delay = self._backoff[0]
                        tls_warned = False
                        if frame.HasField("hello") and frame.hello.cluster_id != self.cluster_id:
                            log.error("peer %s belongs to cluster %r, not %r", peer.id, frame.hello.cluster_id,
                                      self.cluster_id)
                            break
                    self._deliver(frame)
            except asyncio.CancelledError:
                if not self._running or self._peers.get(peer.id) is not peer:
                    raise
            except grpc.aio.AioRpcError as exc:
                if exc.code() != grpc.StatusCode.CANCELLED:
                    log.debug("stream to %s ended: %s", peer.id, exc.code())
                tls_failure = _tls_failure(exc)
                if tls_failure and not tls_warned:
                    log.warning("event=peer-tls-refused peer=%s address=%s detail=%r", peer.id, peer.address,
                                tls_failure)
                tls_warned = tls_failure is not None
            finally:
                st.closed = True
                peer.connected = False
                if peer.outbound is st:
                    peer.outbound = None
                peer.data.set()
            if not self._running:
                return
            if self._defers_to(peer) and peer.inbound:
                continue  # the peer dialled us: use its stream
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._backoff[1])

    async def _outbound_frames(self, peer: _Peer, st: _Stream) -> AsyncIterator[pb.Frame]:
        yield self._hello()
        while True:
            batch = await peer.next_batch(st)
            if batch is None:
                return
            yield pb.Frame(batch=encode_batch(batch))

    # -- the server side ---------------------------------------------------------------------------------------
    async def serve_stream(self, requests: AsyncIterator[pb.Frame], context: grpc.aio.ServicerContext
                           ) -> AsyncIterator[pb.Frame]:
        """The ``RaftTransport.Stream`` handler: read the peer's frames and send ours on the response side."""
        try:
            first = await requests.__anext__()
        except StopAsyncIteration:
            return
        hello = first.hello
        if hello.cluster_id != self.cluster_id or not hello.node_id or hello.node_id == self.node_id:
            self.rejected_streams += 1
            log.warning("event=peer-refused node=%r cluster=%r reason=%s", hello.node_id, hello.cluster_id,
                        "cluster id" if hello.cluster_id != self.cluster_id else "node id")
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                                f"node {self.node_id} of cluster {self.cluster_id!r} refuses {hello.node_id!r} of "
                                f"cluster {hello.cluster_id!r}")
            return
        self.set_peer(hello.node_id, hello.address)
        peer = self._peers.get(hello.node_id)
        if peer is None:
            peer = self._peers[hello.node_id] = _Peer(hello.node_id, hello.address, self._limit)
        self._deliver(first)
        st = _Stream()
        peer.inbound.add(st)
        peer.inbound_gone.clear()
        if self._defers_to(peer) and peer.outbound is not None:
            # The peer that dials this pair has connected: wind our stream down. Closing (not cancelling) ends its
            # request side after the frames already handed to gRPC, and the peer then ends the call: no loss.
            peer.outbound.closed = True
            peer.data.set()
        reader = asyncio.get_running_loop().create_task(self._read_inbound(requests, peer, st))
        try:
            yield self._hello()
            while True:
                batch = await peer.next_batch(st)
                if batch is None:
                    return
                yield pb.Frame(batch=encode_batch(batch))
        finally:
            st.closed = True
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader
            peer.inbound.discard(st)
            if not peer.inbound:
                peer.inbound_gone.set()

    async def _read_inbound(self, requests: AsyncIterator[pb.Frame], peer: _Peer, st: _Stream) -> None:
        try:
            async for frame in requests:
                self._deliver(frame)
        except grpc.aio.AioRpcError:
            pass
        finally:
            st.closed = True
            peer.data.set()


def _tls_failure(exc: grpc.aio.AioRpcError) -> str | None:
    """The handshake error of a call that failed because TLS refused the peer (or the peer refused us)."""
    details = exc.details() or ""
    lowered = details.lower()
    if exc.code() == grpc.StatusCode.UNAVAILABLE and ("handshake" in lowered or "certificate" in lowered
                                                       or "ssl" in lowered or "tls" in lowered):
        return details
    return None


class TransportServicer:
    """``RaftTransport`` service (registered with ``add_to_server``)."""

    def __init__(self, transport: PeerTransport) -> None:
        self._t = transport

    async def Stream(self, request_iterator: AsyncIterator[pb.Frame], context: grpc.aio.ServicerContext
                     ) -> AsyncIterator[pb.Frame]:
        async for frame in self._t.serve_stream(request_iterator, context):  # an async generator, as gRPC requires
            yield frame

    def add_to_server(self, server: grpc.aio.Server) -> None:
        pb_grpc.add_RaftTransportServicer_to_server(self, server)
