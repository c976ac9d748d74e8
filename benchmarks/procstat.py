"""Server CPU time from ``/proc`` and discovery of the process listening on a local TCP port (Linux only).

Why ``/proc`` and not the server's own metrics: CPU-µs per message must count everything the server process burns
(all threads, the event loop, LMDB, fsync syscalls), measured from outside so a server cannot flatter itself.
"""

from __future__ import annotations

import os
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")
_LISTEN = "0A"


def cpu_seconds(pid: int, proc: Path = Path("/proc")) -> float:
    """User + system CPU seconds of all threads of ``pid`` so far (clock-tick resolution, usually 10 ms)."""
    text = (proc / str(pid) / "stat").read_text()
    # The command name may contain spaces and parentheses: fields start after the LAST ')'.
    fields = text[text.rindex(")") + 2:].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / _TICKS


def _stat_fields(path: Path) -> list[str]:
    text = path.read_text()
    return text[text.rindex(")") + 2:].split()


def tree_cpu_seconds(pid: int, proc: Path = Path("/proc")) -> float:
    """CPU seconds of ``pid`` and every live descendant: a server may do its work in child processes (LocalStack
    runs its Kinesis as a Node.js child), and their CPU is the server's too."""
    children: dict[int, list[int]] = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int(_stat_fields(entry / "stat")[1])
        except (OSError, ValueError, IndexError):
            continue  # exited meanwhile, or not ours to read
        children.setdefault(ppid, []).append(int(entry.name))
    total = cpu_seconds(pid, proc)  # raises if the server itself is gone
    pending = list(children.get(pid, ()))
    while pending:
        child = pending.pop()
        try:
            total += cpu_seconds(child, proc)
        except (OSError, ValueError, IndexError):
            continue
        pending.extend(children.get(child, ()))
    return total


def written_bytes(pid: int, proc: Path = Path("/proc")) -> int:
    """Bytes ``pid`` caused to be written to storage so far (``write_bytes`` of ``/proc/PID/io``).

    Why: a durable broker's commit time follows how much it writes per message (pages copied, not just payload).
    """
    for line in (proc / str(pid) / "io").read_text().splitlines():
        name, _, value = line.partition(":")
        if name == "write_bytes":
            return int(value)
    raise ValueError(f"no write_bytes in /proc/{pid}/io")


def listening_inodes(port: int, proc: Path = Path("/proc")) -> set[int]:
    """Socket inodes in LISTEN state on ``port`` (any address, IPv4 and IPv6)."""
    inodes: set[int] = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = (proc / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            if len(cols) < 10 or cols[3] != _LISTEN:
                continue
            if int(cols[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(int(cols[9]))
    return inodes


def find_listening_pid(port: int, proc: Path = Path("/proc")) -> int | None:
    """The pid whose open file descriptors include a socket listening on ``port``, if we may see it."""
    wanted = {f"socket:[{inode}]" for inode in listening_inodes(port, proc)}
    if not wanted:
        return None
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fds = list((entry / "fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(fd) in wanted:
                    return int(entry.name)
            except OSError:
                continue
    return None
