"""Errors the Raft core raises to its caller (the runtime maps them to ``cluster.api.NotLeader`` etc.)."""

from __future__ import annotations


class ProposalDropped(Exception):
    """The core did not accept a proposal, read or transfer; ``leader_hint`` names the leader if known.

    ``reason`` is one of: "not leader", "transfer in progress", "conf change pending", "invalid conf change",
    "learner not caught up", "removed".
    """

    def __init__(self, reason: str, leader_hint: str = "") -> None:
        super().__init__(f"{reason} (leader: {leader_hint or 'unknown'})")
        self.reason = reason
        self.leader_hint = leader_hint
