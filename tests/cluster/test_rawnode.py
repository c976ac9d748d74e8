"""RawNode's contract with the runtime: what it refuses, what Ready holds, timestamps, restarts."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from cluster.core import (
    ConfChangeOp,
    Config,
    ConfState,
    Entry,
    EntryType,
    MemoryStorage,
    Message,
    MsgType,
    ProposalDropped,
    RawNode,
    Ready,
    Role,
)
from tests.cluster.interaction import Interaction


def persist(storage: MemoryStorage, rd: Ready) -> None:
    if rd.snapshot is not None:
        storage.apply_snapshot(rd.snapshot)
    storage.append(rd.entries)
    if rd.hard_state is not None:
        storage.set_hard_state(rd.hard_state)


def single(config: Config | None = None) -> tuple[RawNode, MemoryStorage]:
    s = MemoryStorage(ConfState(frozenset({"n1"})))
    node = RawNode(config or Config("n1"), s, random.Random(1))
    node.campaign()
    drain(node, s)
    return node, s


def drain(node: RawNode, s: MemoryStorage) -> list[Ready]:
    out = []
    while node.has_ready():
        rd = node.ready()
        persist(s, rd)
        node.advance(rd)
        out.append(rd)
    return out


def test_config_is_validated() -> None:
    with pytest.raises(ValueError):
        Config("")
    with pytest.raises(ValueError):
        Config("n1", election_tick=2, heartbeat_tick=2)


def test_single_voter_elects_itself_and_commits_alone() -> None:
    node, s = single()
    assert node.status().role == Role.LEADER
    idx, term = node.propose(b"a", now_ms=5)
    rds = drain(node, s)
    committed = [e for rd in rds for e in rd.committed_entries]
    assert [(e.index, e.term, e.data) for e in committed] == [(idx, term, b"a")]
    assert node.status().applied == idx


def test_follower_refuses_proposals_with_leader_hint() -> None:
    env = Interaction()
    for cmd in ["add-nodes 3 voters=n1,n2,n3", "campaign n1", "stabilize"]:
        env.run(cmd)
    raw = env.nodes["n2"].raw
    assert raw is not None
    with pytest.raises(ProposalDropped) as e:
        raw.propose(b"x")
    assert e.value.reason == "not leader" and e.value.leader_hint == "n1"
    with pytest.raises(ProposalDropped):
        raw.transfer_leader("n3")


def test_leader_stamps_entries_monotonically() -> None:
    node, s = single()
    node.propose(b"a", now_ms=100)
    node.propose(b"b", now_ms=50)  # the clock stepped back: ts must not
    node.propose_batch([b"c", b"d"], now_ms=200)
    ents = [e for rd in drain(node, s) for e in rd.committed_entries]
    assert [e.ts for e in ents] == [100, 100, 200, 200]
    assert all(e.valid() for e in ents)


def test_ready_messages_only_after_entries_are_handed_out() -> None:
    """The leader's append and its messages come in one Ready: the runtime persists, then sends."""
    env = Interaction()
    for cmd in ["add-nodes 3 voters=n1,n2,n3", "campaign n1", "stabilize"]:
        env.run(cmd)
    raw = env.nodes["n1"].raw
    assert raw is not None
    idx, _ = raw.propose(b"x")
    rd = raw.ready()
    assert [e.index for e in rd.entries] == [idx]
    assert rd.must_sync
    assert all(m.type == MsgType.APP and m.entries[-1].index == idx for m in rd.messages)
    assert not rd.committed_entries  # not committed before followers acknowledge


def test_a_leaders_appends_may_leave_before_its_write_but_the_commit_only_after() -> None:
    """Followers write in parallel with the leader; an entry committed by their acks alone while the leader is still
    writing it surfaces (as committed entries, and as a commit index in messages) only in a later Ready."""
    env = Interaction()
    for cmd in ["add-nodes 3 voters=n1,n2,n3", "campaign n1", "stabilize"]:
        env.run(cmd)
    nodes = {nid: (env.nodes[nid].raw, env.nodes[nid].storage) for nid in ("n1", "n2", "n3")}
    leader, leader_storage = nodes["n1"]
    assert leader is not None
    idx, _ = leader.propose(b"x")
    rd = leader.ready()
    assert rd.send_before_persist and rd.must_sync and [e.index for e in rd.entries] == [idx]
    acks = []
    for nid in ("n2", "n3"):  # the appends reach the followers while the leader's write is under way
        follower, storage = nodes[nid]
        assert follower is not None
        for m in rd.messages:
            if m.to == nid:
                follower.step(m)
        frd = follower.ready()
        assert not frd.send_before_persist  # a follower acknowledges only what it has written
        persist(storage, frd)
        acks.extend(frd.messages)
        follower.advance(frd)
    for m in acks:
        leader.step(m)  # both acks arrive before the leader's own write has finished
    persist(leader_storage, rd)
    leader.advance(rd)
    assert not rd.committed_entries
    later = leader.ready()
    assert [e.index for e in later.committed_entries] == [idx]
    announced = [m for m in later.messages if m.type in (MsgType.APP, MsgType.HEARTBEAT)]
    assert {m.to for m in announced} == {"n2", "n3"} and all(m.commit >= idx for m in announced)


