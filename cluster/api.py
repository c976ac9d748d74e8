"""What the replication layer offers the product, and what it needs from it.

``cluster/`` replicates opaque commands (bytes). The product supplies a ``StateMachine``; the replication layer
(a single-node local log now, Raft next) supplies a ``Replicator``. Swapping one replicator for another touches
neither the model nor the front ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from storage.changes import ChangeSink, TableReader


@dataclass(frozen=True, slots=True)
class EntryMeta:
    index: int  # log index of the entry (1-based, unique, increasing)
    term: int
    ts: int  # the leader's wall clock in ms when it appended the entry, made monotonic
    # False: nobody awaits this entry's reply (a follower applying the leader's proposals, a replay), so apply may
    # skip building it. The state it reaches must not depend on this.
    reply: bool = True


class StateMachine(Protocol):
    def apply(self, meta: EntryMeta, data: bytes, changes: ChangeSink) -> object:
        """Apply one committed command; return the reply for the proposer (an exception instance for a failure).

        Must be deterministic: the same entries give the same state and replies on every node.
        """
        ...

    def after_durable(self) -> None:
        """Called on the event loop once the batch just applied is durable: carry out deferred local effects."""
        ...

    def restore(self, reader: TableReader) -> None:
        """Rebuild in-memory state from the persisted tables (start-up, snapshot install)."""
        ...

    def dirty_rows(self) -> int:
        """Rows the state machine holds back for the next checkpoint instead of recording them as they change."""
        ...

    def flush_rows(self, changes: ChangeSink) -> int:
        """A checkpoint of the state applied so far is being taken: record the held-back rows in ``changes``;
        return how many rows were created and removed again since the last checkpoint without being written."""
        ...


class NotLeader(Exception):
    """This node cannot accept proposals right now; ``leader_hint`` names the node that may."""

    def __init__(self, leader_hint: str | None = None) -> None:
        super().__init__(f"not leader (leader: {leader_hint})")
        self.leader_hint = leader_hint


class Replicator(Protocol):
    async def propose_and_wait(self, data: bytes) -> object:
        """Replicate ``data``; resolve with the state machine's reply once it is durable on a majority and applied."""
        ...

    async def read_barrier(self) -> None:
        """Return once local state reflects every write acknowledged before the call (ReadIndex)."""
        ...

    def now_ms(self) -> int:
        """The leader clock as the state machine sees it (monotonic, never behind the last entry's ts)."""
        ...
