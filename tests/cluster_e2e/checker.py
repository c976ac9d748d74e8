"""The verdict on a run's history: nothing acknowledged lost, nothing invented, FIFO order per group.

A SendMessage counts as acknowledged only when the client got a success. A send that failed may still have been
applied (a 503 after the commit, a timeout), so such messages may be received but need not be. FIFO bodies are
``GROUP:COUNTER`` with the counter increasing per group in send order (one sequential producer per group).

FIFO order per group, over the receipts in the order consumers recorded them (each before its delete):
- receipts never go back: a message may come again (its delete failed, or its receive's answer was lost) but only
  until the next one has been delivered;
- no acknowledged message is skipped: when a message is first received, every acknowledged one before it in its
  group has been received already.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


def fifo_body(group: str, counter: int) -> str:
    return f"{group}:{counter:07d}"


def parse_fifo_body(body: str) -> tuple[str, int]:
    group, _, counter = body.rpartition(":")
    return group, int(counter)


@dataclass(frozen=True, slots=True)
class Verdict:
    lost: dict[str, list[str]] = field(default_factory=dict)  # queue -> acknowledged bodies never received
    phantoms: dict[str, list[str]] = field(default_factory=dict)  # queue -> received bodies never sent
    order: list[str] = field(default_factory=list)  # FIFO order violations, described

    @property
    def ok(self) -> bool:
        return not self.lost and not self.phantoms and not self.order

    def describe(self) -> str:
        parts = []
        for queue, bodies in self.lost.items():
            parts.append(f"{queue}: {len(bodies)} acknowledged messages lost, e.g. {bodies[:5]}")
        for queue, bodies in self.phantoms.items():
            parts.append(f"{queue}: {len(bodies)} received messages never sent, e.g. {bodies[:5]}")
        parts.extend(self.order[:10])
        return "\n".join(parts) or "ok"


def check(sent: Mapping[str, Iterable[str]], acked: Mapping[str, Iterable[str]],
          received: Iterable[tuple[str, str]], fifo_queues: Iterable[str] = ()) -> Verdict:
    """``sent``: every body a client tried to send per queue; ``acked``: those that got a success; ``received``:
    (queue, body) in the order consumers recorded them, the final drain included."""
    sent_sets = {q: set(bodies) for q, bodies in sent.items()}
    receipts = list(received)
    got: dict[str, set[str]] = defaultdict(set)
    for queue, body in receipts:
        got[queue].add(body)
    lost = {q: sorted(set(bodies) - got[q]) for q, bodies in acked.items()}
    phantoms = {q: sorted(bodies - sent_sets.get(q, set())) for q, bodies in got.items()}
    fifo = set(fifo_queues)
    order = _fifo_order([(q, b) for q, b in receipts if q in fifo], {q: acked.get(q, ()) for q in fifo})
    return Verdict({q: b for q, b in lost.items() if b}, {q: b for q, b in phantoms.items() if b}, order)


def _fifo_order(receipts: list[tuple[str, str]], acked: Mapping[str, Iterable[str]]) -> list[str]:
    acked_counters: dict[tuple[str, str], set[int]] = defaultdict(set)
    for queue, bodies in acked.items():
        for body in bodies:
            group, counter = parse_fifo_body(body)
            acked_counters[(queue, group)].add(counter)
    last: dict[tuple[str, str], int] = {}
    seen: dict[tuple[str, str], set[int]] = defaultdict(set)
    problems = []
    for queue, body in receipts:
        group, counter = parse_fifo_body(body)
        key = (queue, group)
        previous = last.get(key)
        if previous is not None and counter < previous:
            problems.append(f"{queue} group {group}: received {counter} after {previous}")
        if counter not in seen[key]:
            skipped = sorted(c for c in acked_counters[key] if c < counter and c not in seen[key])
            if skipped:
                problems.append(f"{queue} group {group}: received {counter} before acknowledged {skipped[:5]}")
            seen[key].add(counter)
        last[key] = max(counter, previous if previous is not None else counter)
    return problems
