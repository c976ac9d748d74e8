"""Which local process owns the client end of a loopback TCP connection (Linux ``/proc``).

Every RaftMQ node dials its peers from 127.0.0.1, so the fault proxy cannot tell the nodes apart by address. The
kernel can: ``/proc/net/tcp`` maps the client socket (127.0.0.1:port -> proxy) to an inode, and the process holding
that inode has ``socket:[inode]`` among its ``/proc/PID/fd`` links.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import time
from collections.abc import Iterable

_ESTABLISHED = "01"


def _hex_endpoint(text: str) -> tuple[str, int]:
    """``0100007F:1F90`` -> ("127.0.0.1", 8080). /proc prints addresses as 32-bit words in host (little-endian)
    byte order; an IPv6 socket (gRPC dials dual-stack) shows an IPv4 peer as ``::ffff:a.b.c.d``."""
    address, _, port = text.partition(":")
    raw = b"".join(bytes.fromhex(address[i:i + 8])[::-1] for i in range(0, len(address), 8))
    ip = ipaddress.ip_address(raw)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return str(ip), int(port, 16)


def client_socket_inode(client: tuple[str, int], server: tuple[str, int]) -> int | None:
    """The inode of the socket whose local end is ``client`` and remote end ``server`` (an established one)."""
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(path, encoding="ascii") as table:
            next(table)  # header
            for line in table:
                fields = line.split()
                if len(fields) < 10 or fields[3] != _ESTABLISHED:
                    continue
                if _hex_endpoint(fields[1]) == client and _hex_endpoint(fields[2]) == server:
                    return int(fields[9])
    return None


def process_holding(inode: int, pids: Iterable[int]) -> int | None:
    """Which of ``pids`` has the socket ``inode`` open (None: none of them, e.g. the test's own clients)."""
    wanted = f"socket:[{inode}]"
    for pid in pids:
        fd_dir = f"/proc/{pid}/fd"
        with contextlib.suppress(OSError):  # the process may have just exited
            for fd in os.listdir(fd_dir):
                with contextlib.suppress(OSError):
                    if os.readlink(f"{fd_dir}/{fd}") == wanted:
                        return pid
    return None


def owner_of(client: tuple[str, int], server: tuple[str, int], pids: Iterable[int], *, attempts: int = 5
             ) -> int | None:
    """The pid among ``pids`` that opened the connection ``client`` -> ``server``, if any.

    The kernel hands out ``/proc/net/tcp`` a page at a time; when other sockets open and close meanwhile a line can
    be skipped, so a miss is retried a few times before it counts."""
    candidates = list(pids)
    for attempt in range(attempts):
        inode = client_socket_inode(client, server)
        if inode is not None:
            return process_holding(inode, candidates)
        time.sleep(0.01 * (attempt + 1))
    return None
