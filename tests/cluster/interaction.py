"""A small command interpreter that drives Raft cores by hand, for the scenario files in ``testdata/``.

Modelled on etcd-io/raft's ``rafttest`` interaction environment: every node's messages wait in a queue until a
``deliver-msgs`` (or ``stabilize``) delivers them, so a script controls exactly which message arrives when.

A script is a sequence of blocks separated by blank lines::

    # comment lines are kept as they are
    command arg key=value ...
    ----
    expected output (``ok`` when a command prints nothing)

Commands: add-nodes, campaign, tick, tick-election, tick-heartbeat, propose, propose-conf-change, process-ready,
deliver-msgs, drop-msgs, stabilize, partition, heal, crash, restart, snapshot, compact, transfer-leader, read-index,
status, raft-log, raft-state, corrupt-next-msg, send-foreign.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace

from cluster.core import (
    ConfChange,
    ConfChangeOp,
    Config,
    ConfState,
    EntryType,
    MemoryStorage,
    Message,
    MsgType,
    ProposalDropped,
    RawNode,
    Ready,
    Role,
)
from cluster.core.types import Entry


@dataclass(slots=True)
class _Node:
    id: str
    storage: MemoryStorage
    config: Config
    raw: RawNode | None
    applied: list[str] = field(default_factory=list)


def _fmt_entry(e: Entry) -> str:
    if e.type == EntryType.EMPTY:
        return f"{e.term}/{e.index} empty"
    if e.type == EntryType.CONF_CHANGE:
        return f"{e.term}/{e.index} conf({ConfChange.decode(e.data)})"
    return f"{e.term}/{e.index} {e.data.decode(errors='replace')}"


class Interaction:
    def __init__(self) -> None:
        self.nodes: dict[str, _Node] = {}
        self.queue: list[Message] = []  # sent, not yet delivered
        self.blocked: set[tuple[str, str]] = set()
        self.now_ms = 1000
        self._corrupt_next = False

    # -- dispatch ----------------------------------------------------------------------------------------------
    def run(self, line: str) -> str:
        parts = line.split()
        cmd, args = parts[0], parts[1:]
        pos = [a for a in args if "=" not in a]
        kw = dict(a.split("=", 1) for a in args if "=" in a)
        out: list[str] = []
        getattr(self, "cmd_" + cmd.replace("-", "_"))(out, pos, kw)
        return "\n".join(out) if out else "ok"

    def _raw(self, nid: str) -> RawNode:
        raw = self.nodes[nid].raw
        if raw is None:
            raise ValueError(f"{nid} is crashed")
        return raw

    # -- setup -------------------------------------------------------------------------------------------------
    def cmd_add_nodes(self, out: list[str], pos: list[str], kw: dict[str, str]) -> None:
        n = int(pos[0])
        voters = frozenset(kw["voters"].split(",")) if "voters" in kw else frozenset()
        learners = frozenset(kw["learners"].split(",")) if "learners" in kw else frozenset()
        start = len(self.nodes)
        for i in range(start, start + n):
            nid = f"n{i + 1}"
            cfg = Config(
                nid,
                cluster_id=kw.get("cluster", "c1"),
                election_tick=int(kw.get("election", 10)),
                heartbeat_tick=int(kw.get("heartbeat", 1)),
                pre_vote=kw.get("prevote", "true") == "true",
                check_quorum=kw.get("checkquorum", "true") == "true",
                snapshot_chunk_bytes=int(kw.get("snapchunk", 1 << 20)),
                max_inflight_msgs=int(kw.get("inflight", 256)),
                max_msg_bytes=int(kw.get("maxmsg", 1 << 20)),
            )
            storage = MemoryStorage(ConfState(voters, learners))
            self.nodes[nid] = _Node(nid, storage, cfg, RawNode(cfg, storage, random.Random(i)))
            out.append(f"{nid}: voters={_ids(voters)} learners={_ids(learners)}")

    # -- inputs ------------------------------------------------------------------------------------------------
    def cmd_campaign(self, out: list[str], pos: list[str], kw: dict[str, str]) -> None:
        self._raw(pos[0]).campaign()

    def cmd_tick(self, out: list[str], pos: list[str], kw: dict[str, str]) -> None:
        raw = self._raw(pos[0])
        for _ in range(int(pos[1]) if len(pos) > 1 else 1):
            self.now_ms += 10
            raw.tick(self.now_ms)

    def cmd_tick_election(self, out: list[str], pos: list[str], kw: dict[str, str]) -> None:
        """Tick until the node's (randomized) election timeout fires: election_tick * 2 ticks at most."""
        raw = self._raw(pos[0])
        for _ in range(raw.raft.cfg.election_tick * 2):
            self.now_ms += 10
            raw.tick(self.now_ms)

    def cmd_tick_heartbeat(self, out: list[str], pos: list[str], kw: dict[str, str]) -> None:
        raw = self._raw(pos[0])
        for _ in range(raw.raft.cfg.heartbeat_tick):
            self.now_ms += 10
            raw.tick(self.now_ms)

    def cmd_propose(self, out: list[str], pos: list[str], kw: dict[str, str]) -> None:
        try:
            index, term = self._raw(pos[0]).propose(pos[1].encode(), now_ms=self.now_ms)
            out.append(f"proposed {term}/{index}")
        except ProposalDropped as e:
            out.append(f"dropped: {e}")

    def cmd_propose_conf_change(self, out: list[str], pos: list[str], kw: dict[str, str]) -> None:
        op = ConfChangeOp[pos[1].upper().replace("-", "_")]
        try:
            index, term = self._raw(pos[0]).propose_conf_change(op, pos[2], now_ms=self.now_ms)
            out.append(f"proposed {term}/{index}")
        except ProposalDropped as e:
            out.append(f"dropped: {e}")

    def cmd_transfer_leader(self, out: list[str], pos: list[str], kw: dict[str, str]) -> None:
        try:
            self._raw(pos[0]).transfer_leader(pos[1])
        except ProposalDropped as e:
            out.append(f"dropped: {e}")

    def cmd_read_index(self, out: list[str], pos: list[str], kw: dict[str, str]) -> None:
        try:
            self._raw(pos[0]).read_index(pos[1].encode())
        except ProposalDropped as e:
            out.append(f"dropped: {e}")

    # -- the runtime's job -------------------------------------------------------------------------------------
    def cmd_process_ready(self, out: list[str], pos: list[str], kw: dict[str, str]) -> None:
        for nid in pos or sorted(self.nodes):
            self._process(nid, out)

    def _process(self, nid: str, out: list[str]) -> bool:
        node = self.nodes[nid]
        raw = node.raw
        if raw is None or not raw.has_ready():
            return False
        rd = raw.ready()
        out.append(f"> {nid} handling Ready")
        out.extend("  " + line for line in _fmt_ready(rd))
        s = node.storage
        if rd.snapshot is not None:
            s.apply_snapshot(rd.snapshot)
            node.applied = rd.snapshot.data.decode().split(",") if rd.snapshot.data else []
        s.append(rd.entries)
        if rd.hard_state is not None:
            s.set_hard_state(rd.hard_state)
        # A message to a crashed node is lost (nobody listens); one to a live node waits for deliver-msgs.
        self.queue.extend(m for m in rd.messages if m.to not in self.nodes or self.nodes[m.to].raw is not None)
        node.applied.extend(e.data.decode() for e in rd.committed_entries if e.type == EntryType.NORMAL)
        raw.advance(rd)
        return True

    def cmd_deliver_msgs(self, out: list[str], pos: list[str], kw: dict[str, str]) -> None:
        self._deliver(set(pos) or set(self.nodes), out, drop=kw.get("drop") == "true")

    def cmd_drop_msgs(self, out: list[str], pos: list[str], kw: dict[str, str]) -> None:
        self._deliver(set(pos) or set(self.nodes), out, drop=True)

    def _deliver(self, to: set[str], out: list[str], drop: bool = False) -> bool:
        mine = [m for m in self.queue if m.to in to]
        self.queue = [m for m in self.queue if m.to not in to]
        for m in mine:
            node = self.nodes.get(m.to)
            if drop or (m.frm, m.to) in self.blocked or node is None or node.raw is None:
                out.append(f"{m.brief()} DROPPED")
                continue
            out.append(m.brief())
            if self._corrupt_next and m.entries:
                self._corrupt_next = False
                bad = replace(m.entries[-1], data=m.entries[-1].data + b"!")
                m = replace(m, entries=(*m.entries[:-1], bad))
                out.append("  (last entry corrupted in transit)")
            node.raw.step(m)
        return bool(mine)

    def cmd_stabilize(self, out: list[str], pos: list[str], kw: dict[str, str]) -> None:
        ids = set(pos) or set(self.nodes)
        for _ in range(100):
            busy = False
            for nid in sorted(ids):
                busy |= self._process(nid, out)
            busy |= self._deliver(ids, out)
            if not busy:
                return
        raise AssertionError("stabilize did not settle")

    def cmd_corrupt_next_msg(self, out: list[str], pos: list[str], kw: dict[str, str]) -> None:
        """Garble the last entry of the next delivered append (its checksum no longer matches)."""
        self._corrupt_next = True

    def cmd_send_foreign(self, out: list[str], pos: list[str], kw: dict[str, str]) -> None:
        """Deliver a heartbeat with a higher term from another cluster id: it must be refused."""
        raw = self._raw(pos[0])
        m = Message(MsgType.HEARTBEAT, "x9", pos[0], term=raw.raft.term + 5, cluster_id=kw.get("cluster", "other"))
        raw.step(m)
        out.append(f"rejected={raw.rejected_messages} term={raw.raft.term}")

    # -- faults ------------------------------------------------------------------------------------------------
    def cmd_partition(self, out: list[str], pos: list[str], kw: dict[str, str]) -> None:
        """``partition n1 n2 / n3``: no message crosses between the two groups (``one-way=true``: left to right)."""
        i = pos.index("/")
        left, right = pos[:i], pos[i + 1 :]
        for a in left:
            for b in right:
                self.blocked.add((a, b))
                if kw.get("one-way") != "true":
                    self.blocked.add((b, a))

    def cmd_heal(self, out: list[str], pos: list[str], kw: dict[str, str]) -> None:
        self.blocked.clear()

    def cmd_crash(self, out: list[str], pos: list[str], kw: dict[str, str]) -> None:
        node = self.nodes[pos[0]]
        node.raw = None
        node.applied = []
        self.queue = [m for m in self.queue if pos[0] not in (m.frm, m.to)]  # in flight to/from a dead process

    def cmd_restart(self, out: list[str], pos: list[str], kw: dict[str, str]) -> None:
        node = self.nodes[pos[0]]
        snap = node.storage.snapshot()
        node.applied = snap.data.decode().split(",") if snap.data else []
        node.raw = RawNode(node.config, node.storage, random.Random(len(node.id)))
        out.append(_fmt_status(node.raw))

    def cmd_snapshot(self, out: list[str], pos: list[str], kw: dict[str, str]) -> None:
        """``snapshot n1``: record the state machine (its applied payloads) at the applied index."""
        node = self.nodes[pos[0]]
        raw = self._raw(pos[0])
        snap = node.storage.create_snapshot(raw.raft.log.applied, raw.conf_state, ",".join(node.applied).encode())
        out.append(f"snapshot {snap.meta.term}/{snap.meta.index} data={snap.data.decode()}")

    def cmd_compact(self, out: list[str], pos: list[str], kw: dict[str, str]) -> None:
        """``compact n1 I``: discard the log up to ``I`` (which a snapshot must cover)."""
        node = self.nodes[pos[0]]
        node.storage.compact(int(pos[1]))
        out.append(f"log now {node.storage.first_index()}..{node.storage.last_index()}")

    # -- observation -------------------------------------------------------------------------------------------
    def cmd_status(self, out: list[str], pos: list[str], kw: dict[str, str]) -> None:
        out.append(_fmt_status(self._raw(pos[0])))
        st = self._raw(pos[0]).status()
        for nid, p in sorted(st.progress.items()):
            out.append(f"  {nid}: {p.state.value} match={p.match} next={p.next}{' learner' if p.learner else ''}")

    def cmd_raft_log(self, out: list[str], pos: list[str], kw: dict[str, str]) -> None:
        s = self.nodes[pos[0]].storage
        ents = s.entries(s.first_index(), s.last_index() + 1)
        out.extend(_fmt_entry(e) for e in ents)
        if not ents:
            out.append(f"log empty (snapshot at {s.snapshot().meta.index})")

    def cmd_raft_state(self, out: list[str], pos: list[str], kw: dict[str, str]) -> None:
        for nid in sorted(self.nodes):
            raw = self.nodes[nid].raw
            out.append(f"{nid}: crashed" if raw is None else _fmt_status(raw))

    def cmd_applied(self, out: list[str], pos: list[str], kw: dict[str, str]) -> None:
        for nid in pos or sorted(self.nodes):
            out.append(f"{nid}: {' '.join(self.nodes[nid].applied) or '-'}")


