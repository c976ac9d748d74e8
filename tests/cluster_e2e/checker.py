"""The verdict on a run's history: nothing acknowledged lost, nothing invented, FIFO order per group.

A SendMessage counts as acknowledged only when the client got a success. A send that failed may still have been
applied (a 503 after the commit, a timeout), so such messages may be received but need not be. FIFO bodies are
``GROUP:COUNTER`` with the counter increasing per group in send order (one sequential producer per group).

FIFO order per group is judged on when receives happened. Each receipt carries the client's clock when the
ReceiveMessage call started and when its answer arrived; the server handed the message out somewhere in between.
An answer can arrive very late (the node froze after the receive was committed), after the message's visibility
expired and later ones were delivered to someone else, so only orders the intervals prove are violations:
- going back: a message received by a call that started after a call that received a LATER message of its group
  had returned (the earlier message was still there, so the later one was handed out too soon);
- skipping: a call that returned a message had finished before the first call that received an earlier,
  acknowledged message of its group even started.
"""

from __future__ import annotations

import bisect
import itertools
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


def fifo_body(group: str, counter: int) -> str:
    return f"{group}:{counter:07d}"


def parse_fifo_body(body: str) -> tuple[str, int]:
    group, _, counter = body.rpartition(":")
    return group, int(counter)


@dataclass(frozen=True, slots=True)
class Receipt:
    """One message as a consumer got it: ``started``/``ended`` bracket the ReceiveMessage call (monotonic clock)."""

    queue: str
    body: str
    started: float
    ended: float
    via: str = ""  # the endpoint that answered: names the node in a violation report


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


def check(sent: Mapping[str, Iterable[str]], acked: Mapping[str, Iterable[str]], received: Iterable[Receipt],
          fifo_queues: Iterable[str] = ()) -> Verdict:
    """``sent``: every body a client tried to send per queue; ``acked``: those that got a success; ``received``:
    every receipt, the final drain included."""
    sent_sets = {q: set(bodies) for q, bodies in sent.items()}
    receipts = list(received)
    got: dict[str, set[str]] = defaultdict(set)
    for r in receipts:
        got[r.queue].add(r.body)
    lost = {q: sorted(set(bodies) - got[q]) for q, bodies in acked.items()}
    phantoms = {q: sorted(bodies - sent_sets.get(q, set())) for q, bodies in got.items()}
    fifo = set(fifo_queues)
    groups: dict[tuple[str, str], list[tuple[int, Receipt]]] = defaultdict(list)
    for r in receipts:
        if r.queue in fifo:
            group, counter = parse_fifo_body(r.body)
            groups[(r.queue, group)].append((counter, r))
    acked_counters: dict[tuple[str, str], set[int]] = defaultdict(set)
    for queue in fifo:
        for body in acked.get(queue, ()):
            group, counter = parse_fifo_body(body)
            acked_counters[(queue, group)].add(counter)
    order = []
    for key in sorted(groups):
        order.extend(_group_order(key, groups[key], acked_counters[key]))
    return Verdict({q: b for q, b in lost.items() if b}, {q: b for q, b in phantoms.items() if b}, order)


def _later_counter(a: tuple[int, Receipt], b: tuple[int, Receipt]) -> tuple[int, Receipt]:
    return b if b[0] > a[0] else a


def _group_order(key: tuple[str, str], receipts: list[tuple[int, Receipt]], acked: set[int]) -> list[str]:
    queue, group = key
    problems = []
    by_end = sorted(receipts, key=lambda cr: cr[1].ended)
    ends = [r.ended for _, r in by_end]
    highest_so_far: list[tuple[int, Receipt]] = list(itertools.accumulate(by_end, _later_counter))
    # Every call that handed out each counter, by start time: a whole suffix handed out again (its delete failed or
    # never happened, the visibility timeout expired) is FIFO's at-least-once redelivery, not a regression.
    starts: dict[int, list[float]] = defaultdict(list)
    for counter, r in receipts:
        starts[counter].append(r.started)
    for counter, r in receipts:
        done_before = bisect.bisect_left(ends, r.started)  # receipts whose call returned before this one started
        if done_before and highest_so_far[done_before - 1][0] > counter:
            high, earlier = highest_so_far[done_before - 1]
            if any(started >= r.started for started in starts[high]):
                continue  # ``high`` was handed out again too, with or after ``counter``: a redelivered suffix
            problems.append(f"{queue} group {group}: received {counter} after {high} had been received"
                            + (f" (via {r.via} at {r.started:.2f}-{r.ended:.2f}; {high} via {earlier.via} at "
                               f"{earlier.started:.2f}-{earlier.ended:.2f})" if r.via else ""))
    first_start: dict[int, float] = {}
    for counter, r in receipts:
        first_start[counter] = min(first_start.get(counter, r.started), r.started)
    for counter, r in receipts:
        skipped = sorted(k for k in acked if k < counter and k in first_start and first_start[k] > r.ended)
        if skipped:
            problems.append(f"{queue} group {group}: received {counter} before acknowledged {skipped[:5]}")
    return problems
