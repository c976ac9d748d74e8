"""The multi-process closed loop, the CLI and the spawned-server lifecycle, end to end against the fake SQS."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from benchmarks import cli, runner
from benchmarks.awsjson import Target
from benchmarks.fakesqs import FakeSqs, start
from benchmarks.scenarios.sqs_cycle import SqsCycle
from benchmarks.server import ServerStartError, SpawnedCommand, SpawnedServer


@pytest.fixture
def threaded_fake() -> Iterator[tuple[FakeSqs, Target]]:
    """The fake SQS on its own loop in a thread, because the runner blocks and spawns processes."""
    sqs = FakeSqs(receive_count=7)
    ready = threading.Event()
    port: list[int] = []
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    async def serve() -> None:
        server = await start(sqs)
        port.append(server.sockets[0].getsockname()[1])
        ready.set()
        async with server:
            await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),))
    thread.start()
    assert ready.wait(10)
    try:
        yield sqs, Target(f"http://127.0.0.1:{port[0]}")
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.close()


def test_processes_and_connections_add_up_to_what_the_server_saw(threaded_fake: tuple[FakeSqs, Target]) -> None:
    sqs, target = threaded_fake
    config = runner.RunConfig(processes=2, connections=3, duration=1.2, server_pid=os.getpid(), progress=False)
    result = runner.run(SqsCycle(batch=10), target, config)
    assert result.failures == [] and result.errors == {}
    assert result.counters["sent"] == sqs.entries["sent"] == 10 * sqs.calls["SendMessageBatch"]
    assert result.counters["received"] == sqs.entries["received"] == 7 * sqs.calls["ReceiveMessage"]
    assert result.counters["deleted"] == sqs.entries["deleted"] == result.total > 0
    assert {k: h.count for k, h in result.latency.items()} == {
        k: sqs.calls[k] for k in ("SendMessageBatch", "ReceiveMessage", "DeleteMessageBatch")}
    assert sqs.calls["CreateQueue"] == sqs.calls["DeleteQueue"] == 1
    assert 1.2 <= result.elapsed < 6 and result.rate == result.total / result.elapsed
    assert result.server_cpu_seconds is not None and result.server_cpu_us_per_unit is not None
    assert result.client_cpu_seconds > 0
    assert result.server_written_bytes is not None and result.server_written_bytes >= 0
    assert result.timeline and all(rate >= 0 for _, rate in result.timeline)  # one point per second
    data = result.to_dict()
    assert data["processes"] == 2 and data["connections_per_process"] == 3
    assert data["latency_us"]["ReceiveMessage"]["count"] == sqs.calls["ReceiveMessage"]


def test_cli_spawns_a_baseline_server_repeats_and_writes_json(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r.json"
    code = cli.main(["run", "sqs-cycle", "--spawn-cmd", f"{sys.executable} -m benchmarks.fakesqs --port {{port}}",
                     "--duration", "0.4", "--processes", "1", "--connections", "2", "--repeat", "2",
                     "--no-progress", "--json", str(out)])
    assert code == 0
    data = orjson.loads(out.read_bytes())
    assert len(data["runs"]) == 2 and data["median"]["runs"] == 2
    assert data["median"]["rate_per_s"] > 0 and data["median"]["errors"] == 0
    assert data["median"]["server_cpu_us_per_unit"] is not None  # the spawned pid was measured
    assert data["machine"]["nproc"] == os.cpu_count()
    assert "median of 2 runs" in capsys.readouterr().out


_FAKE_RAFTMQ = """
import signal, sys
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM])
print("starting", flush=True)
print("RaftMQ ready: endpoint=http://127.0.0.1:4999 grpc=127.0.0.1:5999 data_dir=%s node=n1" % sys.argv[3],
      flush=True)