def _ids(s: frozenset[str]) -> str:
    return ",".join(sorted(s)) or "-"


def _fmt_status(raw: RawNode) -> str:
    st = raw.status()
    role = st.role.value
    lead = st.leader or "-"
    return (f"{st.id}: {role} term={st.term} vote={st.vote or '-'} lead={lead} commit={st.commit} "
            f"applied={st.applied} last={st.last_index} voters={_ids(st.conf_state.voters)} "
            f"learners={_ids(st.conf_state.learners)}")


def _fmt_ready(rd: Ready) -> list[str]:
    lines: list[str] = []
    if rd.soft_state is not None:
        role = rd.soft_state.role
        lines.append(f"State: {role.value}" + (f" (leader {rd.soft_state.leader})"
                                                 if rd.soft_state.leader and role != Role.LEADER else ""))
    if rd.hard_state is not None:
        hs = rd.hard_state
        lines.append(f"HardState term={hs.term} vote={hs.vote or '-'} commit={hs.commit}")
    if rd.snapshot is not None:
        m = rd.snapshot.meta
        lines.append(f"Snapshot {m.term}/{m.index} voters={_ids(m.conf_state.voters)} "
                     f"learners={_ids(m.conf_state.learners)} data={rd.snapshot.data.decode()}")
    if rd.entries:
        lines.append("Entries: " + ", ".join(_fmt_entry(e) for e in rd.entries))
    if rd.committed_entries:
        lines.append("Committed: " + ", ".join(_fmt_entry(e) for e in rd.committed_entries))
    if rd.read_states:
        lines.append("ReadStates: " + ", ".join(f"{r.ctx.decode()}@{r.index}" for r in rd.read_states))
    lines.extend("Send " + m.brief() for m in rd.messages)
    return lines


def run_script(text: str) -> str:
    """Run a scenario file and return it with every expected output replaced by the actual one."""
    env = Interaction()
    blocks = text.strip("\n").split("\n\n")
    result: list[str] = []
    for block in blocks:
        lines = block.split("\n")
        comments = [ln for ln in lines if ln.startswith("#")]
        body = [ln for ln in lines if not ln.startswith("#")]
        if not body:
            result.append("\n".join(comments))
            continue
        cmd = body[0]
        try:
            actual = env.run(cmd)
        except Exception as exc:  # a failing command is part of the output, so a regression shows in the diff
            actual = f"error: {type(exc).__name__}: {exc}"
        result.append("\n".join([*comments, cmd, "----", actual]))
    return "\n\n".join(result) + "\n"
