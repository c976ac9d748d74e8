"""A ``Replicator`` for service tests: each proposal is applied at once against MemoryTables."""

from __future__ import annotations

import time
from collections.abc import Callable

from broker.model.commands import decode
from broker.state_machine import BrokerStateMachine
from cluster.api import EntryMeta
from storage.changes import ChangeSet, MemoryTables


class FakeReplicator:
    """Leader time is real time plus a test-controlled ``offset_ms`` (monotonic), or with ``frozen_clock`` the
    start time plus ``offset_ms`` only, for tests that must not see time pass on its own."""

    def __init__(self, state_machine: BrokerStateMachine, *, frozen_clock: bool = False) -> None:
        self.sm = state_machine
        self.tables = MemoryTables()
        self.index = 0
        self.offset_ms = 0
        self.last_ts = 0
        self.proposals = 0
        self.start_ms = int(time.time() * 1000)
        self.frozen_clock = frozen_clock
        self.on_apply: Callable[[object], None] | None = None

    def now_ms(self) -> int:
        if self.frozen_clock:
            return self.start_ms + self.offset_ms
        self.last_ts = max(self.last_ts, int(time.time() * 1000) + self.offset_ms)
        return self.last_ts

    async def propose_and_wait(self, data: bytes) -> object:
        self.index += 1
        self.proposals += 1
        changes = ChangeSet()
        reply = self.sm.apply(EntryMeta(self.index, 1, self.now_ms()), data, changes)
        self.sm.flush_rows(changes)  # a checkpoint after every entry: the tables always hold the whole state
        self.tables.apply(changes)
        self.sm.after_durable()
        if self.on_apply is not None:
            self.on_apply(decode(data, remembered=False))
        return reply

    async def read_barrier(self) -> None:
        return None
