"""The fault proxy on plain sockets: pass, blackhole per direction, reset on heal, delay, self-stop; and procnet."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from tests.cluster_e2e import procnet
from tests.cluster_e2e.proxy import DROP, PASS, FaultProxy, delay


class EchoServer:
    """Echoes every byte back and remembers what it received."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.address: tuple[str, int] = self.sock.getsockname()
        self.received = bytearray()
        self.got = threading.Condition()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._echo, args=(conn,), daemon=True).start()

    def _echo(self, conn: socket.socket) -> None:
        with conn:
            while True:
                try:
                    data = conn.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                with self.got:
                    self.received += data
                    self.got.notify_all()
                try:
                    conn.sendall(data)
                except OSError:
                    return

    def wait_received(self, size: int, timeout: float) -> bool:
        with self.got:
            return self.got.wait_for(lambda: len(self.received) >= size, timeout)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    server = EchoServer()
    yield server
    server.close()


@pytest.fixture
def proxy(echo: EchoServer) -> Iterator[tuple[FaultProxy, tuple[str, int]]]:
    fp = FaultProxy(lambda client, server: "a")  # every connection comes from node "a"
    fp.start()
    listen = ("127.0.1.200", echo.address[1])
    fp.listen("b", listen, echo.address)
    yield fp, listen
    fp.close()


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def test_pass_forwards_both_ways(proxy: tuple[FaultProxy, tuple[str, int]], echo: EchoServer) -> None:
    fp, listen = proxy
    with socket.create_connection(listen, timeout=5) as s:
        s.sendall(b"hello")
        assert _recv_exactly(s, 5) == b"hello"
    assert fp.passed[("a", "b")] == 5 and fp.passed[("b", "a")] == 5
    assert fp.connections[("a", "b")] == 1


def test_drop_one_direction_then_heal_resets_the_holed_stream(proxy: tuple[FaultProxy, tuple[str, int]],
                                                              echo: EchoServer) -> None:
    fp, listen = proxy
    fp.set_link("b", "a", DROP)  # replies vanish, requests still arrive
    with socket.create_connection(listen, timeout=5) as s:
        s.sendall(b"ping")
        assert echo.wait_received(4, 5)
        s.settimeout(0.3)
        with pytest.raises(TimeoutError):
            s.recv(10)
        assert fp.dropped[("b", "a")] == 4
        fp.set_link("b", "a", PASS)
        s.settimeout(5)
        try:
            rest = s.recv(10)
        except ConnectionResetError:
            rest = b""
        assert rest == b""  # the stream that lost bytes is closed, never resumed with a hole
    with socket.create_connection(listen, timeout=5) as s:  # a new connection passes again
        s.sendall(b"again")
        assert _recv_exactly(s, 5) == b"again"


def test_isolate_blackholes_both_directions_until_heal(proxy: tuple[FaultProxy, tuple[str, int]],
                                                       echo: EchoServer) -> None:
    fp, listen = proxy
    fp.isolate("a", ["b"])
    with socket.create_connection(listen, timeout=5) as s:
        s.sendall(b"lost")
        s.settimeout(0.3)
        with pytest.raises(TimeoutError):
            s.recv(10)
    assert len(echo.received) == 0 and fp.dropped[("a", "b")] == 4
    fp.heal()
    with socket.create_connection(listen, timeout=5) as s:
        s.sendall(b"found")
        assert _recv_exactly(s, 5) == b"found"


def test_delay_holds_every_chunk_in_order(proxy: tuple[FaultProxy, tuple[str, int]]) -> None:
    fp, listen = proxy
    fp.set_link("a", "b", delay(0.3))
    with socket.create_connection(listen, timeout=5) as s:
        started = time.monotonic()
        s.sendall(b"one")
        s.sendall(b"two")
        assert _recv_exactly(s, 6) == b"onetwo"
        assert time.monotonic() - started >= 0.3


def test_a_dead_target_resets_the_client(echo: EchoServer) -> None:
    fp = FaultProxy()
    fp.start()
    try:
        free = socket.create_server(("127.0.0.1", 0))
        port = free.getsockname()[1]
        free.close()  # nothing listens there any more
        fp.listen("b", ("127.0.1.201", port), ("127.0.0.1", port))
        with socket.create_connection(("127.0.1.201", port), timeout=5) as s:
            try:
                data = s.recv(10)
            except ConnectionResetError:
                data = b""
            assert data == b""
    finally:
        fp.close()


def test_the_proxy_stops_by_itself_after_its_lifetime() -> None:
    fp = FaultProxy(lifetime_s=0.1)
    fp.start()
    fp._thread.join(5)
    assert not fp._thread.is_alive()


def test_procnet_finds_the_process_that_opened_a_connection(echo: EchoServer) -> None:
    with socket.create_connection(echo.address, timeout=5) as s:
        client = s.getsockname()
        assert procnet.owner_of(client, echo.address, [1, os.getpid()]) == os.getpid()
        assert procnet.owner_of(client, echo.address, [1]) is None
    assert procnet.owner_of(client, echo.address, [os.getpid()], attempts=1) is None  # closed: no such connection


def test_an_unidentified_connection_is_refused(echo: EchoServer) -> None:
    fp = FaultProxy(lambda client, server: None)
    fp.start()
    try:
        fp.listen("b", ("127.0.1.202", echo.address[1]), echo.address)
        with socket.create_connection(("127.0.1.202", echo.address[1]), timeout=5) as s:
            s.sendall(b"who")
            try:
                data = s.recv(10)
            except ConnectionResetError:
                data = b""
            assert data == b""
        assert fp.refused == 1 and not echo.received
    finally:
        fp.close()
