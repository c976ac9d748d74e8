"""Start a server for one benchmark run and stop it afterwards, so one command reproduces a figure.

``SpawnedServer`` runs ``raftmq serve`` on a fresh temp data dir with ``--port 0 --grpc-port 0`` and waits for the
contract's ready line (``RaftMQ ready: endpoint=... grpc=... data_dir=... node=...``). ``SpawnedCommand`` runs any
other server (e.g. moto for a baseline) on a free port and waits until it accepts TCP connections. Both stop the
process with SIGTERM (then SIGKILL after a grace period) and keep its stderr in a log file.
"""

from __future__ import annotations

import os
import re
import selectors
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import IO

READY_RE = re.compile(r"RaftMQ ready: endpoint=(?P<endpoint>\S+) grpc=(?P<grpc>\S+) data_dir=(?P<data_dir>\S+)"
                      r" node=(?P<node>\S+)")


class ServerStartError(RuntimeError):
    pass


def raftmq_command(profile_out: str | None = None) -> list[str]:
    """The argv prefix that runs ``raftmq`` (under cProfile when ``profile_out`` is given)."""
    if profile_out:
        return [sys.executable, "-m", "benchmarks.profiled", profile_out, "broker.cli:main", "--"]
    exe = shutil.which("raftmq")
    if exe:
        return [exe]
    return [sys.executable, "-m", "benchmarks.profiled", "", "broker.cli:main", "--"]


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class _Managed:
    """Owns one child process, its temp dir and its log; stops it on exit."""

    def __init__(self, keep_dir: bool, grace: float) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="raftmq-bench-"))
        self.log_path = self.tmp / "server.log"
        self.keep_dir = keep_dir
        self.grace = grace
        self.proc: subprocess.Popen[bytes] | None = None
        self.endpoint = ""
        self.returncode: int | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> int | None:
        proc, self.proc = self.proc, None
        if proc is not None:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(self.grace)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            self.returncode = proc.returncode
        if not self.keep_dir:
            shutil.rmtree(self.tmp, ignore_errors=True)
        return self.returncode

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


class SpawnedServer(_Managed):
    """``raftmq serve`` on a temp dir and free ports, ready when it prints the ready line."""

    def __init__(self, extra_args: list[str] | None = None, profile_out: str | None = None,
                 ready_timeout: float = 60.0, keep_dir: bool = False, grace: float = 15.0,
                 command: list[str] | None = None) -> None:
        """``command`` replaces the ``raftmq`` argv prefix (e.g. another build of the server)."""
        super().__init__(keep_dir, grace)
        self.argv = [*(command or raftmq_command(profile_out)), "serve", "--data-dir", str(self.tmp / "data"),
                     "--port", "0", "--grpc-port", "0", "--log-level", "warning", *(extra_args or [])]
        self.ready_timeout = ready_timeout
        self.ready_line = ""
        self.grpc = ""  # HOST:PORT of its gRPC API, from the ready line

    def __enter__(self) -> SpawnedServer:
        self.launch()
        return self.wait_ready()

    def launch(self) -> None:
        """Start the process without waiting (a cluster starts every node before any can be ready)."""
        # In its temp dir, not ours: run as ``python -m`` (no ``raftmq`` script, or --server-profile) a server in
        # our directory would import this checkout's code ahead of a PYTHONPATH naming another one (an A/B's base).
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL,
                                         cwd=self.tmp)

    def wait_ready(self) -> SpawnedServer:
        """Block until the ready line; on failure stop the process and raise with its log's tail."""
        assert self.proc is not None
        try:
            assert self.proc.stdout is not None
            self.ready_line = _read_ready_line(self.proc, self.proc.stdout, self.ready_timeout)
        except BaseException:
            tail = self.log_tail()
            self.stop()
            raise ServerStartError(f"{shlex.join(self.argv)} did not become ready:\n{tail}") from None
        match = READY_RE.search(self.ready_line)
        assert match is not None
        self.endpoint = match["endpoint"]
        self.grpc = match["grpc"]
        threading.Thread(target=_drain, args=(self.proc.stdout,), daemon=True).start()
        return self


class SpawnedCommand(_Managed):
    """Any server command; ``{port}`` in it is replaced by a free port. Ready when the port accepts connections."""

    def __init__(self, command: str, host: str = "127.0.0.1", ready_timeout: float = 60.0,
                 keep_dir: bool = False, grace: float = 15.0) -> None:
        super().__init__(keep_dir, grace)
        self.port = free_port(host)
        self.host = host
        self.argv = shlex.split(command.replace("{port}", str(self.port)).replace("{dir}", str(self.tmp)))
        self.ready_timeout = ready_timeout

    def __enter__(self) -> SpawnedCommand:
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         cwd=self.tmp)
        deadline = time.monotonic() + self.ready_timeout
        while True:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                tail = self.log_tail()
                self.stop()
                raise ServerStartError(f"{shlex.join(self.argv)} did not start listening:\n{tail}")
            try:
                socket.create_connection((self.host, self.port), timeout=1.0).close()
                break
            except OSError:
                time.sleep(0.1)  # polling a port we do not control: there is no event to wait on
        self.endpoint = f"http://{self.host}:{self.port}"
        return self


def _read_ready_line(proc: subprocess.Popen[bytes], stream: IO[bytes], timeout: float) -> str:
    """Lines of ``stream`` until the ready line; fails if the process exits or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    buf = b""
    os.set_blocking(stream.fileno(), False)
    with selectors.DefaultSelector() as sel:
        sel.register(stream, selectors.EVENT_READ)
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no ready line within {timeout} s")
                if sel.select(remaining):
                    chunk = os.read(stream.fileno(), 65536)
                    if not chunk:
                        raise ServerStartError(f"server exited with {proc.wait()} before it was ready")
                    buf += chunk
                    while b"\n" in buf:
                        line, buf = buf.split(b"\n", 1)
                        text = line.decode(errors="replace")
                        if READY_RE.search(text):
                            return text
        finally:
            os.set_blocking(stream.fileno(), True)


def _drain(stream: IO[bytes]) -> None:
    """Keep reading stdout after the ready line so the server never blocks on a full pipe."""
    while stream.read(65536):
        pass
