"""A deterministic cluster of Raft cores over a simulated network and disks, driven by explicit actions.

``SimCluster`` plays the runtime's role for every node (persist, sync, send, apply, advance, compact) and offers
the faults as methods (crash, restart, partition, ...), so a random schedule (``schedule.py``) and Hypothesis
(tests) drive the same code. Every method ends with the safety checks of ``Checker``.
"""

from __future__ import annotations

import random
import struct
import zlib
from collections import Counter
from dataclasses import dataclass, field

from cluster.core.errors import ProposalDropped
from cluster.core.raft import Config
from cluster.core.rawnode import RawNode, Ready
from cluster.core.storage import CompactedError, UnavailableError
from cluster.core.types import ConfChangeOp, ConfState, Entry, Role
from cluster.sim.checker import Checker
from cluster.sim.disk import SimDisk
from cluster.sim.network import NetParams, SimNetwork

_SNAP = struct.Struct(">QI")
TICK_MS = 10


@dataclass(slots=True)
class SimNode:
    id: str
    disk: SimDisk
    node: RawNode | None = None  # None while crashed
    applied: int = 0
    digest: int = 0
    last_commit: int = 0
    leader_terms: set[int] = field(default_factory=set)
    pending: dict[int, tuple[int, bytes]] = field(default_factory=dict)  # index -> (term, data) proposed here
    confs: tuple[ConfState, ConfState] = (ConfState(), ConfState())  # (previous, current) applied membership
    reads: dict[bytes, int] = field(default_factory=dict)  # read ctx -> highest acked index when requested


@dataclass(slots=True)
class SimConfig:
    nodes: int = 3
    election_tick: int = 10
    heartbeat_tick: int = 2
    compact_every: int = 12  # entries applied between snapshots
    compact_keep: int = 3
    chunk_bytes: int = 24  # small, so snapshots travel in several chunks
    max_msg_bytes: int = 200
    max_inflight_msgs: int = 4
    tear: float = 0.5  # probability that a crash in the middle of a write tears it
    interleave: float = 0.0  # probability that inputs arrive between ready() and advance()
    net: NetParams = field(default_factory=NetParams)