def test_vote_changes_are_written_before_any_message_leaves() -> None:
    env = Interaction()
    for cmd in ["add-nodes 3 voters=n1,n2,n3 prevote=false", "campaign n1", "stabilize"]:
        env.run(cmd)
    candidate = env.nodes["n2"].raw
    assert candidate is not None
    candidate.campaign()
    rd = candidate.ready()
    assert rd.messages and rd.must_sync and not rd.send_before_persist  # its new term and its vote go first


def test_conf_change_rules() -> None:
    node, s = single()
    with pytest.raises(ProposalDropped, match="invalid conf change"):
        node.propose_conf_change(ConfChangeOp.REMOVE, "n9")
    with pytest.raises(ProposalDropped, match="invalid conf change"):
        node.propose_conf_change(ConfChangeOp.PROMOTE, "n9")
    with pytest.raises(ProposalDropped, match="invalid conf change"):
        node.propose_conf_change(ConfChangeOp.REMOVE, "n1")  # the last voter
    node.propose_conf_change(ConfChangeOp.ADD_LEARNER, "n2")
    with pytest.raises(ProposalDropped, match="conf change pending"):
        node.propose_conf_change(ConfChangeOp.ADD_LEARNER, "n3")
    drain(node, s)
    assert node.conf_state == ConfState(frozenset({"n1"}), frozenset({"n2"}))
    with pytest.raises(ProposalDropped, match="learner not caught up"):
        node.propose_conf_change(ConfChangeOp.PROMOTE, "n2")


def test_messages_from_another_cluster_group_or_addressee_are_refused() -> None:
    node, _ = single(Config("n1", cluster_id="c2", group_id=7))
    term = node.status().term
    for cid, gid, to in [("c1", 7, "n1"), ("c2", 8, "n1"), ("c2", 7, "n3")]:
        node.step(Message(MsgType.APP, "n2", to, term=term + 3, cluster_id=cid, group_id=gid))
    assert node.rejected_messages == 3
    assert node.status().term == term and node.status().role == Role.LEADER


def test_corrupted_entry_is_not_appended() -> None:
    s = MemoryStorage(ConfState(frozenset({"n1", "n2"})))
    node = RawNode(Config("n2"), s, random.Random(1))
    node.step(Message(MsgType.HEARTBEAT, "n1", "n2", term=1))
    drain(node, s)
    good = Entry(1, 1, EntryType.NORMAL, b"abc", 1)
    bad = replace(good, data=b"abd")
    node.step(Message(MsgType.APP, "n1", "n2", term=1, entries=(bad,)))
    assert node.raft.log.last_index() == 0 and node.raft.dropped_messages == 1
    node.step(Message(MsgType.APP, "n1", "n2", term=1, entries=(good,)))
    assert node.raft.log.last_index() == 1


def test_restart_replays_committed_entries_and_membership() -> None:
    node, s = single()
    node.propose_conf_change(ConfChangeOp.ADD_LEARNER, "n2")
    node.propose_batch([b"a", b"b"])  # would fail if the pending change blocked data: it must not
    drain(node, s)
    again = RawNode(Config("n1"), s, random.Random(2))
    rd = again.ready()
    assert [e.data for e in rd.committed_entries if e.type == EntryType.NORMAL] == [b"a", b"b"]
    again.advance(rd)
    assert again.conf_state.learners == frozenset({"n2"})
    # With ``applied`` given, already applied entries are not handed out again, yet the membership is restored.
    third = RawNode(Config("n1", applied=s.last_index()), s, random.Random(3))
    assert third.conf_state.learners == frozenset({"n2"})
    assert not third.ready().committed_entries


def test_read_index_without_a_leader_is_refused() -> None:
    s = MemoryStorage(ConfState(frozenset({"n1", "n2", "n3"})))
    node = RawNode(Config("n1"), s, random.Random(1))
    with pytest.raises(ProposalDropped):
        node.read_index(b"r")


def test_single_voter_read_index_is_immediate() -> None:
    node, _ = single()
    node.read_index(b"r1")
    rd = node.ready()
    assert [(r.index, r.ctx) for r in rd.read_states] == [(node.status().commit, b"r1")]
