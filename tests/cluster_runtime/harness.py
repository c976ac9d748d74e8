"""In-process Raft clusters for the runtime tests: real LMDB in tmp dirs, real gRPC on 127.0.0.1, a tiny state machine.

``ListMachine`` appends each command to a persisted table and replies with (index, data): deterministic, so every
node must end with the same list, and a proposal's reply tells where it landed.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import grpc

from cluster.api import EntryMeta
from cluster.runtime import RaftReplicator, RaftSettings
from cluster.transport import SERVER_OPTIONS
from storage import keys
from storage.changes import ChangeSink, TableReader
from storage.lmdb_store import LmdbStore

TABLE = "items"

FAST = RaftSettings(node_id="", peers={}, tick_s=0.05, election_ticks=10, election_wait_s=1.5,
                    commit_timeout_s=5.0, forward_timeout_s=2.0, catch_up_timeout_s=10.0, snapshot_every=10_000,
                    keep_log_entries=100)


class ListMachine:
    """Append-only list of commands; ``restore`` reloads it from the table."""

    def __init__(self) -> None:
        self.items: list[tuple[int, bytes]] = []
        self.restores = 0
        self.durable_calls = 0

    def apply(self, meta: EntryMeta, data: bytes, changes: ChangeSink) -> object:
        changes.put(TABLE, keys.u64(meta.index), data)
        self.items.append((meta.index, data))
        return (meta.index, data)

    def after_durable(self) -> None:
        self.durable_calls += 1

    def restore(self, reader: TableReader) -> None:
        self.restores += 1
        self.items = [(keys.u64_from(k), v) for k, v in reader.scan(TABLE)]

    def dirty_rows(self) -> int:
        return 0  # every row is recorded in the ChangeSink as it changes

    def flush_rows(self, changes: ChangeSink) -> int:
        return 0

    def datas(self) -> list[bytes]:
        return [d for _, d in self.items]


@dataclass
class Node:
    node_id: str
    data_dir: Path
    port: int
    server: grpc.aio.Server
    store: LmdbStore
    sm: ListMachine
    rep: RaftReplicator
    running: bool = True

    async def stop(self, hand_over: bool = True) -> None:
        if not self.running:
            return
        self.running = False
        await self.rep.stop(hand_over=hand_over)
        await self.server.stop(None)
        self.store.close()


@dataclass
class Cluster:
    root: Path
    settings: RaftSettings
    nodes: dict[str, Node] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)

    def addr(self, node_id: str) -> str:
        return f"127.0.0.1:{self.ports[node_id]}"

    def live(self) -> list[Node]:
        return [n for n in self.nodes.values() if n.running]

    async def start(self, ids: list[str]) -> None:
        """Start a new cluster whose voters are ``ids``."""
        servers = {}
        for nid in ids:
            server = grpc.aio.server(options=SERVER_OPTIONS)
            self.ports[nid] = server.add_insecure_port("127.0.0.1:0")
            servers[nid] = server
        peers = {nid: self.addr(nid) for nid in ids}
        for nid in ids:
            await self._launch(nid, servers[nid], peers, join=False)

    async def restart(self, node_id: str, *, wipe: bool = False, join: bool = False) -> Node:
        """Start ``node_id`` again on its port, from its data dir (or an empty one)."""
        old = self.nodes.get(node_id)
        if old is not None:
            await old.stop()
        if wipe:
            shutil.rmtree(self.root / node_id, ignore_errors=True)
        server = grpc.aio.server(options=SERVER_OPTIONS)
        if node_id in self.ports:
            bound = server.add_insecure_port(self.addr(node_id))
            assert bound == self.ports[node_id]
        else:
            self.ports[node_id] = server.add_insecure_port("127.0.0.1:0")
        peers = {nid: self.addr(nid) for nid in self.ports}
        return await self._launch(node_id, server, peers, join=join)

    async def _launch(self, node_id: str, server: grpc.aio.Server, peers: dict[str, str], join: bool) -> Node:
        data_dir = self.root / node_id
        store = LmdbStore(str(data_dir), map_size=64 << 20)
        sm = ListMachine()
        settings = replace(self.settings, node_id=node_id, peers=peers, join=join,
                           address=self.addr(node_id))
        rep = RaftReplicator(store, sm, settings)
        rep.register(server)
        await server.start()
        rep.start()
        node = Node(node_id, data_dir, self.ports[node_id], server, store, sm, rep)
        self.nodes[node_id] = node
        return node

    async def stop(self) -> None:
        await asyncio.gather(*(n.stop() for n in self.nodes.values()))

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
        """Poll ``predicate`` on the event loop (the cluster runs on the same loop, so there is no event to await
        across nodes); fail the test after ``timeout``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():
            if loop.time() > deadline:
                raise AssertionError(f"timed out waiting for {what or predicate}; {self.describe()}")
            await asyncio.sleep(0.02)

    def describe(self) -> str:
        """Every live node's view, for failure messages."""
        parts = []
        for n in self.live():
            st = n.rep.status()
            parts.append(f"{n.node_id}: {st.role} term={st.term} leader={st.leader} commit={st.commit} "
                         f"applied={st.applied} last={st.last_index} voters={','.join(st.voters)} "
                         f"pending={len(n.rep._pending)} waiters={len(n.rep._waiters)} "
                         f"forwards={len(n.rep._forwards)} peers={n.rep.transport.stats()}")
        return " | ".join(parts)

    async def leader(self, among: list[str] | None = None, timeout: float = 10.0) -> Node:
        """The one node that leads (and that every other live node in ``among`` follows)."""
        ids = among or [n.node_id for n in self.live()]

        def agreed() -> bool:
            leaders = {self.nodes[i].rep.leader for i in ids}
            if len(leaders) != 1:
                return False
            lead = leaders.pop()
            return lead in ids and self.nodes[lead].running and self.nodes[lead].rep.is_leader

        await self.wait_for(agreed, timeout, "an agreed leader")
        return self.nodes[self.nodes[ids[0]].rep.leader]

    async def converged(self, ids: list[str] | None = None, timeout: float = 10.0) -> list[bytes]:
        """Wait until the given nodes hold the same non-empty list; return it."""
        nodes = [self.nodes[i] for i in ids] if ids else self.live()

        def same() -> bool:
            first = nodes[0].sm.items
            return all(n.sm.items == first for n in nodes[1:])

        await self.wait_for(same, timeout, "converged state machines")
        return nodes[0].sm.datas()