class SimCluster:
    def __init__(self, seed: int, cfg: SimConfig) -> None:
        self.rng = random.Random(seed)
        self.cfg = cfg
        self.ids = [f"n{i + 1}" for i in range(cfg.nodes)]
        self.net = SimNetwork(random.Random(seed * 7919 + 1), cfg.net)
        self.check = Checker()
        self.now = 0
        self.acked: dict[int, bytes] = {}  # index -> data of acknowledged proposals
        self.max_acked = 0
        self.proposals = 0
        self.stats: Counter[str] = Counter()  # what the schedule exercised, to show the faults really happen
        self.nodes: dict[str, SimNode] = {}
        self._crash_soon: set[str] = set()
        self.markers: dict[bytes, set[str]] = {}  # liveness markers -> nodes that applied them
        conf = ConfState(frozenset(self.ids))
        for nid in self.ids:
            sn = SimNode(nid, SimDisk(conf), confs=(conf, conf))
            self.nodes[nid] = sn
            self._boot(sn)

    # -- node lifecycle ----------------------------------------------------------------------------------------
    def _boot(self, sn: SimNode) -> None:
        storage = sn.disk.restart()
        snap = storage.snapshot()
        if snap.is_empty():
            sn.applied, sn.digest = 0, 0
        else:
            sn.applied, sn.digest = _SNAP.unpack(snap.data)
        c = self.cfg
        cfg = Config(sn.id, cluster_id="sim", election_tick=c.election_tick, heartbeat_tick=c.heartbeat_tick,
                     max_msg_bytes=c.max_msg_bytes, max_inflight_msgs=c.max_inflight_msgs,
                     snapshot_chunk_bytes=c.chunk_bytes, applied=sn.applied)
        sn.node = RawNode(cfg, storage, random.Random(self.rng.random()))
        sn.last_commit = sn.node.raft.log.committed
        sn.pending = {}
        sn.reads = {}
        sn.confs = (sn.node.conf_state, sn.node.conf_state)

    def crash_soon(self, nid: str) -> None:
        """Crash ``nid`` during the next tick, after it received messages and before it persisted them: the
        likeliest moment to lose or tear unsynced writes."""
        self._crash_soon.add(nid)

    def crash(self, nid: str, mid_write_chance: float = 0.5) -> None:
        sn = self.nodes[nid]
        if sn.node is None:
            return
        mid_write = self.rng.random() < mid_write_chance and sn.node.has_ready()
        if mid_write:  # the crash interrupts a Ready: written but not synced
            rd = sn.node.ready()
            self._write(sn, rd)
        tear = mid_write and self.rng.random() < self.cfg.tear
        sn.disk.crash(self.rng, tear=tear)
        sn.node = None
        self.stats["crash"] += 1
        self.stats["crash mid-write"] += mid_write
        self.stats["torn write"] += tear
        self._checks()

    def restart(self, nid: str) -> None:
        sn = self.nodes[nid]
        if sn.node is None:
            self._boot(sn)
            self._checks()

    def alive(self) -> list[SimNode]:
        return [sn for sn in self.nodes.values() if sn.node is not None]

    def leader(self) -> SimNode | None:
        """The node that believes it leads in the highest term (a deposed leader may not know it yet)."""
        best: SimNode | None = None
        best_term = -1
        for sn in self.alive():
            assert sn.node is not None
            r = sn.node.raft
            if r.role == Role.LEADER and r.term > best_term:
                best, best_term = sn, r.term
        return best

    # -- actions -----------------------------------------------------------------------------------------------
    def propose(self, data: bytes) -> bool:
        ld = self.leader()
        if ld is None or ld.node is None:
            return False
        try:
            index, term = ld.node.propose(data, now_ms=self.now * TICK_MS)
        except ProposalDropped:
            return False
        ld.pending[index] = (term, data)
        self.proposals += 1
        self.stats["proposal"] += 1
        return True

    def conf_change(self, op: ConfChangeOp, nid: str) -> bool:
        ld = self.leader()
        if ld is None or ld.node is None:
            return False
        try:
            ld.node.propose_conf_change(op, nid, now_ms=self.now * TICK_MS)
        except ProposalDropped:
            return False
        self.stats[f"conf change {op.name}"] += 1
        return True

    def transfer(self, to: str) -> None:
        ld = self.leader()
        if ld is not None and ld.node is not None:
            ld.node.transfer_leader(to)

    def read(self, nid: str, ctx: bytes) -> None:
        sn = self.nodes[nid]
        if sn.node is None:
            return
        try:
            sn.node.read_index(ctx)
        except ProposalDropped:
            return
        sn.reads[ctx] = self.max_acked

    def partition(self, side: set[str], one_way: bool) -> None:
        self.net.partition(side, set(self.ids), one_way)

    def heal(self) -> None:
        self.net.heal()

    def tick(self, n: int = 1) -> None:
        for _ in range(n):
            self.now += 1
            for sn in self.alive():
                assert sn.node is not None
                sn.node.tick(self.now * TICK_MS)
            self._settle()

    # -- the runtime loop for every node -----------------------------------------------------------------------
    def _settle(self) -> None:
        for _ in range(50):
            busy = False
            for m in self.net.due(self.now):
                sn = self.nodes.get(m.to)
                if sn is not None and sn.node is not None:
                    sn.node.step(m)
                    busy = True
            for nid in sorted(self._crash_soon):
                self.crash(nid, mid_write_chance=1.0)
            self._crash_soon.clear()
            for sn in self.alive():
                assert sn.node is not None
                if sn.node.has_ready():
                    rd = sn.node.ready()
                    if self.rng.random() < self.cfg.interleave:
                        self._while_persisting(sn)
                    self._handle_ready(sn, rd)
                    busy = True
            self._checks()
            if not busy:
                return

    def _while_persisting(self, sn: SimNode) -> None:
        """Like the asyncio runtime, keep feeding the node while its Ready is being written: messages arrive and
        clients propose between ``ready()`` and ``advance()``."""
        assert sn.node is not None
        for m in self.net.due_for(self.now, sn.id):
            sn.node.step(m)
        if self.rng.random() < 0.5 and self.leader() is sn:
            self.propose(f"i{self.now}.{self.proposals}".encode())
        self.stats["interleaved"] += 1

    def _write(self, sn: SimNode, rd: Ready) -> None:
        if rd.snapshot is not None:
            sn.disk.write_snapshot(rd.snapshot)
        if rd.entries:
            prev: int | None
            try:
                prev = sn.disk.live.term(rd.entries[0].index - 1)
            except (CompactedError, UnavailableError):
                prev = None
            sn.disk.write_entries(rd.entries)
            self.check.persisted(sn.id, rd.entries, prev)
        if rd.hard_state is not None:
            sn.disk.write_hard_state(rd.hard_state)

    def _handle_ready(self, sn: SimNode, rd: Ready) -> None:
        node = sn.node
        assert node is not None
        self._write(sn, rd)
        sn.disk.sync()
        for m in rd.messages:
            self.stats[m.type.name] += 1
            self.net.send(self.now, m)
        if rd.snapshot is not None:
            sn.applied, sn.digest = _SNAP.unpack(rd.snapshot.data)
            if sn.applied != rd.snapshot.meta.index:
                self.check.fail(f"{sn.id}: snapshot data at {sn.applied} but meta at {rd.snapshot.meta.index}")
            self.check.applied(sn.id, sn.applied, sn.digest)
            self.stats["snapshot installed"] += 1
        for e in rd.committed_entries:
            self._apply(sn, e)
        for rs in rd.read_states:
            self.stats["read confirmed"] += 1
            want = sn.reads.pop(rs.ctx, None)
            if want is not None and rs.index < want:
                self.check.fail(f"read index: {sn.id} read at {rs.index} misses acked write {want}")
        node.advance(rd)
        if node.conf_state != sn.confs[1]:  # changed by an applied entry or an installed snapshot
            sn.confs = (sn.confs[1], node.conf_state)
        if sn.applied - node.raft.log.storage.snapshot().meta.index >= self.cfg.compact_every:
            sn.disk.compact(sn.applied, node.conf_state, _SNAP.pack(sn.applied, sn.digest), self.cfg.compact_keep)

    def _apply(self, sn: SimNode, e: Entry) -> None:
        if e.index != sn.applied + 1:
            self.check.fail(f"{sn.id}: applying {e.index} after {sn.applied}")
        sn.applied = e.index
        sn.digest = zlib.crc32(e.data, zlib.crc32(struct.pack(">IQB", sn.digest, e.index, e.type)))
        self.check.applied(sn.id, e.index, sn.digest)
        if e.data in self.markers:
            self.markers[e.data].add(sn.id)
        mine = sn.pending.pop(e.index, None)
        if mine is not None and mine == (e.term, e.data):
            self._acked(sn, e)

    def _acked(self, sn: SimNode, e: Entry) -> None:
        """The proposer applied its entry: a client would now be answered. It must be durable on a majority."""
        self.acked[e.index] = e.data
        self.stats["acked"] += 1
        self.max_acked = max(self.max_acked, e.index)
        for conf in sn.confs:
            durable = 0
            for v in conf.voters:
                d = self.nodes[v].disk.durable
                if d.snapshot().meta.index >= e.index:
                    durable += 1
                    continue
                if d.first_index() - 1 <= e.index <= d.last_index():
                    durable += d.term(e.index) == e.term
            if durable >= len(conf.voters) // 2 + 1:
                return
        self.check.fail(f"acked entry {e.index}/{e.term} is not durable on a majority")

    def _checks(self) -> None:
        ck = self.check
        for sn in self.alive():
            node = sn.node
            assert node is not None
            r = node.raft
            if r.log.committed < sn.last_commit:
                ck.fail(f"{sn.id}: commit went back from {sn.last_commit} to {r.log.committed}")
            if r.log.committed > sn.last_commit:
                sn.last_commit = r.log.committed
                t = r.log.term_or_zero(r.log.committed)
                if t:
                    ck.commit(r.log.committed, t)
            if r.role == Role.LEADER and r.term not in sn.leader_terms:
                sn.leader_terms.add(r.term)
                self.stats["leader elected"] += 1
                ck.leader(r.term, sn.id)
                idx = ck.last_committed_before(r.term)
                ck.new_leader(sn.id, r.term, {idx: r.log.term_or_zero(idx) or None}, r.log.first_index() - 2)

    # -- liveness ----------------------------------------------------------------------------------------------
    def heal_all(self) -> None:
        """End of faults: heal the network, restart everyone, stop dropping messages."""
        self.net.heal()
        self.net.faults = False
        self._crash_soon.clear()
        for nid in self.ids:
            self.restart(nid)

    def converged(self) -> bool:
        """A leader exists and every member has applied everything acknowledged and the leader's commit."""
        ld = self.leader()
        if ld is None or ld.node is None:
            return False
        commit = ld.node.raft.log.committed
        for nid in ld.node.conf_state.members():
            sn = self.nodes[nid]
            if sn.node is None or sn.applied < max(commit, self.max_acked):
                return False
        return commit >= self.max_acked

    def check_liveness(self, max_ticks: int) -> None:
        """After healing, a fresh proposal must be applied by every member, and everyone must catch up, within
        ``max_ticks``. A marker is re-proposed every two election timeouts: an attempt may be lost in a leader
        change, or proposed by a node that is removed before it learns the commit."""
        retry = 2 * self.cfg.election_tick
        last_try = -retry
        for t in range(max_ticks):
            self.tick()
            ld = self.leader()
            if ld is None or ld.node is None:
                continue
            members = ld.node.conf_state.members()
            if any(members <= who for who in self.markers.values()) and self.converged():
                return
            marker = f"final{len(self.markers)}".encode()
            if t - last_try >= retry and self.propose(marker):
                self.markers[marker] = set()
                last_try = t
        self.check.fail(f"no convergence within {max_ticks} ticks after healing")

