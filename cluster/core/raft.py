"""The Raft protocol state machine (one node, one group), with no I/O, clock or global randomness.

Follows the structure of etcd-io/raft: a common ``step`` handles terms and votes, then a role-specific step
handles the rest. Outgoing messages accumulate in ``msgs``; ``RawNode`` hands them out in a ``Ready`` after the
entries and hard state they depend on have been persisted.

Features: randomized election timeouts, pre-vote (§9.6), check-quorum with leader lease, replication with fast
back-off and bounded pipelining, commit counting only current-term entries (§5.4.2), ReadIndex (§6.4), leadership
transfer (§3.10), chunked InstallSnapshot, single-server membership changes with learners (§4.1).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from cluster.core.log import RaftLog
from cluster.core.messages import Message, MsgType, SnapshotChunk
from cluster.core.progress import Progress, ProgressState
from cluster.core.storage import CompactedError, LogStorage, UnavailableError
from cluster.core.types import (
    ConfChange,
    ConfState,
    Entry,
    EntryType,
    NodeId,
    ReadState,
    Role,
    Snapshot,
    SnapshotMeta,
)

TRANSFER_CTX = b"transfer"


@dataclass(frozen=True, slots=True)
class Config:
    """Static settings of one Raft node. Ticks are abstract: the runtime decides how long one tick is."""

    id: NodeId
    group_id: int = 0
    cluster_id: str = ""  # unique per cluster incarnation: messages from any other cluster id are refused
    election_tick: int = 10
    heartbeat_tick: int = 1
    applied: int = 0  # last index the state machine had applied before a restart
    max_msg_bytes: int = 1 << 20  # entries per append message
    max_inflight_msgs: int = 256
    max_inflight_bytes: int = 16 << 20
    max_apply_bytes: int = 16 << 20  # committed entries per Ready
    snapshot_chunk_bytes: int = 1 << 20
    pre_vote: bool = True
    check_quorum: bool = True

    def __post_init__(self) -> None:
        if not self.id:
            raise ValueError("node id must not be empty")
        if self.heartbeat_tick <= 0 or self.election_tick <= self.heartbeat_tick:
            raise ValueError("need 0 < heartbeat_tick < election_tick")


@dataclass(slots=True)
class _ReadRequest:
    round: int
    index: int
    frm: NodeId
    ctx: bytes


class Raft:
    def __init__(self, config: Config, storage: LogStorage, rng: random.Random) -> None:
        self.cfg = config
        self.id = config.id
        self.rng = rng
        hs, conf = storage.initial_state()
        self.log = RaftLog(storage, config.applied)
        self.term = 0
        self.vote: NodeId = ""
        self.role = Role.FOLLOWER
        self.leader: NodeId = ""
        self.conf = ConfState()
        self.prs: dict[NodeId, Progress] = {}
        self.votes: dict[NodeId, bool] = {}
        self.msgs: list[Message] = []
        self.read_states: list[ReadState] = []
        self.election_elapsed = 0
        self.heartbeat_elapsed = 0
        self.randomized_election_timeout = config.election_tick
        self.lead_transferee: NodeId = ""
        self.pending_conf_index = 0
        self.now_ms = 0
        self.last_ts = 0
        self._read_round = 0
        self._read_requests: list[_ReadRequest] = []
        self._read_acks: dict[NodeId, int] = {}
        self._pending_reads: list[Message] = []  # held until the leader commits an entry of its term
        self._snap_recv: tuple[SnapshotMeta, bytearray] | None = None  # (meta, data so far) of an incoming snapshot
        self.dropped_messages = 0
        self._set_conf(conf)
        if hs.term or hs.vote or hs.commit:
            if hs.commit > self.log.last_index():
                raise AssertionError(f"hard state commit {hs.commit} beyond last index {self.log.last_index()}")
            self.term, self.vote = hs.term, hs.vote
            self.log.commit_to(hs.commit)
        self._replay_applied_conf_changes()
        self.become_follower(self.term, "")

    # -- helpers -----------------------------------------------------------------------------------------------
    def _replay_applied_conf_changes(self) -> None:
        """After a restart with ``applied`` beyond the snapshot, re-apply the membership those entries set."""
        lo, hi = self.log.first_index(), min(self.log.applied, self.log.committed)
        if hi >= lo:
            for e in self.log.slice(lo, hi + 1):
                if e.type == EntryType.CONF_CHANGE:
                    self._set_conf(ConfChange.decode(e.data).result)

    def promotable(self) -> bool:
        return self.id in self.conf.voters

    def quorum(self) -> int:
        return len(self.conf.voters) // 2 + 1

    def _send(self, type_: MsgType, to: NodeId, term: int | None = None, **kw: Any) -> None:
        self.msgs.append(Message(type_, self.id, to, self.term if term is None else term,
                                 self.cfg.group_id, self.cfg.cluster_id, **kw))

    def _reset_randomized_timeout(self) -> None:
        et = self.cfg.election_tick
        self.randomized_election_timeout = et + self.rng.randrange(et)

    def _set_conf(self, conf: ConfState) -> None:
        """Switch to membership ``conf``: add/remove progress trackers, flag learners."""
        self.conf = conf
        last = self.log.last_index()
        for nid in conf.members():
            pr = self.prs.get(nid)
            if pr is None:
                pr = Progress(last + 1, self.cfg.max_inflight_msgs, self.cfg.max_inflight_bytes, False)
                if nid == self.id:
                    pr.match = last
                self.prs[nid] = pr
            pr.is_learner = nid in conf.learners
        for nid in list(self.prs):
            if nid not in conf.members():
                del self.prs[nid]

    def _reset(self, term: int) -> None:
        if self.term != term:
            self.term = term
            self.vote = ""
        self.leader = ""
        self.election_elapsed = 0
        self.heartbeat_elapsed = 0
        self._reset_randomized_timeout()
        self.lead_transferee = ""
        self.votes = {}
        last = self.log.last_index()
        for nid, pr in self.prs.items():
            learner = pr.is_learner
            np = Progress(last + 1, self.cfg.max_inflight_msgs, self.cfg.max_inflight_bytes, learner)
            if nid == self.id:
                np.match = last
            self.prs[nid] = np
        self.pending_conf_index = 0
        self._read_requests = []
        self._read_acks = {}
        self._pending_reads = []

    # -- role transitions --------------------------------------------------------------------------------------
    def become_follower(self, term: int, leader: NodeId) -> None:
        self._reset(term)
        self.role = Role.FOLLOWER
        self.leader = leader

    def become_pre_candidate(self) -> None:
        if self.role == Role.LEADER:
            raise AssertionError("leader cannot become pre-candidate")
        # Does not bump the term nor change the vote: a pre-vote disturbs nobody.
        self.votes = {}
        self.role = Role.PRE_CANDIDATE
        self.leader = ""

    def become_candidate(self) -> None:
        if self.role == Role.LEADER:
            raise AssertionError("leader cannot become candidate")
        self._reset(self.term + 1)
        self.vote = self.id
        self.role = Role.CANDIDATE

    def become_leader(self) -> None:
        if self.role == Role.FOLLOWER:
            raise AssertionError("follower cannot become leader directly")
        self._reset(self.term)
        self.leader = self.id
        self.role = Role.LEADER
        self.prs[self.id].become_replicate()
        # No conf change until every entry of previous terms is committed (fixes the single-server change bug).
        self.pending_conf_index = self.log.last_index()
        self.last_ts = max(self.last_ts, self.log.last_entry_ts())
        self.append_entries([(EntryType.EMPTY, b"")])
        self.bcast_append()

    # -- time --------------------------------------------------------------------------------------------------
    def tick(self) -> None:
        if self.role == Role.LEADER:
            self._tick_leader()
        else:
            self.election_elapsed += 1
            if self.promotable() and self.election_elapsed >= self.randomized_election_timeout:
                self.election_elapsed = 0
                self.hup(transfer=False)

    def _tick_leader(self) -> None:
        self.heartbeat_elapsed += 1
        self.election_elapsed += 1
        for nid, pr in self.prs.items():
            if pr.state == ProgressState.SNAPSHOT and nid != self.id:
                pr.snapshot_ticks += 1
                if pr.snapshot_ticks >= 2 * self.cfg.election_tick:
                    pr.pending_snapshot = 0  # presumed lost: probe again (which resends it if still needed)
                    pr.become_probe()
        if self.election_elapsed >= self.cfg.election_tick:
            self.election_elapsed = 0
            if self.cfg.check_quorum:
                if not self._quorum_active():
                    self.become_follower(self.term, "")
                    return
                for nid, pr in self.prs.items():
                    pr.recent_active = nid == self.id
            self.lead_transferee = ""  # a transfer that did not finish within an election timeout is aborted
        if self.heartbeat_elapsed >= self.cfg.heartbeat_tick:
            self.heartbeat_elapsed = 0
            # Carry the latest read round, so reads whose own round was lost are still confirmed.
            self.bcast_heartbeat(str(self._read_round).encode() if self._read_requests else b"")

    def _quorum_active(self) -> bool:
        active = sum(1 for v in self.conf.voters if v == self.id or (v in self.prs and self.prs[v].recent_active))
        return active >= self.quorum()

    # -- elections ---------------------------------------------------------------------------------------------
    def _has_unapplied_conf_change(self) -> bool:
        lo, hi = self.log.applied + 1, self.log.committed
        if hi < lo:
            return False
        return any(e.type == EntryType.CONF_CHANGE for e in self.log.slice(max(lo, self.log.first_index()), hi + 1))

    def hup(self, transfer: bool) -> None:
        """Start an election (a pre-vote first unless this is a leadership transfer)."""
        if self.role == Role.LEADER or not self.promotable() or self._has_unapplied_conf_change():
            return
        if self.cfg.pre_vote and not transfer:
            self.campaign(pre=True, transfer=False)
        else:
            self.campaign(pre=False, transfer=transfer)

    def campaign(self, pre: bool, transfer: bool) -> None:
        if pre:
            self.become_pre_candidate()
            vote_type, term = MsgType.PRE_VOTE, self.term + 1
        else:
            self.become_candidate()
            vote_type, term = MsgType.VOTE, self.term
        if self._poll(self.id, True) == "won":
            if pre:
                self.campaign(pre=False, transfer=False)
            else:
                self.become_leader()
            return
        ctx = TRANSFER_CTX if transfer else b""
        last = self.log.last_index()
        for v in sorted(self.conf.voters):
            if v != self.id:
                self._send(vote_type, v, term=term, index=last, log_term=self.log.last_term(), context=ctx)

    def _poll(self, nid: NodeId, granted: bool) -> str:
        if nid in self.conf.voters:
            self.votes.setdefault(nid, granted)
        yes = sum(1 for v in self.votes.values() if v)
        no = len(self.votes) - yes
        if yes >= self.quorum():
            return "won"
        if no > len(self.conf.voters) - self.quorum():
            return "lost"
        return "pending"

    # -- the step function -------------------------------------------------------------------------------------
    def step(self, m: Message) -> None:
        if m.term == 0:
            pass  # a local request (read index from this node): no term to compare
        elif m.term > self.term:
            if m.type in (MsgType.VOTE, MsgType.PRE_VOTE):
                force = m.context == TRANSFER_CTX
                in_lease = self.cfg.check_quorum and self.leader != "" and \
                    self.election_elapsed < self.cfg.election_tick
                if not force and in_lease:
                    return  # we heard from a live leader recently: do not let a partitioned node disrupt it
            if m.type == MsgType.PRE_VOTE or (m.type == MsgType.PRE_VOTE_RESP and not m.reject):
                pass  # pre-votes never change our term
            elif m.type in (MsgType.APP, MsgType.HEARTBEAT, MsgType.SNAP):
                self.become_follower(m.term, m.frm)
            else:
                self.become_follower(m.term, "")
        elif m.term < self.term:
            if m.type in (MsgType.APP, MsgType.HEARTBEAT) and (self.cfg.check_quorum or self.cfg.pre_vote):
                # A stale leader (e.g. after a partition) learns our term and steps down.
                self._send(MsgType.APP_RESP, m.frm)
            elif m.type == MsgType.PRE_VOTE:
                self._send(MsgType.PRE_VOTE_RESP, m.frm, reject=True)
            return

        if m.type in (MsgType.VOTE, MsgType.PRE_VOTE):
            self._handle_vote_request(m)
        elif self.role == Role.LEADER:
            self._step_leader(m)
        elif self.role in (Role.CANDIDATE, Role.PRE_CANDIDATE):
            self._step_candidate(m)
        else:
            self._step_follower(m)

    def _handle_vote_request(self, m: Message) -> None:
        resp = MsgType.VOTE_RESP if m.type == MsgType.VOTE else MsgType.PRE_VOTE_RESP
        can_vote = (self.vote == m.frm or (self.vote == "" and self.leader == "")
                    or (m.type == MsgType.PRE_VOTE and m.term > self.term))
        if can_vote and self.log.is_up_to_date(m.index, m.log_term):
            self._send(resp, m.frm, term=m.term)
            if m.type == MsgType.VOTE:
                self.election_elapsed = 0
                self.vote = m.frm
        else:
            self._send(resp, m.frm, reject=True)

    def _step_candidate(self, m: Message) -> None:
        my_resp = MsgType.PRE_VOTE_RESP if self.role == Role.PRE_CANDIDATE else MsgType.VOTE_RESP
        if m.type == MsgType.APP:
            self.become_follower(m.term, m.frm)
            self._handle_append(m)
        elif m.type == MsgType.HEARTBEAT:
            self.become_follower(m.term, m.frm)
            self._handle_heartbeat(m)
        elif m.type == MsgType.SNAP:
            self.become_follower(m.term, m.frm)
            self._handle_snapshot(m)
        elif m.type == my_resp:
            res = self._poll(m.frm, not m.reject)
            if res == "won":
                if self.role == Role.PRE_CANDIDATE:
                    self.campaign(pre=False, transfer=False)
                else:
                    self.become_leader()
            elif res == "lost":
                self.become_follower(self.term, "")

    def _step_follower(self, m: Message) -> None:
        t = m.type
        if t == MsgType.APP:
            self.election_elapsed = 0
            self.leader = m.frm
            self._handle_append(m)
        elif t == MsgType.HEARTBEAT:
            self.election_elapsed = 0
            self.leader = m.frm
            self._handle_heartbeat(m)
        elif t == MsgType.SNAP:
            self.election_elapsed = 0
            self.leader = m.frm
            self._handle_snapshot(m)
        elif t == MsgType.TIMEOUT_NOW:
            self.hup(transfer=True)
        elif t == MsgType.READ_INDEX:
            if self.leader:
                self.msgs.append(Message(MsgType.READ_INDEX, self.id, self.leader, self.term, self.cfg.group_id,
                                         self.cfg.cluster_id, context=m.context))
        elif t == MsgType.READ_INDEX_RESP:
            self.read_states.append(ReadState(m.index, m.context))

    # -- follower handlers -------------------------------------------------------------------------------------
    def _handle_append(self, m: Message) -> None:
        if m.index < self.log.committed:
            self._send(MsgType.APP_RESP, m.frm, index=self.log.committed)
            return
        expected = m.index + 1
        for e in m.entries:
            if e.index != expected or not e.valid():
                self.dropped_messages += 1  # corrupted or malformed: never append it; the leader will resend
                return
            expected += 1
        last_new = self.log.maybe_append(m.index, m.log_term, m.commit, list(m.entries))
        if last_new is not None:
            self._send(MsgType.APP_RESP, m.frm, index=last_new)
        else:
            hint_index, hint_term = self.log.find_conflict_by_term(min(m.index, self.log.last_index()), m.log_term)
            self._send(MsgType.APP_RESP, m.frm, index=m.index, reject=True, reject_hint=hint_index,
                       log_term=hint_term)

    def _handle_heartbeat(self, m: Message) -> None:
        self.log.commit_to(m.commit)
        self._send(MsgType.HEARTBEAT_RESP, m.frm, context=m.context)

    def _handle_snapshot(self, m: Message) -> None:
        c = m.snapshot
        if c is None:
            return
        if c.offset == 0:
            self._snap_recv = (c.meta, bytearray(c.data))
        elif self._snap_recv is not None and self._snap_recv[0] == c.meta and len(self._snap_recv[1]) == c.offset:
            self._snap_recv[1].extend(c.data)
        else:
            return  # out of order: the leader retries the whole snapshot after a timeout
        if not c.done:
            return
        meta, data = self._snap_recv
        self._snap_recv = None
        if self._restore(Snapshot(meta, bytes(data))):
            self._send(MsgType.APP_RESP, m.frm, index=self.log.last_index())
        else:
            self._send(MsgType.APP_RESP, m.frm, index=self.log.committed)

    def _restore(self, snap: Snapshot) -> bool:
        if snap.meta.index <= self.log.committed:
            return False
        if self.log.match_term(snap.meta.index, snap.meta.term):
            self.log.commit_to(snap.meta.index)  # we already hold that prefix: just fast-forward the commit
            return False
        self.log.restore(snap)
        self._set_conf(snap.meta.conf_state)
        last = self.log.last_index()
        for nid, pr in self.prs.items():
            pr.match, pr.next = (last if nid == self.id else 0), last + 1
        return True

    # -- leader ------------------------------------------------------------------------------------------------
    def append_entries(self, items: list[tuple[EntryType, bytes]]) -> list[Entry]:
        """Stamp, append and replicate new entries (leader only)."""
        ts = max(self.now_ms, self.last_ts)
        self.last_ts = ts
        last = self.log.last_index()
        ents = [Entry(last + 1 + n, self.term, t, d, ts) for n, (t, d) in enumerate(items)]
        last = self.log.append(ents)
        self.prs[self.id].maybe_update(last)
        self.maybe_commit()
        return ents

    def maybe_commit(self) -> bool:
        matches = sorted((self.prs[v].match for v in self.conf.voters if v in self.prs), reverse=True)
        if len(matches) < self.quorum():
            return False
        committed = self.log.maybe_commit(matches[self.quorum() - 1], self.term)
        if committed and self._pending_reads and self._committed_in_term():
            pending, self._pending_reads = self._pending_reads, []
            for msg in pending:
                self._step_leader(msg)
        return committed

    def _committed_in_term(self) -> bool:
        return self.log.term_or_zero(self.log.committed) == self.term

    def bcast_append(self) -> None:
        for nid in sorted(self.prs):
            if nid != self.id:
                self.send_append(nid)

    def bcast_heartbeat(self, ctx: bytes) -> None:
        for nid in sorted(self.prs):
            if nid != self.id:
                pr = self.prs[nid]
                self._send(MsgType.HEARTBEAT, nid, commit=min(pr.match, self.log.committed), context=ctx)

    def send_append(self, to: NodeId, send_if_empty: bool = True) -> bool:
        pr = self.prs[to]
        if pr.is_paused():
            return False
        prev = pr.next - 1
        try:
            prev_term = self.log.term(prev)
            ents = self.log.entries_from(pr.next, self.cfg.max_msg_bytes)
        except (CompactedError, UnavailableError):
            return self._send_snapshot(to, pr)
        if not ents and not send_if_empty:
            return False
        self._send(MsgType.APP, to, index=prev, log_term=prev_term, entries=tuple(ents), commit=self.log.committed)
        pr.sent_entries(ents[-1].index if ents else prev, sum(e.size() for e in ents), len(ents))
        return True

    def _send_snapshot(self, to: NodeId, pr: Progress) -> bool:
        if not pr.recent_active:
            return False  # do not stream a snapshot to a node that may be down
        snap = self.log.snapshot()
        if snap.is_empty():
            raise AssertionError("log compacted without a snapshot")
        pr.become_snapshot(snap.meta.index)
        size = self.cfg.snapshot_chunk_bytes
        data = snap.data
        offsets = list(range(0, len(data), size)) or [0]
        for off in offsets:
            chunk = SnapshotChunk(snap.meta, off, data[off : off + size], off + size >= len(data))
            self._send(MsgType.SNAP, to, snapshot=chunk)
        return True

    def send_timeout_now(self, to: NodeId) -> None:
        self._send(MsgType.TIMEOUT_NOW, to)

    def _step_leader(self, m: Message) -> None:
        t = m.type
        if t == MsgType.READ_INDEX:
            self._leader_read_index(m)
            return
        pr = self.prs.get(m.frm)
        if pr is None:
            return
        if t == MsgType.APP_RESP:
            pr.recent_active = True
            if m.reject:
                hint = m.reject_hint
                if m.log_term > 0:
                    hint, _ = self.log.find_conflict_by_term(m.reject_hint, m.log_term)
                if pr.maybe_decr_to(m.index, hint):
                    if pr.state == ProgressState.REPLICATE:
                        pr.become_probe()
                    self.send_append(m.frm)
                return
            old_paused = pr.is_paused()
            if pr.maybe_update(m.index) or (pr.match == m.index and pr.state == ProgressState.PROBE):
                if pr.state == ProgressState.PROBE:
                    pr.become_replicate()
                elif pr.state == ProgressState.SNAPSHOT and pr.match + 1 >= self.log.first_index():
                    pr.become_probe()
                    pr.become_replicate()
                elif pr.state == ProgressState.REPLICATE:
                    pr.inflights.free_le(m.index)
                if self.maybe_commit():
                    self.bcast_append()
                elif old_paused:
                    self.send_append(m.frm)
                while self.send_append(m.frm, send_if_empty=False):
                    pass
                if m.frm == self.lead_transferee and pr.match == self.log.last_index():
                    self.send_timeout_now(m.frm)
        elif t == MsgType.HEARTBEAT_RESP:
            pr.recent_active = True
            pr.probe_sent = False
            if pr.state == ProgressState.REPLICATE and pr.inflights.full():
                pr.inflights.free_first_one()
            if pr.match < self.log.last_index() or pr.state == ProgressState.PROBE:
                self.send_append(m.frm)
            if m.context:
                self._read_ack(m.frm, int(m.context))

    # -- ReadIndex ---------------------------------------------------------------------------------------------
    def _leader_read_index(self, m: Message) -> None:
        if len(self.conf.voters) == 1 and self.id in self.conf.voters:
            self._deliver_read(_ReadRequest(0, self.log.committed, m.frm, m.context))
            return
        if not self._committed_in_term():
            self._pending_reads.append(m)  # the commit index of a new leader is not yet known to be current
            return
        self._read_round += 1
        self._read_requests.append(_ReadRequest(self._read_round, self.log.committed, m.frm, m.context))
        self.bcast_heartbeat(str(self._read_round).encode())

    def _read_ack(self, frm: NodeId, rnd: int) -> None:
        if frm not in self.conf.voters or not self._read_requests:
            return
        if rnd > self._read_acks.get(frm, 0):
            self._read_acks[frm] = rnd
        acks = sorted((self._read_round if v == self.id else self._read_acks.get(v, 0)
                       for v in self.conf.voters), reverse=True)
        confirmed = acks[self.quorum() - 1]
        while self._read_requests and self._read_requests[0].round <= confirmed:
            self._deliver_read(self._read_requests.pop(0))

    def _deliver_read(self, req: _ReadRequest) -> None:
        if req.frm == self.id:
            self.read_states.append(ReadState(req.index, req.ctx))
        else:
            self._send(MsgType.READ_INDEX_RESP, req.frm, index=req.index, context=req.ctx)

    # -- leadership transfer -----------------------------------------------------------------------------------
    def transfer_leader(self, to: NodeId) -> None:
        pr = self.prs.get(to)
        if pr is None or pr.is_learner or to == self.id or self.lead_transferee == to:
            return
        self.lead_transferee = to
        self.election_elapsed = 0  # the transfer must finish within one election timeout
        if pr.match == self.log.last_index():
            self.send_timeout_now(to)
        else:
            self.send_append(to)

    # -- membership --------------------------------------------------------------------------------------------
    def apply_conf_change(self, cc: ConfChange) -> None:
        """Called when a committed conf change entry is applied: switch to its resulting membership."""
        self._set_conf(cc.result)
        if self.role != Role.LEADER:
            return
        if self.id not in self.conf.voters:
            self.become_follower(self.term, "")  # removed (or demoted): step down; the others elect a leader
            return
        if self.lead_transferee and self.lead_transferee not in self.conf.voters:
            self.lead_transferee = ""
        if self.maybe_commit():
            self.bcast_append()
        else:
            for nid in sorted(self.prs):
                if nid != self.id and self.prs[nid].match == 0 and self.prs[nid].state == ProgressState.PROBE:
                    self.send_append(nid)
