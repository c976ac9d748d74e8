"""PeerTransport over real gRPC: one stream per pair, order, late joiners, foreign clusters, bounded queues."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import grpc
import pytest

from cluster.core.codec import encode_batch
from cluster.core.messages import Message, MsgType
from cluster.transport import PeerTransport, TransportServicer, pb_grpc
from proto.cluster.v1 import transport_pb2 as pb


@dataclass
class Inbox:
    got: list[Message] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def __call__(self, msgs: list[Message]) -> None:
        self.got.extend(msgs)
        self.changed.set()

    async def wait(self, predicate: Callable[[list[Message]], bool], timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate(self.got):
                self.changed.clear()
                await self.changed.wait()


@dataclass
class Member:
    node_id: str
    server: grpc.aio.Server
    address: str
    transport: PeerTransport | None = None
    inbox: Inbox = field(default_factory=Inbox)


async def until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll a condition the transport exposes no event for (stream bookkeeping), bounded."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


def bind(node_id: str) -> Member:
    server = grpc.aio.server()
    port = server.add_insecure_port("127.0.0.1:0")
    return Member(node_id, server, f"127.0.0.1:{port}")


async def start(m: Member, peers: dict[str, str], cluster_id: str = "c1", **kw: object) -> PeerTransport:
    t = PeerTransport(m.node_id, cluster_id, m.address, peers, m.inbox, **kw)  # type: ignore[arg-type]
    TransportServicer(t).add_to_server(m.server)
    await m.server.start()
    t.start()
    m.transport = t
    return t


def msg(frm: str, to: str, n: int) -> Message:
    return Message(MsgType.HEARTBEAT, frm, to, term=1, cluster_id="c1", commit=n)


@pytest.fixture
async def members() -> AsyncIterator[list[Member]]:
    ms: list[Member] = []
    yield ms
    for m in ms:
        if m.transport is not None:
            await m.transport.stop()
        await m.server.stop(None)


async def test_one_stream_per_pair_carries_batches_both_ways_in_order(members: list[Member]) -> None:
    a, b = bind("a"), bind("b")
    members += [a, b]
    peers = {"a": a.address, "b": b.address}
    ta, tb = await start(a, peers), await start(b, peers)
    for n in range(500):
        ta.send([msg("a", "b", n)])
        tb.send([msg("b", "a", n)])
    await b.inbox.wait(lambda got: len(got) == 500)
    await a.inbox.wait(lambda got: len(got) == 500)
    assert [m.commit for m in b.inbox.got] == list(range(500))
    assert [m.commit for m in a.inbox.got] == list(range(500))
    # The smaller id dialled; the larger one winds its own stream down and answers on that one.
    await until(lambda: not ta._peers["b"].inbound and tb._peers["a"].outbound is None)
    assert ta.connected("b") and tb.connected("a")
    assert ta._peers["b"].outbound is not None and len(tb._peers["a"].inbound) == 1
    ta.send([msg("a", "b", 500)])
    tb.send([msg("b", "a", 500)])
    await b.inbox.wait(lambda got: len(got) == 501)
    await a.inbox.wait(lambda got: len(got) == 501)


async def test_a_node_added_later_is_learned_from_its_hello(members: list[Member]) -> None:
    a, b, c = bind("a"), bind("b"), bind("c")
    members += [a, b, c]
    ta = await start(a, {"a": a.address, "b": b.address})
    await start(b, {"a": a.address, "b": b.address})
    tc = await start(c, {"a": a.address, "b": b.address, "c": c.address})
    tc.send([msg("c", "a", 1)])
    await a.inbox.wait(lambda got: any(m.frm == "c" for m in got))
    assert ta.address_of("c") == c.address
    ta.send([msg("a", "c", 2)])
    await c.inbox.wait(lambda got: any(m.frm == "a" for m in got))


async def test_a_stream_from_another_cluster_is_refused(members: list[Member]) -> None:
    a, x = bind("a"), bind("x")
    members += [a, x]
    ta = await start(a, {"a": a.address})
    tx = await start(x, {"a": a.address, "x": x.address}, cluster_id="other")
    tx.send([msg("x", "a", 1)])
    await until(lambda: ta.rejected_streams > 0)
    assert a.inbox.got == []


async def test_a_full_queue_drops_instead_of_blocking(members: list[Member]) -> None:
    a, gone = bind("a"), bind("gone")  # "gone" is bound but never started: nothing answers there
    members += [a]
    ta = await start(a, {"a": a.address, "gone": gone.address}, queue_limit=10)
    ta.send([msg("a", "gone", n) for n in range(50)])
    queued, _, dropped = ta.stats()["gone"]
    assert (queued, dropped) == (10, 40)
    await gone.server.stop(None)


async def test_an_undecodable_batch_is_dropped_and_the_stream_goes_on(members: list[Member]) -> None:
    a = bind("a")
    members.append(a)
    ta = await start(a, {"a": a.address})
    frames = [pb.Frame(hello=pb.Hello(cluster_id="c1", node_id="z", address="")),
              pb.Frame(batch=b"\xff\xff not protobuf"),
              pb.Frame(batch=encode_batch([msg("z", "a", 7)]))]

    async def requests() -> AsyncIterator[pb.Frame]:
        for f in frames:
            yield f
        await a.inbox.wait(lambda got: len(got) == 1)  # keep the stream open until the good batch arrived

    async with grpc.aio.insecure_channel(a.address) as channel:
        call = pb_grpc.RaftTransportStub(channel).Stream(requests())
        async for _ in call:
            pass
    assert [m.commit for m in a.inbox.got] == [7]
    assert ta.bad_frames == 1
