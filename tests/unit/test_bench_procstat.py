"""Server CPU and pid discovery from /proc."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest

from benchmarks import procstat


def test_cpu_seconds_parses_stat_with_awkward_command_names(tmp_path: Path) -> None:
    (tmp_path / "42").mkdir()
    ticks = os.sysconf("SC_CLK_TCK")
    fields = ["S", "1", "42", "42", "0", "-1", "4194560", "10", "0", "0", "0", str(3 * ticks), str(ticks)]
    (tmp_path / "42" / "stat").write_text("42 (raft mq) (x)) " + " ".join(fields + ["0"] * 30) + "\n")
    assert procstat.cpu_seconds(42, tmp_path) == pytest.approx(4.0)


def test_cpu_seconds_of_this_process_follow_its_work() -> None:
    before = procstat.cpu_seconds(os.getpid())
    cpu_before = time.process_time()
    while time.process_time() - cpu_before < 0.15:
        pass
    grown = procstat.cpu_seconds(os.getpid()) - before
    assert 0.1 <= grown <= 1.0


def test_finds_the_pid_listening_on_a_port_and_none_when_nobody_listens() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        assert procstat.find_listening_pid(port) is None  # bound but not listening
        listener.listen()
        assert procstat.listening_inodes(port)
        assert procstat.find_listening_pid(port) == os.getpid()


def test_parses_proc_net_tcp_listen_rows_only(tmp_path: Path) -> None:
    (tmp_path / "net").mkdir()
    header = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
    rows = ("   0: 0100007F:11D6 00000000:0000 0A 00000000:00000000 00:00000000 00000000  0  0 111 1\n"
            "   1: 0100007F:11D6 0100007F:C350 01 00000000:00000000 00:00000000 00000000  0  0 222 1\n"
            "   2: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  0  0 333 1\n")
    (tmp_path / "net" / "tcp").write_text(header + rows)
    assert procstat.listening_inodes(4566, tmp_path) == {111}  # 0x11D6 = 4566; the ESTABLISHED row is ignored
    assert procstat.listening_inodes(8080, tmp_path) == {333}


def test_written_bytes_reads_proc_io(tmp_path: Path) -> None:
    (tmp_path / "7").mkdir()
    (tmp_path / "7" / "io").write_text("rchar: 10\nwchar: 20\nread_bytes: 0\nwrite_bytes: 8192\n"
                                      "cancelled_write_bytes: 0\n")
    assert procstat.written_bytes(7, tmp_path) == 8192


def test_written_bytes_of_this_process_follow_a_durable_write(tmp_path: Path) -> None:
    before = procstat.written_bytes(os.getpid())
    with (tmp_path / "blob").open("wb") as f:
        f.write(os.urandom(1 << 20))
        f.flush()
        os.fsync(f.fileno())
    assert procstat.written_bytes(os.getpid()) - before >= 1 << 20


def test_tree_cpu_counts_a_server_and_its_descendants_only(tmp_path: Path) -> None:
    ticks = os.sysconf("SC_CLK_TCK")

    def proc(pid: int, ppid: int, seconds: int) -> None:
        (tmp_path / str(pid)).mkdir()
        fields = ["S", str(ppid), "1", "1", "0", "-1", "0", "0", "0", "0", "0", str(seconds * ticks), "0"]
        (tmp_path / str(pid) / "stat").write_text(f"{pid} (p {pid}) " + " ".join(fields + ["0"] * 30) + "\n")

    proc(10, 1, 2)  # the server
    proc(11, 10, 3)  # its child (e.g. LocalStack's Node.js Kinesis)
    proc(12, 11, 5)  # a grandchild
    proc(13, 1, 100)  # an unrelated process
    (tmp_path / "self").mkdir()  # not a pid: ignored
    assert procstat.tree_cpu_seconds(10, tmp_path) == pytest.approx(10.0)
    assert procstat.tree_cpu_seconds(11, tmp_path) == pytest.approx(8.0)
