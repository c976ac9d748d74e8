"""Run ``raftmq serve`` as a real subprocess for end-to-end tests.

Integration tests must exercise the same entry point users run, so the server is started through ``broker.cli``
with ``--port 0`` / ``--grpc-port 0`` on a private data directory, and the test learns the real endpoint from the
one ready line the CLI contract promises on stdout. No process outlives the tests: fixtures close their servers, a
registry (run at session end and at interpreter exit) kills what a failing test left behind. No ``preexec_fn``:
it forces a fork that can stall while the test process runs gRPC threads (in-process cluster and gRPC tests).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, ClassVar

READY_RE = re.compile(
    r"^RaftMQ ready: endpoint=(?P<endpoint>https?://(?P<host>[^:\s/]+):(?P<port>\d+)) "
    r"grpc=(?P<grpc_host>[^:\s]+):(?P<grpc_port>\d+) data_dir=(?P<data_dir>\S+) node=(?P<node>\S+)$"
)


@dataclass(frozen=True, slots=True)
class ReadyLine:
    """What the server announced when it became ready."""

    endpoint: str
    host: str
    port: int
    grpc_host: str
    grpc_port: int
    data_dir: str
    node: str
    raw: str


def parse_ready_line(line: str) -> ReadyLine | None:
    match = READY_RE.match(line.strip())
    if match is None:
        return None
    return ReadyLine(endpoint=match["endpoint"], host=match["host"], port=int(match["port"]),
                     grpc_host=match["grpc_host"], grpc_port=int(match["grpc_port"]),
                     data_dir=match["data_dir"], node=match["node"], raw=line.strip())


class ServerError(AssertionError):
    """The server did not start or stop as the CLI contract says; carries its stderr for the test report."""


class RaftMQServer:
    """One ``raftmq serve`` process bound to 127.0.0.1 on free ports, restartable on the same data directory."""

    _live: ClassVar[set[RaftMQServer]] = set()

    def __init__(self, data_dir: Path, *, account_id: str | None = None, region: str | None = None,
                 log_level: str = "warning", ready_timeout: float = 30.0,
                 extra_args: Sequence[str] = ()) -> None:
        """``extra_args``: more ``raftmq serve`` options (e.g. TLS files)."""
        self.data_dir = data_dir
        self.extra_args = list(extra_args)
        self.account_id = account_id
        self.region = region
        self.log_level = log_level
        self.ready_timeout = ready_timeout
        self.ready: ReadyLine | None = None
        self.stdout_lines: list[str] = []
        self._proc: subprocess.Popen[str] | None = None
        self._stderr: IO[str] | None = None
        self._ready_event = threading.Event()
        self._reader: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------------------

    def args(self) -> list[str]:
        argv = [sys.executable, "-m", "broker.cli", "serve", "--data-dir", str(self.data_dir),
                "--host", "127.0.0.1", "--port", "0", "--grpc-port", "0", "--log-level", self.log_level]
        if self.account_id is not None:
            argv += ["--account-id", self.account_id]
        if self.region is not None:
            argv += ["--region", self.region]
        return argv + self.extra_args

    def start(self) -> ReadyLine:
        """Spawn the server and block until its ready line, or fail with its stderr."""
        if self.running:
            raise ServerError("server already running")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.ready = None
        self.stdout_lines = []
        self._ready_event = threading.Event()
        # Kept open for the process's life (read on failure), closed in close(): no context manager fits.
        self._stderr = tempfile.TemporaryFile(mode="w+", encoding="utf-8", errors="replace")  # noqa: SIM115
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self._proc = subprocess.Popen(self.args(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                      stderr=self._stderr, text=True, env=env, cwd=str(self.data_dir.parent))
        RaftMQServer._live.add(self)
        self._reader = threading.Thread(target=self._read_stdout, args=(self._proc,), daemon=True,
                                        name=f"raftmq-stdout-{self._proc.pid}")
        self._reader.start()
        if not self._ready_event.wait(self.ready_timeout) or self.ready is None:
            self.kill9()
            raise ServerError(f"raftmq serve did not print its ready line within {self.ready_timeout} s\n"
                              f"stdout: {self.stdout_lines!r}\n{self.stderr_text()}")
        return self.ready

    def _read_stdout(self, proc: subprocess.Popen[str]) -> None:
        """Drain stdout for the process's whole life (a full pipe would block it) and spot the ready line."""
        assert proc.stdout is not None
        for line in proc.stdout:
            self.stdout_lines.append(line.rstrip("\n"))
            if self.ready is None:
                parsed = parse_ready_line(line)
                if parsed is not None:
                    self.ready = parsed
                    self._ready_event.set()
        self._ready_event.set()  # EOF: the process died before (or after) becoming ready

    def stop(self, timeout: float = 15.0) -> int:
        """Graceful shutdown by SIGTERM; the contract says it exits 0."""
        proc = self._require_proc()
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill9()
            raise ServerError(f"server ignored SIGTERM for {timeout} s\n{self.stderr_text()}") from None
        self._finish()
        if code != 0:
            raise ServerError(f"server exited with {code} after SIGTERM (expected 0)\n{self.stderr_text()}")
        return code

    def kill9(self) -> None:
        """SIGKILL: the crash a power cut or the OOM killer would cause."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        self._finish()

    def restart(self) -> ReadyLine:
        """Start again on the same data directory (new free ports); stops gracefully first if still running."""
        if self.running:
            self.stop()
        return self.start()

    def close(self) -> None:
        """Make sure the process is gone, whatever state the test left it in."""
        self.kill9()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        RaftMQServer._live.discard(self)

    @classmethod
    def kill_all(cls) -> None:
        for server in list(cls._live):
            server.close()

    def _finish(self) -> None:
        if self._reader is not None:
            self._reader.join(5)
            self._reader = None
        RaftMQServer._live.discard(self)

    def _require_proc(self) -> subprocess.Popen[str]:
        if self._proc is None:
            raise ServerError("server was never started")
        return self._proc

    # -- introspection -----------------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int:
        return self._require_proc().pid

    @property
    def returncode(self) -> int | None:
        return self._require_proc().poll()

    def wait(self, timeout: float) -> int:
        """Wait for the process to exit by itself and return its exit code."""
        code = self._require_proc().wait(timeout)
        self._finish()
        return code

    @property
    def endpoint(self) -> str:
        if self.ready is None:
            raise ServerError("server is not ready")
        return self.ready.endpoint

    def stderr_text(self, limit: int = 20_000) -> str:
        if self._stderr is None:
            return "stderr: <closed>"
        self._stderr.flush()
        self._stderr.seek(0)
        text = self._stderr.read()
        self._stderr.seek(0, os.SEEK_END)
        return "stderr:\n" + text[-limit:]

    def __enter__(self) -> RaftMQServer:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


atexit.register(RaftMQServer.kill_all)


@contextlib.contextmanager
def serving(server: RaftMQServer) -> Iterator[RaftMQServer]:
    """Start ``server`` for the block; then stop it gracefully (checked to exit 0) if it still runs, and always
    release its process."""
    server.start()
    try:
        yield server
        if server.running:
            server.stop()
    finally:
        server.close()
