"""TLS building blocks over real sockets: option checks, HTTPS in HttpServer, the two-port gRPC server whose cluster
services need a cluster certificate, and the Raft transport over mutual TLS."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from broker.certs import create_ca, issue
from broker.grpc_server import GrpcServer
from broker.http.server import HttpServer
from broker.http.types import HttpRequest, HttpResponse
from broker.tls import ClusterServiceGuard, ClusterTls, ServerTls, channel_credentials, load_node_tls
from cluster.core.messages import Message, MsgType
from cluster.forwarding import AdminClient, ClusterStatus, add_services
from cluster.transport import PeerTransport, TransportServicer, pb_grpc
from proto.cluster.v1 import transport_pb2 as pb


@dataclass(frozen=True)
class Pki:
    ca: Path  # the cluster CA's directory
    other: Path  # another CA's directory

    def cert(self, name: str) -> tuple[str, str]:
        return str(self.ca / f"{name}.pem"), str(self.ca / f"{name}.key")

    def rogue(self) -> tuple[str, str]:
        return str(self.other / "rogue.pem"), str(self.other / "rogue.key")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    root = tmp_path_factory.mktemp("pki")
    create_ca(root / "ca")
    create_ca(root / "other")
    for name in ("n1", "n2", "srv"):
        issue(root / "ca", name, ["127.0.0.1", "localhost"])
    issue(root / "other", "rogue", ["127.0.0.1"])
    return Pki(root / "ca", root / "other")


# -- option checks ---------------------------------------------------------------------------------------------

def test_option_combinations_are_checked_before_start(pki: Pki) -> None:
    cert, key = pki.cert("srv")
    ca = str(pki.ca / "ca.pem")
    with pytest.raises(ValueError, match="--tls-cert and --tls-key"):
        load_node_tls(tls_cert=cert, tls_key=None, cluster_ca=None, node_cert=None, node_key=None, clustered=False)
    with pytest.raises(ValueError, match="go together"):
        load_node_tls(tls_cert=None, tls_key=None, cluster_ca=ca, node_cert=cert, node_key=None, clustered=True)
    with pytest.raises(ValueError, match="give --peers"):
        load_node_tls(tls_cert=None, tls_key=None, cluster_ca=ca, node_cert=cert, node_key=key, clustered=False)
    with pytest.raises(ValueError, match="also needs --cluster-ca"):
        load_node_tls(tls_cert=cert, tls_key=key, cluster_ca=None, node_cert=None, node_key=None, clustered=True)
    with pytest.raises(ValueError, match="--tls-cert /nonexistent"):
        load_node_tls(tls_cert="/nonexistent", tls_key=key, cluster_ca=None, node_cert=None, node_key=None,
                      clustered=False)
    with pytest.raises(ValueError, match="not a PEM file"):
        load_node_tls(tls_cert=cert, tls_key=__file__,
                      cluster_ca=None, node_cert=None, node_key=None, clustered=False)
    tls = load_node_tls(tls_cert=cert, tls_key=key, cluster_ca=ca, node_cert=cert, node_key=key, clustered=True)
    assert tls.server is not None and tls.cluster is not None


def test_a_key_that_does_not_match_the_certificate_is_refused(pki: Pki) -> None:
    cert, _ = pki.cert("srv")
    _, other_key = pki.cert("n1")
    with pytest.raises(ValueError, match="--tls-cert/--tls-key"):
        load_node_tls(tls_cert=cert, tls_key=other_key, cluster_ca=None, node_cert=None, node_key=None,
                      clustered=False)
    with pytest.raises(ValueError, match="--node-cert/--node-key"):
        ClusterTls.load(str(pki.ca / "ca.pem"), cert, other_key)


# -- HTTPS -----------------------------------------------------------------------------------------------------

async def _hello(request: HttpRequest) -> HttpResponse:
    return HttpResponse(200, b"hello over " + request.method.encode())


async def _https_get(port: int, cafile: Path) -> bytes:
    context = ssl.create_default_context(cafile=str(cafile))
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
    try:
        writer.write(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        return await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()


async def test_https_serves_clients_that_trust_the_ca_and_fails_others(pki: Pki) -> None:
    server = HttpServer(_hello, "127.0.0.1", 0, ssl_context=ServerTls.load(*pki.cert("srv")).ssl_context())
    await server.start()
    try:
        assert server.scheme == "https"
        reply = await _https_get(server.port, pki.ca / "ca.pem")
        assert reply.startswith(b"HTTP/1.1 200") and reply.endswith(b"hello over GET")
        with pytest.raises(ssl.SSLCertVerificationError):
            await _https_get(server.port, pki.other / "ca.pem")
        # Plain HTTP to the TLS port gets no HTTP answer.
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert not (await asyncio.wait_for(reader.read(), 5)).startswith(b"HTTP/1.1 200")
        writer.close()
    finally:
        await server.stop(1.0)


# -- gRPC: client port and cluster port ------------------------------------------------------------------------

class FakeNode:
    cluster_id = "c1"

    def status(self) -> ClusterStatus:
        return ClusterStatus("n1", "n1", 3, "leader", 7, 7, 1, 7, 0, ("n1",), ())

    async def accept_forwarded(self, datas: list[bytes]) -> list[tuple[int, int]]:
        return [(i + 1, 3) for i in range(len(datas))]

    async def add_node(self, node_id: str, address: str) -> None: ...

    async def remove_node(self, node_id: str) -> None: ...

    async def transfer_leader(self, node_id: str) -> None: ...


@pytest.fixture
async def two_ports(pki: Pki) -> AsyncIterator[GrpcServer]:
    cluster = ClusterTls.load(str(pki.ca / "ca.pem"), *pki.cert("n1"))
    transport = PeerTransport("n1", "c1", "", {}, lambda msgs: None)
    server = GrpcServer("127.0.0.1", 0, [lambda s: add_services(s, FakeNode()),
                                          TransportServicer(transport).add_to_server],
                        interceptors=[ClusterServiceGuard()],
                        credentials=ServerTls.load(*pki.cert("srv")).grpc_credentials(),
                        cluster_port=0, cluster_credentials=cluster.server_credentials())
    await server.start()
    yield server
    await server.stop(None)  # type: ignore[arg-type]


async def _status(address: str, creds: grpc.ChannelCredentials) -> ClusterStatus:
    client = AdminClient(address, creds)
    try:
        return await client.status(timeout=5)
    finally:
        await client.close()


async def test_cluster_services_answer_cluster_certificates_only(two_ports: GrpcServer, pki: Pki) -> None:
    ca = str(pki.ca / "ca.pem")
    assert two_ports.cluster_port is not None and two_ports.cluster_port != two_ports.port
    cluster_addr = f"localhost:{two_ports.cluster_port}"
    client_addr = f"localhost:{two_ports.port}"
    status = await _status(cluster_addr, channel_credentials(ca, *pki.cert("n2")))
    assert (status.node_id, status.term) == ("n1", 3)
    # The client port speaks TLS but never asks for a certificate: the cluster services refuse the call there,
    # even when the caller holds a cluster certificate.
    for creds in (channel_credentials(ca), channel_credentials(ca, *pki.cert("n2"))):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await _status(client_addr, creds)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    # The cluster port: no certificate, or one from another CA, fails the handshake.
    for creds in (channel_credentials(ca), channel_credentials(ca, *pki.rogue())):
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            await _status(cluster_addr, creds)
        assert failed.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_forwarding_and_raft_streams_are_refused_on_the_client_port(two_ports: GrpcServer, pki: Pki) -> None:
    async with grpc.aio.secure_channel(f"localhost:{two_ports.port}",
                                       channel_credentials(str(pki.ca / "ca.pem"))) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as forward:
            await pb_grpc.RaftForwardStub(channel).Forward(pb.ForwardRequest(cluster_id="c1", data=[b"x"]),
                                                          timeout=5)
        assert forward.value.code() == grpc.StatusCode.UNAUTHENTICATED

        async def frames() -> AsyncIterator[pb.Frame]:
            yield pb.Frame(hello=pb.Hello(cluster_id="c1", node_id="evil", address=""))

        call = pb_grpc.RaftTransportStub(channel).Stream(frames(), timeout=5)
        with pytest.raises(grpc.aio.AioRpcError) as stream:
            async for _ in call:
                pass
        assert stream.value.code() == grpc.StatusCode.UNAUTHENTICATED


# -- the Raft transport over mutual TLS ------------------------------------------------------------------------

async def _transport(name: str, cert: tuple[str, str], pki: Pki, peers: dict[str, str],
                     got: list[Message], arrived: asyncio.Event) -> tuple[PeerTransport, grpc.aio.Server, str]:
    tls = ClusterTls.load(str(pki.ca / "ca.pem"), *cert)
    server = grpc.aio.server(interceptors=[ClusterServiceGuard()])
    port = server.add_secure_port("127.0.0.1:0", tls.server_credentials())

    def inbox(msgs: list[Message]) -> None:
        got.extend(msgs)
        arrived.set()

    address = f"127.0.0.1:{port}"
    t = PeerTransport(name, "c1", address, {**peers, name: address}, inbox, credentials=tls.channel_credentials())
    TransportServicer(t).add_to_server(server)
    await server.start()
    return t, server, address


async def test_raft_messages_flow_over_mtls_and_not_from_another_ca(pki: Pki, caplog: pytest.LogCaptureFixture
                                                                    ) -> None:
    got_a: list[Message] = []
    got_b: list[Message] = []
    got_r: list[Message] = []
    ev_a, ev_b = asyncio.Event(), asyncio.Event()
    a, sa, addr_a = await _transport("a", pki.cert("n1"), pki, {}, got_a, ev_a)
    b, sb, _ = await _transport("b", pki.cert("n2"), pki, {"a": addr_a}, got_b, ev_b)
    # "r" holds a certificate of another CA (its own CA file is the other CA, so it trusts only that one).
    rogue_tls = ClusterTls.load(str(pki.other / "ca.pem"), *pki.rogue())
    rs = grpc.aio.server()
    rport = rs.add_secure_port("127.0.0.1:0", rogue_tls.server_credentials())
    r = PeerTransport("0r", "c1", f"127.0.0.1:{rport}", {"a": addr_a}, got_r.extend,
                      credentials=rogue_tls.channel_credentials())
    TransportServicer(r).add_to_server(rs)
    await rs.start()
    try:
        with caplog.at_level("WARNING", logger="cluster.transport"):
            for t in (a, b, r):
                t.start()
            b.send([Message(MsgType.HEARTBEAT, "b", "a", term=1, cluster_id="c1", commit=5)])
            r.send([Message(MsgType.HEARTBEAT, "0r", "a", term=9, cluster_id="c1", commit=1)])
            await asyncio.wait_for(ev_a.wait(), 5)
            assert [(m.frm, m.commit) for m in got_a] == [("b", 5)]
            async with asyncio.timeout(5):  # the rogue logs that its handshake with a failed
                while not any("peer-tls-refused" in rec.getMessage() for rec in caplog.records):
                    await asyncio.sleep(0.02)
        assert all(m.frm != "0r" for m in got_a)
        assert not r.connected("a")
    finally:
        for t in (a, b, r):
            await t.stop()
        for s in (sa, sb, rs):
            await s.stop(None)


def _keep_alive_request(port: int, cafile: Path) -> ssl.SSLSocket:
    """A blocking TLS socket that got one answer and then sits idle, as an SDK's pooled connection does."""
    context = ssl.create_default_context(cafile=str(cafile))
    sock = context.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=5), server_hostname="localhost")
    sock.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
    assert sock.recv(4096).startswith(b"HTTP/1.1 200")
    return sock


async def test_idle_tls_connections_do_not_hold_a_graceful_stop(pki: Pki) -> None:
    server = HttpServer(_hello, "127.0.0.1", 0, ssl_context=ServerTls.load(*pki.cert("srv")).ssl_context())
    await server.start()
    sock = await asyncio.to_thread(_keep_alive_request, server.port, pki.ca / "ca.pem")
    try:
        # The client never answers the server's close_notify; the stop must not wait out its 10 s grace for it.
        await asyncio.wait_for(server.stop(10.0), 3.0)
    finally:
        sock.close()
