"""The Raft runtime: drives ``cluster.core.RawNode`` with asyncio, LMDB and gRPC; a drop-in ``cluster.api.Replicator``.

One loop task owns the node. Each turn it proposes every proposal collected since the previous turn as ONE batch
(group commit), then turns each ``Ready`` into exactly one LMDB write transaction with fsync, run in a single writer
thread: new entries, hard state, the state-machine changes of the committed entries applied in this Ready and
``last_applied``. Only after that write does it send the Ready's messages (a leader's appends and heartbeats go
out before it, so that followers write in parallel: ``Ready.send_before_persist``), resolve proposals and confirmed
reads, and ``advance``. (A Ready that installs a snapshot from the leader is the one exception: the snapshot is
written first, the state machine restored from it, then the entries that follow are applied in a second
transaction.)

Messages from peers are stepped into the node as they arrive, also while a write is in flight; that is safe because
anything the node emits meanwhile is sent only after the NEXT Ready's write, which follows this one.

A follower forwards proposals to the leader (``cluster.forwarding``); the leader answers with the (index, term) each
got, and the follower resolves the proposal with its OWN apply result once it has applied that index with that term
(another term there means the proposal lost: ``NotLeader``, retryable). Without a leader, proposals and reads wait
``election_wait_s`` and then raise ``NotLeader``; a proposal that does not commit within ``commit_timeout_s`` raises
``ProposalOutcomeUnknown`` (a ``NotLeader``, so front ends answer a retryable 503 either way). A forward is retried
only when the leader refused it or could not be reached at all, never after an ambiguous failure, so the runtime
applies each proposal at most once.

Reads use ReadIndex: ``read_barrier`` returns once this node has applied (durably) an index the leader confirmed
with a quorum after the call began, so a deposed leader never answers from stale state.

State changes reach LMDB at checkpoints (``storage.deferred``): each Ready's changes are absorbed in memory once
its write is durable, and every so often a Ready's transaction also carries every pending row with the
``last_applied`` they reach. After a crash the node restarts from that checkpoint and Raft hands it the committed
entries after it again (they are still in the log: compaction never passes the last snapshot, and snapshots are
dumps of the checkpointed tables).

Local snapshots are dumps of the state tables taken in a read transaction of their own thread (the loop keeps
running); then the log is compacted to ``keep_log_entries`` behind the snapshot.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import random
import re
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import grpc

from cluster import state_snapshot
from cluster.api import EntryMeta, NotLeader, Replicator, StateMachine
from cluster.core import (
    ConfChange,
    ConfChangeOp,
    Config,
    ConfState,
    EntryType,
    ProposalDropped,
    RawNode,
    Ready,
    Role,
)
from cluster.core.messages import Message
from cluster.forwarding import MAX_FORWARD_BYTES, AdminError, ClusterStatus, PeerInfo, add_services, admin_call, forward
from cluster.lmdb_log import APPLIED_KEY, STATE_TABLE, LmdbLogStorage
from cluster.local import ReplicatorClosed
from cluster.transport import PeerTransport, TransportServicer
from storage.changes import ChangeSet, RowOp
from storage.deferred import DeferredTables
from storage.lmdb_store import LmdbStore

log = logging.getLogger(__name__)

RECENT_RESULTS = 1 << 16  # apply results a follower keeps for forwards whose answer arrives after the apply


_NODE_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def check_node_id(node_id: str) -> str:
    """Node ids travel inside membership entries ("|" and "," separate fields there): keep them plain."""
    if not _NODE_ID.fullmatch(node_id):
        raise ValueError(f"bad node id {node_id!r}: use 1-64 of A-Z a-z 0-9 _ . -")
    return node_id


def parse_peers(text: str) -> dict[str, str]:
    """``n1=HOST:PORT,n2=HOST:PORT`` (the ``--peers`` option) as {node id: gRPC address}; ValueError if malformed."""
    peers: dict[str, str] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        node_id, sep, address = item.partition("=")
        host, colon, port = address.rpartition(":")
        if not sep or not colon or not host or not port.isdigit():
            raise ValueError(f"bad peer {item!r}: expected NODE_ID=HOST:PORT")
        check_node_id(node_id)
        if node_id in peers:
            raise ValueError(f"peer {node_id} listed twice")
        peers[node_id] = address
    if not peers:
        raise ValueError("no peers given")
    return peers


class ProposalOutcomeUnknown(NotLeader):
    """The proposal may or may not have been applied (commit timeout, lost forward, skipped by a snapshot)."""


@dataclass(frozen=True, slots=True)
class RaftSettings:
    """How one node runs. ``peers`` maps node id -> gRPC host:port of every voter of a NEW cluster (this node
    included); a node that ``join``s an existing cluster lists the nodes it can reach and starts with no membership
    until the leader adds it (``add_node``)."""

    node_id: str
    peers: Mapping[str, str]
    address: str = ""  # own advertised gRPC address; defaults to peers[node_id]
    cluster_id: str = "raftmq"
    join: bool = False
    tick_s: float = 0.1
    election_ticks: int = 10
    heartbeat_ticks: int = 1
    election_wait_s: float = 3.0  # proposals and reads wait this long for a leader, then NotLeader
    commit_timeout_s: float = 10.0  # an appended proposal not applied by then: ProposalOutcomeUnknown
    forward_timeout_s: float = 5.0
    snapshot_every: int = 10_000  # entries applied since the last snapshot before taking a new one
    keep_log_entries: int = 2_000  # entries kept behind a snapshot so slow followers catch up from the log
    catch_up_timeout_s: float = 60.0  # add_node: how long a new learner may take to catch up before promotion
    max_msg_bytes: int = 1 << 20
    snapshot_chunk_bytes: int = 1 << 20
    seed: int | None = None
    # Mutual TLS to the peers (broker/tls.py ClusterTls.channel_credentials); None: plain channels.
    channel_credentials: grpc.ChannelCredentials | None = None

    def own_address(self) -> str:
        return self.address or self.peers.get(self.node_id, "")


@dataclass(slots=True)
class _Proposal:
    data: bytes
    fut: asyncio.Future[Any]
    deadline: float
    forwarded: bool = False  # from a follower: resolve with (index, term) once appended


@dataclass(slots=True)
class _Waiter:
    term: int
    fut: asyncio.Future[Any]
    deadline: float


@dataclass(slots=True)
class _ReadBatch:
    futs: list[asyncio.Future[None]] = field(default_factory=list)
    deadlines: list[float] = field(default_factory=list)
    sent_at: float = 0.0


def _never_sent(exc: grpc.aio.AioRpcError) -> bool:
    """True when gRPC could not even connect, so the request certainly did not reach the leader."""
    return exc.code() == grpc.StatusCode.UNAVAILABLE and "failed to connect" in (exc.details() or "").lower()


def _settle(fut: asyncio.Future[Any], result: Any = None, exc: BaseException | None = None) -> None:
    if fut.done():
        return
    if exc is not None:
        fut.set_exception(exc)
    else:
        fut.set_result(result)


class RaftReplicator:
    """``cluster.api.Replicator`` on Raft. Call ``register(server)`` before the gRPC server starts, then
    ``start()`` on the running loop; ``await stop()`` at shutdown."""

    def __init__(self, store: LmdbStore, state_machine: StateMachine, settings: RaftSettings, *,
                 clock: Callable[[], float] = time.time,
                 on_commit: Callable[[int, float], None] | None = None) -> None:
        s = settings
        for nid in (s.node_id, *s.peers):
            check_node_id(nid)
        if not s.join and s.node_id not in s.peers:
            raise ValueError(f"node {s.node_id} is not among the peers {sorted(s.peers)}")
        self.settings = s
        self.cluster_id = s.cluster_id
        self.node_id = s.node_id
        self._store = store
        self._sm = state_machine
        self._clock = clock
        self._on_commit = on_commit
        bootstrap = ConfState() if s.join else ConfState(frozenset(s.peers))
        self.log = LmdbLogStorage(store, bootstrap)
        self._applied = self.log.applied  # applied in memory, its entries durable; the tables lag (checkpoints)
        self._last_ts = self.log.applied_ts
        self.tables = DeferredTables(store)  # the state rows applied since the last checkpoint
        cfg = Config(id=s.node_id, cluster_id=s.cluster_id, election_tick=s.election_ticks,
                     heartbeat_tick=s.heartbeat_ticks, applied=self._applied, max_msg_bytes=s.max_msg_bytes,
                     snapshot_chunk_bytes=s.snapshot_chunk_bytes)
        self.node = RawNode(cfg, self.log, random.Random(s.seed))
        self._conf_history: list[tuple[int, ConfState]] = [(self._applied, self.node.conf_state)]
        self.transport = PeerTransport(s.node_id, s.cluster_id, s.own_address(), dict(s.peers), self._on_messages,
                                       credentials=s.channel_credentials)
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="raft-writer")
        self._snapper = ThreadPoolExecutor(max_workers=1, thread_name_prefix="raft-snapshot")
        self._pending: list[_Proposal] = []
        self._waiters: dict[int, _Waiter] = {}
        self._recent: dict[int, tuple[int, object]] | None = None  # apply results kept while forwards are out
        self._forwards: set[asyncio.Task[None]] = set()
        self._forward_pause_until = 0.0
        self._read_queue = _ReadBatch()
        self._reads_sent: dict[bytes, _ReadBatch] = {}
        self._reads_waiting: list[tuple[int, _ReadBatch]] = []
        self._read_seq = 0
        # Unique per incarnation: an answer to a read asked before a restart can never match a new request.
        self._read_prefix = f"{s.node_id}/{os.urandom(6).hex()}/".encode()
        self._snap_job: asyncio.Future[tuple[int, int, bytes]] | None = None
        self._wakeup: asyncio.Event | None = None
        self._changed: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._closed = False
        self._failed: BaseException | None = None
        self.proposals_committed = 0

    # -- lifecycle ---------------------------------------------------------------------------------------------
    def register(self, server: grpc.aio.Server) -> None:
        """Add the Raft stream, forwarding and admin services to the node's (not yet started) gRPC server."""
        TransportServicer(self.transport).add_to_server(server)
        add_services(server, self)

    def start(self) -> None:
        """Rebuild the state machine from its tables, then start the Raft loop, the tick timer and the streams."""
        loop = asyncio.get_running_loop()
        self._wakeup = asyncio.Event()
        self._changed = asyncio.Event()
        self._sm.restore(self._store)
        self.transport.start()
        self._task = loop.create_task(self._run(), name=f"raft-loop-{self.node_id}")
        self._ticker = loop.create_task(self._tick_loop(), name=f"raft-tick-{self.node_id}")

    async def stop(self, *, hand_over: bool = True) -> None:
        """Stop ticking and the loop (after its current write), fail what is outstanding, close the streams.

        A leader first hands leadership to its most up-to-date connected voter (``hand_over``), so a rolling
        restart costs the cluster a transfer rather than an election timeout.
        """
        if hand_over and not self._closed and self._task is not None:
            await self._hand_over()
        self._closed = True
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        self._wake()
        if self._task is not None:
            with contextlib.suppress(Exception):
                await self._task
        for task in list(self._forwards):
            task.cancel()
        await asyncio.gather(*self._forwards, return_exceptions=True)
        self._fail_all(ReplicatorClosed("replicator stopped"))
        await self.transport.stop()
        if self._snap_job is not None:
            with contextlib.suppress(Exception):
                await self._snap_job
        if self._failed is None and (self.tables.since is not None or self._sm.dirty_rows()):
            # a restart then replays nothing
            with contextlib.suppress(Exception):
                await self._write_checkpoint()
        self._writer.shutdown(wait=True)
        self._snapper.shutdown(wait=True)

    async def _hand_over(self) -> None:
        r = self.node.raft
        if r.role != Role.LEADER:
            return
        candidates = [(pr.match, nid) for nid, pr in r.prs.items()
                      if nid != self.node_id and nid in r.conf.voters and self.transport.connected(nid)]
        if not candidates:
            return
        _, target = max(candidates)
        with contextlib.suppress(ProposalDropped):
            self.node.transfer_leader(target)
            self._wake()
            await self._wait_until(lambda: self.node.raft.role != Role.LEADER,
                                   self.settings.election_ticks * self.settings.tick_s)

    def _fail_all(self, exc: BaseException) -> None:
        for p in self._pending:
            _settle(p.fut, exc=exc)
        self._pending = []
        for w in self._waiters.values():
            _settle(w.fut, exc=exc)
        self._waiters = {}
        batches = [self._read_queue, *self._reads_sent.values(), *(b for _, b in self._reads_waiting)]
        for b in batches:
            for f in b.futs:
                _settle(f, exc=exc)
        self._read_queue = _ReadBatch()
        self._reads_sent = {}
        self._reads_waiting = []

    def _wake(self) -> None:
        if self._wakeup is not None:
            self._wakeup.set()

    def _notify_changed(self) -> None:
        ev = self._changed
        if ev is not None:
            self._changed = asyncio.Event()
            ev.set()

    async def _wait_until(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Wait (re-checking after every Ready and tick) until ``predicate()`` holds; False on timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():
            remaining = deadline - loop.time()
            if remaining <= 0 or self._closed or self._changed is None:
                return predicate()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)
        return True

    # -- the Replicator seam -----------------------------------------------------------------------------------
    def now_ms(self) -> int:
        return max(int(self._clock() * 1000), self._last_ts)

    async def propose_and_wait(self, data: bytes) -> object:
        self._check_open()
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        self._pending.append(_Proposal(data, fut, loop.time() + self.settings.election_wait_s))
        self._wake()
        return await fut

    async def read_barrier(self) -> None:
        self._check_open()
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        self._read_queue.futs.append(fut)
        self._read_queue.deadlines.append(loop.time() + self.settings.election_wait_s)
        self._wake()
        await fut

    def _check_open(self) -> None:
        if self._closed:
            raise ReplicatorClosed(f"replicator stopped{f': {self._failed!r}' if self._failed else ''}")

    @property
    def leader(self) -> str:
        return self.node.raft.leader

    @property
    def is_leader(self) -> bool:
        return self.node.raft.role == Role.LEADER

    @property
    def applied(self) -> int:
        """The last index whose effects are durable in the state tables."""
        return self._applied

    @property
    def failed(self) -> BaseException | None:
        """Why the node stopped itself (a disk write failed or a core invariant broke), else None: for health."""
        return self._failed

    @property
    def last_applied(self) -> int:
        """``applied`` under the name ``LocalReplicator`` uses."""
        return self._applied

    # -- inputs ------------------------------------------------------------------------------------------------
    def _on_messages(self, msgs: list[Message]) -> None:
        if self._closed:
            return
        try:
            for m in msgs:
                self.node.step(m)
        except Exception as exc:  # a broken invariant in the core: stop rather than diverge
            self._fail(exc)
            return
        self._wake()

    def _fail(self, exc: BaseException) -> None:
        log.critical("raft node %s failed; stopping it", self.node_id, exc_info=exc)
        self._failed = exc
        self._closed = True
        self._fail_all(ReplicatorClosed(f"raft node failed: {exc!r}"))
        self._wake()

    async def _tick_loop(self) -> None:
        loop = asyncio.get_running_loop()
        tick = self.settings.tick_s
        next_at = loop.time() + tick
        while not self._closed:
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            next_at += tick
            if loop.time() > next_at + 10 * tick:
                next_at = loop.time() + tick  # the loop stalled: do not fire a burst of ticks
            try:
                self.node.tick(self.now_ms())
            except Exception as exc:
                self._fail(exc)
                return
            self._expire(loop.time())
            self._notify_changed()
            self._wake()

    def _expire(self, now: float) -> None:
        hint = self.leader or None
        if self._pending:
            keep = []
            for p in self._pending:
                if now >= p.deadline:
                    _settle(p.fut, exc=NotLeader(hint))
                else:
                    keep.append(p)
            self._pending = keep
        if self._waiters:
            for index in [i for i, w in self._waiters.items() if now >= w.deadline]:
                _settle(self._waiters.pop(index).fut, exc=ProposalOutcomeUnknown(hint))
        # Reads: give up after their deadline; re-ask when the leader did not answer within an election timeout.
        retry_after = self.settings.election_ticks * self.settings.tick_s
        for ctx, batch in list(self._reads_sent.items()):
            if now - batch.sent_at >= retry_after or self.node.raft.leader == "":
                del self._reads_sent[ctx]
                self._requeue_reads(batch)
        q = self._read_queue
        if q.futs:
            self._read_queue = _ReadBatch()
            self._requeue_reads(q, now)
        if self._reads_waiting:
            keep_waiting = []
            for index, batch in self._reads_waiting:
                alive = self._drop_expired(batch, now)
                if alive:
                    keep_waiting.append((index, batch))
            self._reads_waiting = keep_waiting

    def _requeue_reads(self, batch: _ReadBatch, now: float | None = None) -> None:
        if now is not None and not self._drop_expired(batch, now):
            return
        self._read_queue.futs.extend(batch.futs)
        self._read_queue.deadlines.extend(batch.deadlines)

    def _drop_expired(self, batch: _ReadBatch, now: float) -> bool:
        """Fail the reads of ``batch`` past their deadline; return whether any remain."""
        futs, deadlines = [], []
        for f, d in zip(batch.futs, batch.deadlines, strict=True):
            if f.done():
                continue
            if now >= d:
                f.set_exception(NotLeader(self.leader or None))
            else:
                futs.append(f)
                deadlines.append(d)
        batch.futs, batch.deadlines = futs, deadlines
        return bool(futs)

    # -- the loop ----------------------------------------------------------------------------------------------
    async def _run(self) -> None:
        assert self._wakeup is not None
        try:
            while not self._closed:
                self._wakeup.clear()
                self._submit_proposals()
                self._submit_reads()
                if self._snap_job is not None and self._snap_job.done():
                    await self._finish_local_snapshot()
                if self.node.has_ready():
                    await self._process(self.node.ready())
                    self._notify_changed()
                    continue
                await self._wakeup.wait()
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # the disk failed or an invariant broke: memory may be ahead of disk
            self._fail(exc)
            raise

    def _submit_proposals(self) -> None:
        if not self._pending:
            return
        r = self.node.raft
        if r.role == Role.LEADER and not r.lead_transferee:
            batch = [p for p in self._pending if not p.fut.done()]  # skip callers that gave up meanwhile
            self._pending = []
            if not batch:
                return
            try:
                positions = self.node.propose_batch([p.data for p in batch], self.now_ms())
            except ProposalDropped as exc:
                for p in batch:
                    _settle(p.fut, exc=NotLeader(exc.leader_hint or None))
                return
            deadline = asyncio.get_running_loop().time() + self.settings.commit_timeout_s
            for p, (index, term) in zip(batch, positions, strict=True):
                if p.forwarded:
                    _settle(p.fut, (index, term))
                else:
                    self._waiters[index] = _Waiter(term, p.fut, deadline)
            return
        forwarded = [p for p in self._pending if p.forwarded]
        if forwarded:  # we lost leadership before appending them: the follower will retry elsewhere
            for p in forwarded:
                _settle(p.fut, exc=NotLeader(r.leader or None))
            self._pending = [p for p in self._pending if not p.forwarded]
        leader = r.leader
        if (not self._pending or not leader or leader == self.node_id
                or asyncio.get_running_loop().time() < self._forward_pause_until):
            return  # no leader (or it just refused us): wait for one until the proposals' deadline
        batch, self._pending = self._pending, []
        task = asyncio.get_running_loop().create_task(self._forward(leader, batch), name="raft-forward")
        self._forwards.add(task)
        task.add_done_callback(self._forwards.discard)

    async def _forward(self, leader: str, batch: list[_Proposal]) -> None:
        """Send ``batch`` to ``leader`` in chunks; register each appended proposal as a waiter on its index."""
        if self._recent is None:
            self._recent = {}
        loop = asyncio.get_running_loop()
        todo = list(batch)
        chunk: list[_Proposal] = []
        try:
            while todo:
                chunk, size = [], 0
                while todo and (not chunk or size + len(todo[0].data) <= MAX_FORWARD_BYTES):
                    size += len(todo[0].data)
                    chunk.append(todo.pop(0))
                channel = self.transport.channel(leader)
                if channel is None:
                    raise NotLeader(leader)
                positions = await forward(channel, self.cluster_id, [p.data for p in chunk],
                                          self.settings.forward_timeout_s)
                deadline = loop.time() + self.settings.commit_timeout_s
                for p, (index, term) in zip(chunk, positions, strict=True):
                    self._await_position(p.fut, index, term, deadline)
                chunk = []
        except asyncio.CancelledError:  # stopping: these are in no list that stop() fails
            for p in chunk + todo:
                _settle(p.fut, exc=ReplicatorClosed("replicator stopped"))
            raise
        except NotLeader:
            self._retry_later(chunk + todo)  # refused: nothing of this chunk was appended
        except grpc.aio.AioRpcError as exc:
            if _never_sent(exc):
                self._retry_later(chunk + todo)  # the leader is down: wait for the next one
            else:
                # The leader may have appended the chunk before the call failed: retrying could apply it twice, so
                # its proposers get a retryable "unknown" (the client decides); chunks never sent are retried.
                for p in chunk:
                    _settle(p.fut, exc=ProposalOutcomeUnknown(leader))
                self._retry_later(todo)
        finally:
            if len(self._forwards) <= 1:
                self._recent = None

    def _retry_later(self, proposals: list[_Proposal]) -> None:
        live = [p for p in proposals if not p.fut.done()]
        if live:
            self._pending = live + self._pending
            self._forward_pause_until = asyncio.get_running_loop().time() + self.settings.tick_s

    def _await_position(self, fut: asyncio.Future[Any], index: int, term: int, deadline: float) -> None:
        """Resolve ``fut`` with this node's apply result at ``index`` if that entry has ``term``."""
        if index <= self._applied:
            done = self._recent.get(index) if self._recent is not None else None
            if done is None:
                _settle(fut, exc=ProposalOutcomeUnknown(self.leader or None))
            elif done[0] == term:
                _settle(fut, done[1])
            else:
                _settle(fut, exc=NotLeader(self.leader or None))
            return
        self._waiters[index] = _Waiter(term, fut, deadline)

    async def accept_forwarded(self, datas: list[bytes]) -> list[tuple[int, int]]:
        """``RaftForward.Forward`` on this node: append ``datas`` with the next batch if we lead."""
        if not self.is_leader or self._closed:
            raise NotLeader(self.leader or None)
        loop = asyncio.get_running_loop()
        futs: list[asyncio.Future[Any]] = []
        deadline = loop.time() + self.settings.election_wait_s
        for d in datas:
            fut: asyncio.Future[Any] = loop.create_future()
            futs.append(fut)
            self._pending.append(_Proposal(d, fut, deadline, forwarded=True))
        self._wake()
        try:
            return list(await asyncio.gather(*futs))
        except ReplicatorClosed as exc:
            raise NotLeader(None) from exc

    def _submit_reads(self) -> None:
        q = self._read_queue
        if not q.futs or not self.node.raft.leader:
            return
        self._read_seq += 1
        ctx = self._read_prefix + str(self._read_seq).encode()
        try:
            self.node.read_index(ctx)
        except ProposalDropped:
            return  # no leader known: keep them queued until one appears or they expire
        q.sent_at = asyncio.get_running_loop().time()
        self._reads_sent[ctx] = q
        self._read_queue = _ReadBatch()

    async def _process(self, rd: Ready) -> None:
        loop = asyncio.get_running_loop()
        lg = self.log
        snap = rd.snapshot
        if snap is not None and not snap.is_empty():
            await self._install_snapshot(rd)
        else:
            if rd.entries:
                lg.append(rd.entries)
            if rd.hard_state is not None:
                lg.set_hard_state(rd.hard_state)
        sent = rd.send_before_persist and bool(rd.messages)
        if sent:  # a leader's appends: followers write them while we do
            self.transport.send(rd.messages)
        committed = rd.committed_entries
        # A checkpoint covers the state as applied so far: taken before this Ready's entries are applied, because
        # the state machine hands over the rows it held back as they are now.
        now = time.monotonic()
        checkpoint = self.tables.due(now, self._sm.dirty_rows())
        writes = self._take_checkpoint() if checkpoint else []
        changes = ChangeSet()
        replies: list[object] = []
        last_ts = self._last_ts
        sm_apply = self._sm.apply
        waiters = self._waiters
        every_reply = self._recent is not None  # forwards are out: their replies are looked up by index later
        for e in committed:
            reply: object = None
            if e.type == EntryType.NORMAL:
                try:
                    reply = sm_apply(EntryMeta(e.index, e.term, e.ts, every_reply or e.index in waiters), e.data,
                                     changes)
                except Exception as exc:  # a bug in apply: deterministic, so every node fails the same way
                    log.exception("apply failed at index %d", e.index)
                    reply = exc
            elif e.type == EntryType.CONF_CHANGE:
                self._conf_history.append((e.index, ConfChange.decode(e.data).result))
            replies.append(reply)
            last_ts = max(last_ts, e.ts)
        writes.extend(changes.payload)
        ops, ranges, durable_last = lg.take_writes()
        writes.extend(ops)
        if writes or ranges:
            started = time.perf_counter()
            await loop.run_in_executor(self._writer, self._store.write, writes, ranges)
            if self._on_commit is not None and committed:
                self._on_commit(len(committed), time.perf_counter() - started)
        lg.on_durable(durable_last)
        if checkpoint:
            self.tables.written()
        # Durable: now the world may learn about it.
        self.tables.absorb(changes, now)
        if committed:
            self._applied = committed[-1].index
            self._last_ts = last_ts
        if not sent:
            self.transport.send(rd.messages)
        if committed:
            self._sm.after_durable()
            self._resolve(committed, replies)
        for rs in rd.read_states:
            batch = self._reads_sent.pop(rs.ctx, None)
            if batch is not None:
                self._reads_waiting.append((rs.index, batch))
        if self._reads_waiting:
            self._release_reads()
        self.node.advance(rd)
        if any(e.type == EntryType.CONF_CHANGE for e in committed):
            self._sync_transport_peers()
        self._maybe_start_snapshot()

    def _take_checkpoint(self) -> list[RowOp]:
        """Every pending state row and the ``last_applied`` they reach, as ops for the next write."""
        self.log.set_applied(self._applied, self._last_ts)
        return self.tables.take(self._sm.flush_rows)

    async def _write_checkpoint(self) -> None:
        writes = self._take_checkpoint()
        ops, ranges, durable_last = self.log.take_writes()
        writes.extend(ops)
        await asyncio.get_running_loop().run_in_executor(self._writer, self._store.write, writes, ranges)
        self.log.on_durable(durable_last)
        self.tables.written()

    def _resolve(self, committed: list[Any], replies: list[object]) -> None:
        waiters = self._waiters
        recent = self._recent
        hint = self.leader or None
        if recent is not None and len(recent) > 2 * RECENT_RESULTS:
            # Under constant forwarding the dict never resets: keep the newest results (dicts keep insertion order).
            for index in list(itertools.islice(recent, len(recent) - RECENT_RESULTS)):
                del recent[index]
        for e, reply in zip(committed, replies, strict=True):
            if recent is not None:
                recent[e.index] = (e.term, reply)
            w = waiters.pop(e.index, None) if waiters else None
            if w is None:
                continue
            if w.term == e.term:
                self.proposals_committed += 1
                _settle(w.fut, reply)
            else:
                _settle(w.fut, exc=NotLeader(hint))

    def _release_reads(self) -> None:
        keep = []
        for index, batch in self._reads_waiting:
            if index <= self._applied:
                for f in batch.futs:
                    _settle(f)
            else:
                keep.append((index, batch))
        self._reads_waiting = keep

    async def _install_snapshot(self, rd: Ready) -> None:
        """Persist a snapshot from the leader (with the Ready's entries and hard state) and restore from it."""
        snap = rd.snapshot
        assert snap is not None
        lg = self.log
        _, ts = state_snapshot.header(snap.data)
        self.tables.discard()  # rows of entries before the snapshot, which replaces every table
        lg.apply_snapshot(snap)
        lg.set_applied(snap.meta.index, ts)
        if rd.entries:
            lg.append(rd.entries)
        if rd.hard_state is not None:
            lg.set_hard_state(rd.hard_state)
        ops, ranges, durable_last = lg.take_writes()
        store = self._store

        def write() -> None:
            store.write(state_snapshot.install_ops(store, snap.data) + ops, ranges)

        await asyncio.get_running_loop().run_in_executor(self._writer, write)
        lg.on_durable(durable_last)
        self._applied = snap.meta.index
        self._last_ts = max(self._last_ts, ts)
        self._sm.restore(store)
        self._conf_history = [(snap.meta.index, snap.meta.conf_state)]
        for i in [i for i in self._waiters if i <= snap.meta.index]:
            _settle(self._waiters.pop(i).fut, exc=ProposalOutcomeUnknown(self.leader or None))
        if self._recent is not None:
            self._recent.clear()
        log.info("node %s installed snapshot %d/%d (%d bytes)", self.node_id, snap.meta.index, snap.meta.term,
                 len(snap.data))

    def _sync_transport_peers(self) -> None:
        members = self.node.conf_state.members()
        for nid in list(self.transport.peers()):
            if nid not in members and members:
                self.transport.remove_peer(nid)

    # -- local snapshots and compaction ------------------------------------------------------------------------
    def _maybe_start_snapshot(self) -> None:
        if self._snap_job is not None or self._closed:
            return
        if self.log.applied - self.log.snapshot().meta.index < self.settings.snapshot_every:
            return  # a dump holds the checkpointed tables: count from the last checkpoint
        self._snap_job = asyncio.get_running_loop().run_in_executor(
            self._snapper, state_snapshot.dump, self._store, (STATE_TABLE, APPLIED_KEY))

    async def _finish_local_snapshot(self) -> None:
        job, self._snap_job = self._snap_job, None
        assert job is not None
        try:
            index, _, data = job.result()
        except Exception:
            log.exception("snapshot dump failed")
            return
        lg = self.log
        if index <= lg.snapshot().meta.index or index < lg.first_index() - 1 or index > lg.last_index():
            return  # overtaken (e.g. by a snapshot from the leader)
        conf = self._conf_at(index)
        lg.create_snapshot(index, conf, data)
        compact_to = index - self.settings.keep_log_entries
        if compact_to >= lg.first_index():
            lg.compact(compact_to)
        ops, ranges, durable_last = lg.take_writes()
        await asyncio.get_running_loop().run_in_executor(self._writer, self._store.write, ops, ranges)
        lg.on_durable(durable_last)
        self._conf_history = [(index, conf), *((at, c) for at, c in self._conf_history if at > index)]
        log.info("node %s snapshot at %d (%d bytes), log compacted to %d", self.node_id, index, len(data),
                 lg.first_index())

    def _conf_at(self, index: int) -> ConfState:
        conf = self._conf_history[0][1]
        for at, c in self._conf_history:
            if at <= index:
                conf = c
        return conf

    # -- operations --------------------------------------------------------------------------------------------
    def status(self) -> ClusterStatus:
        st = self.node.status()
        peers = tuple(
            PeerInfo(nid, p.match, p.next, p.state.value, p.learner, p.recent_active,
                     max(0, st.last_index - p.match), self.transport.address_of(nid))
            for nid, p in sorted(st.progress.items()))
        return ClusterStatus(st.id, st.leader, st.term, st.role.value, st.commit, self._applied, st.first_index,
                             st.last_index, self.log.snapshot().meta.index, tuple(sorted(st.conf_state.voters)),
                             tuple(sorted(st.conf_state.learners)), peers)

    async def _leader_or_wait(self) -> str:
        """The current leader's id, waiting up to ``election_wait_s`` for one; AdminError if none appears."""
        if not await self._wait_until(lambda: bool(self.leader), self.settings.election_wait_s):
            raise AdminError("no leader")
        return self.leader

    async def _on_leader(self, op: str, node_id: str, address: str = "") -> bool:
        """Pass an admin operation to the leader unless this node leads; True if it was passed on."""
        leader = await self._leader_or_wait()
        if leader == self.node_id:
            return False
        channel = self.transport.channel(leader)
        if channel is None:
            raise AdminError("leader address unknown", leader)
        await admin_call(channel, op, node_id, address, timeout=self.settings.catch_up_timeout_s + 10)
        return True

    async def add_node(self, node_id: str, address: str) -> None:
        """Add ``node_id`` (listening at ``address``) as a learner, wait until it has caught up, promote it."""
        check_node_id(node_id)
        if await self._on_leader("add", node_id, address):
            return
        self.transport.set_peer(node_id, address)
        conf = self.node.conf_state
        if node_id in conf.voters:
            return
        if node_id not in conf.learners:
            await self._conf_change(ConfChangeOp.ADD_LEARNER, node_id)

        def caught_up() -> bool:
            r = self.node.raft
            pr = r.prs.get(node_id)
            return r.role != Role.LEADER or (pr is not None and pr.match >= r.log.committed)

        deadline = asyncio.get_running_loop().time() + self.settings.catch_up_timeout_s
        while True:
            remaining = deadline - asyncio.get_running_loop().time()
            if not await self._wait_until(caught_up, max(0.0, remaining)):
                raise AdminError("learner not caught up", self.leader)
            if not self.is_leader:
                raise AdminError("not leader", self.leader)
            try:
                await self._conf_change(ConfChangeOp.PROMOTE, node_id)
                return
            except AdminError as exc:
                # Under load the commit index may move past the learner between the check and the proposal.
                if exc.reason != "learner not caught up":
                    raise
                await self._wait_until(lambda: False, self.settings.tick_s)

    async def remove_node(self, node_id: str) -> None:
        if await self._on_leader("remove", node_id):
            return
        if node_id not in self.node.conf_state.members():
            return
        await self._conf_change(ConfChangeOp.REMOVE, node_id)

    async def _conf_change(self, op: ConfChangeOp, node_id: str) -> None:
        deadline = asyncio.get_running_loop().time() + self.settings.commit_timeout_s
        while True:
            try:
                index, term = self.node.propose_conf_change(op, node_id, self.now_ms())
                break
            except ProposalDropped as exc:
                # A new leader first commits its no-op; an earlier change may still be applying: wait a moment.
                if exc.reason != "conf change pending" or asyncio.get_running_loop().time() >= deadline:
                    raise AdminError(exc.reason, exc.leader_hint) from exc
                await self._wait_until(lambda: False, self.settings.tick_s)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiters[index] = _Waiter(term, fut, asyncio.get_running_loop().time() + self.settings.commit_timeout_s)
        self._wake()
        try:
            await fut
        except NotLeader as exc:
            raise AdminError("not leader", exc.leader_hint or "") from exc

    async def transfer_leader(self, node_id: str) -> None:
        if await self._on_leader("transfer", node_id):
            return
        if node_id == self.node_id:
            return
        if node_id not in self.node.conf_state.voters:
            raise AdminError("not a voter", self.leader)
        try:
            self.node.transfer_leader(node_id)
        except ProposalDropped as exc:
            raise AdminError(exc.reason, exc.leader_hint) from exc
        self._wake()
        timeout = 2 * self.settings.election_ticks * self.settings.tick_s
        if not await self._wait_until(lambda: self.leader == node_id, timeout):
            raise AdminError("transfer timed out", self.leader)


def _is_a_replicator(r: RaftReplicator) -> Replicator:
    """Static proof (mypy) that RaftReplicator is a drop-in ``cluster.api.Replicator``."""
    return r