signal.sigwait([signal.SIGTERM])
sys.exit(0)
"""


def test_spawned_server_waits_for_the_ready_line_and_stops_gracefully() -> None:
    with SpawnedServer(command=[sys.executable, "-c", _FAKE_RAFTMQ]) as srv:
        assert srv.endpoint == "http://127.0.0.1:4999"
        assert srv.argv[-8:] == ["--data-dir", str(srv.tmp / "data"), "--port", "0", "--grpc-port", "0",
                                 "--log-level", "warning"]
        tmp = srv.tmp
    assert srv.returncode == 0 and not tmp.exists()


def test_spawned_server_that_dies_early_reports_its_log() -> None:
    script = "import sys; print('boom: no such flag', file=sys.stderr); sys.exit(3)"
    with pytest.raises(ServerStartError, match="boom: no such flag"), SpawnedServer(
            command=[sys.executable, "-c", script]):
        pass


def test_spawned_command_is_ready_when_its_port_accepts() -> None:
    with SpawnedCommand(f"{sys.executable} -m benchmarks.fakesqs --port {{port}}") as cmd:
        assert cmd.endpoint == f"http://127.0.0.1:{cmd.port}"
    assert cmd.returncode == 0


def _explode() -> None:
    raise RuntimeError("cannot rebuild the scenario in the worker")


class _BrokenInWorker(SqsCycle):
    """A scenario whose copy in the worker process cannot be unpickled, so the worker dies while starting."""

    async def setup(self, target: Target) -> None:
        self.queue_url = "unused"

    async def teardown(self, target: Target) -> None:
        return None

    def __reduce__(self) -> tuple[object, tuple[()]]:
        return _explode, ()


def test_a_worker_dying_at_start_fails_the_run_fast() -> None:
    config = runner.RunConfig(processes=1, connections=1, duration=0.5, progress=False)
    started = time.monotonic()
    with pytest.raises(RuntimeError, match="exited with code 1 while starting"):
        runner.run(_BrokenInWorker(), Target("http://127.0.0.1:9"), config)
    assert time.monotonic() - started < runner.START_TIMEOUT_S / 2


def test_cli_against_a_running_target_finds_the_server_pid_by_its_port(
        threaded_fake: tuple[FakeSqs, Target], tmp_path: Path) -> None:
    _, target = threaded_fake
    out = tmp_path / "r.json"
    code = cli.main(["run", "sqs-cycle", "--target", target.endpoint, "--duration", "0.3", "--processes", "1",
                     "--connections", "1", "--no-progress", "--json", str(out)])
    assert code == 0
    run = orjson.loads(out.read_bytes())["runs"][0]
    assert run["server_pid"] == os.getpid()  # the fake listens in this process
    assert run["total"] == run["counters"]["deleted"] > 0


def test_warmup_is_excluded_from_every_figure(threaded_fake: tuple[FakeSqs, Target]) -> None:
    sqs, target = threaded_fake
    config = runner.RunConfig(processes=1, connections=2, duration=0.6, warmup=0.6, server_pid=os.getpid(),
                              progress=False)
    result = runner.run(SqsCycle(batch=10), target, config)
    assert result.failures == [] and result.errors == {}
    assert 0.6 <= result.elapsed < 3  # the measured window only
    # the fake saw the warm-up too; the result counts only what was deleted after it
    assert 0 < result.total < sqs.entries["deleted"]
    assert result.latency["SendMessageBatch"].count < sqs.calls["SendMessageBatch"]
    assert result.to_dict()["warmup_s"] == 0.6


def test_progress_line_shows_a_bar_and_the_live_rate() -> None:
    line = runner.progress_line(3.0, 12.0, 1234.4, "msgs", 3702, 1, "  server CPU  50.0%")
    assert line == ("[   3.0s/12s #####---------------]      1,234 msgs/s  total 3,702  errors 1  "
                    "server CPU  50.0%")
    assert "####################]" in runner.progress_line(15.0, 12.0, 0, "msgs", 0, 0)  # full, never past
