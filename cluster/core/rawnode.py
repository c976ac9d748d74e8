"""The public face of the Raft core: feed it inputs, collect a ``Ready``, persist, send, apply, ``advance``.

The runtime's loop (etcd's contract)::

    node.tick(now_ms) / node.step(msg) / node.propose(data, now_ms) ...
    if node.has_ready():
        rd = node.ready()
        persist rd.snapshot (if any), rd.entries and rd.hard_state durably (fsync)   # 1. persist
        send rd.messages                                                            # 2. only then send
                                   # (or while persisting, when rd.send_before_persist: a leader's appends)
        install rd.snapshot into the state machine, apply rd.committed_entries      # 3. apply
        node.advance(rd)                                                            # 4. acknowledge

Conf change entries in ``committed_entries`` take effect in ``advance`` (the core applies them itself), so the
runtime only has to persist and apply them like any other entry. ``tick``/``step``/``propose`` may be called while
a Ready is being persisted (between ``ready()`` and ``advance()``); ``ready()`` must not be called again before
``advance()``. A snapshot for the runtime to send is read from ``LogStorage.snapshot()``; snapshots of the local
state machine are the runtime's job (``create_snapshot(applied, node.conf_state, data)`` then ``compact``).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from cluster.core.errors import ProposalDropped
from cluster.core.messages import Message, MsgType
from cluster.core.progress import ProgressState
from cluster.core.raft import Config, Raft
from cluster.core.storage import LogStorage
from cluster.core.types import (
    ConfChange,
    ConfChangeOp,
    ConfState,
    Entry,
    EntryType,
    HardState,
    NodeId,
    ReadState,
    Role,
    Snapshot,
    SoftState,
)


@dataclass(slots=True)
class Ready:
    """One batch of work for the runtime. Persist ``snapshot``, ``entries`` and ``hard_state`` BEFORE sending
    ``messages`` (unless ``send_before_persist``); apply ``snapshot`` then ``committed_entries`` after persisting;
    then call ``advance``."""

    soft_state: SoftState | None = None  # set when leader or role changed
    hard_state: HardState | None = None  # set when term, vote or commit changed
    entries: list[Entry] = field(default_factory=list)  # to append (replacing any stored suffix from [0].index)
    snapshot: Snapshot | None = None  # received from the leader: persist (replacing the log) and install
    committed_entries: list[Entry] = field(default_factory=list)  # to apply, in order
    messages: list[Message] = field(default_factory=list)  # to send after persisting (see below)
    read_states: list[ReadState] = field(default_factory=list)  # confirmed reads; serve once index is applied
    # An fsync is needed before sending: new entries, a snapshot, or a term/vote change. A change of the commit
    # index alone may be written without waiting for the disk (it is recomputed after a crash).
    must_sync: bool = False
    # ``messages`` may be sent while ``entries`` are being persisted (Raft thesis 10.2.1, as etcd does): the leader's
    # appends and heartbeats, when neither term nor vote changed and no snapshot came. Followers then write the
    # entries in parallel with the leader instead of after it. Safe because everything of earlier Readys is durable
    # already, and an entry the leader has not persisted yet can only become committed by followers' acks that the
    # core steps in later, whose effects (commit index, applying) leave in a later Ready, after this one's write.
    send_before_persist: bool = False


@dataclass(frozen=True, slots=True)
class PeerStatus:
    match: int
    next: int
    state: ProgressState
    learner: bool
    recent_active: bool


@dataclass(frozen=True, slots=True)
class Status:
    id: NodeId
    term: int
    vote: NodeId
    commit: int
    applied: int
    leader: NodeId
    role: Role
    conf_state: ConfState
    first_index: int
    last_index: int
    lead_transferee: NodeId
    progress: dict[NodeId, PeerStatus]  # only on the leader


class RawNode:
    def __init__(self, config: Config, storage: LogStorage, rng: random.Random) -> None:
        self.raft = Raft(config, storage, rng)
        self._prev_soft = SoftState(self.raft.leader, self.raft.role)
        self._prev_hard = HardState(self.raft.term, self.raft.vote, self.raft.log.committed)
        self.rejected_messages = 0  # from another cluster/group: refused

    # -- inputs ------------------------------------------------------------------------------------------------
    def tick(self, now_ms: int | None = None) -> None:
        """Advance logical time by one tick; ``now_ms`` (the runtime's wall clock) is used to stamp entries."""
        if now_ms is not None:
            self.raft.now_ms = now_ms
        self.raft.tick()

    def step(self, msg: Message) -> None:
        """Deliver a message from a peer. Messages of another cluster incarnation or group, addressed to another node,
        or without a term (local-only types) are refused and counted in ``rejected_messages``."""
        r = self.raft
        if (msg.cluster_id != r.cfg.cluster_id or msg.group_id != r.cfg.group_id or msg.to != r.id
                or msg.term == 0):
            self.rejected_messages += 1
            return
        r.step(msg)

    def campaign(self) -> None:
        """Start an election now (tests and bootstrap; normally the election timeout does this)."""
        self.raft.hup(transfer=False)

    def propose(self, data: bytes, now_ms: int | None = None) -> tuple[int, int]:
        """Append ``data`` as a new entry; return its (index, term). Raises ProposalDropped if not leader.

        The proposal succeeded iff the entry applied at that index has that term.
        """
        return self.propose_batch([data], now_ms)[0]

    def propose_batch(self, datas: Sequence[bytes], now_ms: int | None = None) -> list[tuple[int, int]]:
        """Append several entries at once: one replication message per follower instead of one per entry."""
        self._check_can_propose(now_ms)
        ents = self.raft.append_entries([(EntryType.NORMAL, d) for d in datas])
        self.raft.bcast_append()
        return [(e.index, e.term) for e in ents]

    def propose_conf_change(self, op: ConfChangeOp, node_id: NodeId, now_ms: int | None = None) -> tuple[int, int]:
        """Propose one single-server membership change. Only one may be pending; a learner is promoted only once
        it holds every committed entry. Raises ProposalDropped with the reason otherwise."""
        self._check_can_propose(now_ms)
        r = self.raft
        if r.pending_conf_index > r.log.applied:
            raise ProposalDropped("conf change pending", r.leader)
        voters, learners = set(r.conf.voters), set(r.conf.learners)
        if op == ConfChangeOp.ADD_LEARNER:
            if node_id in voters or node_id in learners:
                raise ProposalDropped("invalid conf change", r.leader)
            learners.add(node_id)
        elif op == ConfChangeOp.ADD_VOTER:
            if node_id in voters:
                raise ProposalDropped("invalid conf change", r.leader)
            learners.discard(node_id)
            voters.add(node_id)
        elif op == ConfChangeOp.PROMOTE:
            if node_id not in learners:
                raise ProposalDropped("invalid conf change", r.leader)
            if r.prs[node_id].match < r.log.committed:
                raise ProposalDropped("learner not caught up", r.leader)
            learners.discard(node_id)
            voters.add(node_id)
        else:
            if node_id not in voters and node_id not in learners:
                raise ProposalDropped("invalid conf change", r.leader)
            voters.discard(node_id)
            learners.discard(node_id)
            if not voters:
                raise ProposalDropped("invalid conf change", r.leader)
        cc = ConfChange(op, node_id, ConfState(frozenset(voters), frozenset(learners)))
        ents = r.append_entries([(EntryType.CONF_CHANGE, cc.encode())])
        r.pending_conf_index = ents[-1].index
        r.bcast_append()
        return ents[-1].index, ents[-1].term

    def _check_can_propose(self, now_ms: int | None) -> None:
        r = self.raft
        if now_ms is not None:
            r.now_ms = now_ms
        if r.role != Role.LEADER:
            raise ProposalDropped("not leader", r.leader)
        if r.lead_transferee:
            raise ProposalDropped("transfer in progress", r.leader)

    def read_index(self, ctx: bytes) -> None:
        """Ask for a linearizable read point; a ReadState with ``ctx`` appears in a later Ready (or never, if the
        leader changes meanwhile: the runtime retries after a timeout)."""
        r = self.raft
        if r.role != Role.LEADER and not r.leader:
            raise ProposalDropped("not leader", "")
        r.step(Message(MsgType.READ_INDEX, r.id, r.id, 0, r.cfg.group_id, r.cfg.cluster_id, context=ctx))

    def transfer_leader(self, to: NodeId) -> None:
        """Hand leadership to voter ``to`` once it has caught up (aborted after one election timeout)."""
        r = self.raft
        if r.role != Role.LEADER:
            raise ProposalDropped("not leader", r.leader)
        r.transfer_leader(to)

    # -- outputs -----------------------------------------------------------------------------------------------
    def _soft(self) -> SoftState:
        return SoftState(self.raft.leader, self.raft.role)

    def _hard(self) -> HardState:
        return HardState(self.raft.term, self.raft.vote, self.raft.log.committed)

    def has_ready(self) -> bool:
        r = self.raft
        return bool(
            r.msgs or r.read_states or r.log.unstable or r.log.unstable_snapshot is not None
            or r.log.has_next_committed() or self._soft() != self._prev_soft or self._hard() != self._prev_hard
        )

    def ready(self) -> Ready:
        r = self.raft
        soft, hard = self._soft(), self._hard()
        rd = Ready(
            soft_state=soft if soft != self._prev_soft else None,
            hard_state=hard if hard != self._prev_hard else None,
            entries=list(r.log.unstable),
            snapshot=r.log.unstable_snapshot,
            committed_entries=r.log.next_committed(r.cfg.max_apply_bytes),
            messages=r.msgs,
            read_states=r.read_states,
        )
        vote_changed = hard.term != self._prev_hard.term or hard.vote != self._prev_hard.vote
        rd.must_sync = bool(rd.entries) or rd.snapshot is not None or vote_changed
        rd.send_before_persist = r.role == Role.LEADER and rd.snapshot is None and not vote_changed
        r.msgs = []
        r.read_states = []
        return rd

    def advance(self, rd: Ready) -> None:
        """Acknowledge that ``rd`` was persisted, sent and applied."""
        r = self.raft
        if rd.soft_state is not None:
            self._prev_soft = rd.soft_state
        if rd.hard_state is not None:
            self._prev_hard = rd.hard_state
        if rd.snapshot is not None:
            r.log.stable_snap_to(rd.snapshot.meta.index)
            r.log.applied_to(rd.snapshot.meta.index)
        if rd.entries:
            last = rd.entries[-1]
            r.log.stable_to(last.index, last.term)
        for e in rd.committed_entries:
            if e.type == EntryType.CONF_CHANGE:
                r.log.applied_to(e.index - 1)
                r.apply_conf_change(ConfChange.decode(e.data))
        if rd.committed_entries:
            r.log.applied_to(rd.committed_entries[-1].index)

    # -- introspection -----------------------------------------------------------------------------------------
    @property
    def conf_state(self) -> ConfState:
        """The membership as of the last applied entry: what a snapshot taken now must record."""
        return self.raft.conf

    def status(self) -> Status:
        r = self.raft
        progress: dict[NodeId, PeerStatus] = {}
        if r.role == Role.LEADER:
            progress = {nid: PeerStatus(p.match, p.next, p.state, p.is_learner, p.recent_active)
                        for nid, p in r.prs.items()}
        return Status(r.id, r.term, r.vote, r.log.committed, r.log.applied, r.leader, r.role, r.conf,
                      r.log.first_index(), r.log.last_index(), r.lead_transferee, progress)
