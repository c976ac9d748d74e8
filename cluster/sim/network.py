"""A simulated network: per-message delay (hence reordering), drops, duplicates, one-way and full partitions."""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass

from cluster.core.messages import Message


@dataclass(slots=True)
class NetParams:
    drop: float = 0.0
    dup: float = 0.0
    max_delay: int = 1  # ticks; 0 means delivered within the same tick


class SimNetwork:
    def __init__(self, rng: random.Random, params: NetParams) -> None:
        self.rng = rng
        self.params = params
        self.faults = True
        self._q: list[tuple[int, int, Message]] = []
        self._seq = 0
        self.blocked: set[tuple[str, str]] = set()  # (from, to) pairs that cannot deliver

    def send(self, now: int, m: Message) -> None:
        p, rng = self.params, self.rng
        copies = 1
        if self.faults:
            if rng.random() < p.drop:
                return
            if rng.random() < p.dup:
                copies = 2
        for _ in range(copies):
            delay = rng.randint(0, p.max_delay) if self.faults else min(1, p.max_delay)
            self._seq += 1
            heapq.heappush(self._q, (now + delay, self._seq, m))

    def due(self, now: int) -> list[Message]:
        out = []
        while self._q and self._q[0][0] <= now:
            m = heapq.heappop(self._q)[2]
            if (m.frm, m.to) not in self.blocked:
                out.append(m)
        return out

    def due_for(self, now: int, nid: str) -> list[Message]:
        """Pop only the due messages addressed to ``nid`` (the others stay queued)."""
        mine = [item for item in self._q if item[0] <= now and item[2].to == nid]
        if not mine:
            return []
        self._q = [item for item in self._q if not (item[0] <= now and item[2].to == nid)]
        heapq.heapify(self._q)
        mine.sort()
        return [m for _, _, m in mine if (m.frm, m.to) not in self.blocked]

    def partition(self, side: set[str], everyone: set[str], one_way: bool) -> None:
        for a in side:
            for b in everyone - side:
                self.blocked.add((a, b))
                if not one_way:
                    self.blocked.add((b, a))

    def heal(self) -> None:
        self.blocked.clear()

    def pending(self) -> int:
        return len(self._q)
