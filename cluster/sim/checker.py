"""Raft's safety properties, checked incrementally as the simulation runs (each check is O(change), not O(log)).

- Election safety: at most one leader per term.
- Log matching: an (index, term) pair always names the same entry with the same predecessor term.
- Leader completeness: a new leader holds the highest entry anyone has seen committed.
- State machine safety: every node that applied index i has the same state-machine digest at i.
- Commit index never goes back (within a node's life; after a restart it is reloaded from disk).
- Acknowledged proposals are durable on a majority when acknowledged.
- Read index: a confirmed read point covers every write acknowledged before the read was requested.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cluster.core.types import Entry


@dataclass(slots=True)
class Checker:
    violations: list[str] = field(default_factory=list)
    leaders: dict[int, str] = field(default_factory=dict)  # term -> leader
    entries: dict[tuple[int, int], tuple[int, int]] = field(default_factory=dict)  # (index, term) -> (crc, prev term)
    digests: dict[int, int] = field(default_factory=dict)  # applied index -> state machine digest
    committed_by_term: dict[int, int] = field(default_factory=dict)  # entry term -> highest committed index

    def fail(self, what: str) -> None:
        if len(self.violations) < 20:
            self.violations.append(what)

    def leader(self, term: int, node: str) -> None:
        prev = self.leaders.setdefault(term, node)
        if prev != node:
            self.fail(f"two leaders in term {term}: {prev} and {node}")

    def persisted(self, node: str, entries: list[Entry], prev_term: int | None) -> None:
        for e in entries:
            key = (e.index, e.term)
            val = (e.crc, prev_term if prev_term is not None else -1)
            old = self.entries.get(key)
            if old is None:
                self.entries[key] = val
            elif old[0] != val[0] or (old[1] != val[1] and -1 not in (old[1], val[1])):
                self.fail(f"log matching: {node} has a different entry at {e.index}/{e.term}")
            prev_term = e.term

    def applied(self, node: str, index: int, digest: int) -> None:
        old = self.digests.setdefault(index, digest)
        if old != digest:
            self.fail(f"state machine safety: {node} diverges at index {index}")

    def commit(self, index: int, term: int) -> None:
        if index > self.committed_by_term.get(term, 0):
            self.committed_by_term[term] = index

    def new_leader(self, node: str, term: int, term_at: dict[int, int | None], snap_index: int) -> None:
        """A leader of ``term`` must hold the highest entry committed in an earlier term (not a later one: a slow
        election may complete after a newer leader already committed)."""
        earlier = [t for t in self.committed_by_term if t < term]
        if not earlier:
            return
        t = max(earlier)
        idx = self.committed_by_term[t]
        if idx <= snap_index:
            return
        if term_at.get(idx) != t:
            self.fail(f"leader completeness: {node} (term {term}) lacks committed entry {idx}/{t}")

    def last_committed_before(self, term: int) -> int:
        earlier = [t for t in self.committed_by_term if t < term]
        return self.committed_by_term[max(earlier)] if earlier else 0
