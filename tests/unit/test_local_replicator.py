"""LocalReplicator: group commit, monotonic leader time, durability before reply, checkpoints, restart from the
checkpointed tables plus the log after them."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from cluster.api import EntryMeta
from cluster.local import LocalReplicator, ReplicatorClosed, read_log
from storage.changes import ChangeSet, ChangeSink, TableReader
from storage.deferred import DeferredTables
from storage.lmdb_store import META_TABLE, LmdbStore


class CounterMachine:
    """Adds integers; persists the running total; remembers every meta it saw."""

    def __init__(self) -> None:
        self.total = 0
        self.metas: list[EntryMeta] = []
        self.durable_calls = 0

    def apply(self, meta: EntryMeta, data: bytes, changes: ChangeSink) -> object:
        if data == b"boom":
            raise RuntimeError("bug")
        self.metas.append(meta)
        self.total += int(data)
        changes.put("counter", b"total", str(self.total).encode())
        return self.total

    def after_durable(self) -> None:
        self.durable_calls += 1

    def restore(self, reader: TableReader) -> None:
        raw = reader.get("counter", b"total")
        self.total = int(raw) if raw else 0

    def dirty_rows(self) -> int:
        return 0  # its row is recorded in the ChangeSink as it changes

    def flush_rows(self, changes: ChangeSink) -> int:
        return 0


class HeldBackCounter(CounterMachine):
    """Holds its row back for the checkpoint, as the SQS model holds its message rows back."""

    def __init__(self) -> None:
        super().__init__()
        self.changed = False

    def apply(self, meta: EntryMeta, data: bytes, changes: ChangeSink) -> object:
        reply = super().apply(meta, data, ChangeSet())  # the row it would record is dropped
        self.changed = True
        return reply

    def restore(self, reader: TableReader) -> None:
        super().restore(reader)
        self.changed = False

    def dirty_rows(self) -> int:
        return int(self.changed)

    def flush_rows(self, changes: ChangeSink) -> int:
        if self.changed:
            changes.put("counter", b"total", str(self.total).encode())
            self.changed = False
        return 0


async def test_concurrent_proposals_share_one_commit(tmp_path: Path) -> None:
    commits: list[int] = []
    sm = CounterMachine()
    rep = LocalReplicator(LmdbStore(str(tmp_path)), sm, on_commit=lambda n, s: commits.append(n))
    rep.start()
    replies = await asyncio.gather(*(rep.propose_and_wait(b"1") for _ in range(50)))
    await rep.stop()
    assert sorted(replies) == list(range(1, 51))
    assert sum(commits) == 50
    assert len(commits) < 50  # proposals of one loop turn were grouped
    assert [m.index for m in sm.metas] == list(range(1, 51))
    assert sm.durable_calls == len(commits)


async def test_time_is_stamped_monotonic_even_if_the_clock_goes_back(tmp_path: Path) -> None:
    now = [1000.0]
    sm = CounterMachine()
    rep = LocalReplicator(LmdbStore(str(tmp_path)), sm, clock=lambda: now[0])
    rep.start()
    await rep.propose_and_wait(b"1")
    now[0] = 999.0
    await rep.propose_and_wait(b"1")
    await rep.stop()
    assert [m.ts for m in sm.metas] == [1_000_000, 1_000_000]
    assert rep.now_ms() == 1_000_000


async def test_restart_restores_state_and_continues_the_log(tmp_path: Path) -> None:
    store = LmdbStore(str(tmp_path))
    rep = LocalReplicator(store, CounterMachine(), keep_log_entries=10)
    rep.start()
    for _ in range(5):
        await rep.propose_and_wait(b"2")
    await rep.stop()
    store.close()

    store = LmdbStore(str(tmp_path))
    sm = CounterMachine()
    rep = LocalReplicator(store, sm, keep_log_entries=10)
    rep.start()
    assert sm.total == 10
    assert await rep.propose_and_wait(b"1") == 11
    await rep.stop()
    assert [index for index, _, _ in read_log(store)] == [1, 2, 3, 4, 5, 6]


async def test_log_is_compacted_to_the_retained_window(tmp_path: Path) -> None:
    store = LmdbStore(str(tmp_path))
    rep = LocalReplicator(store, CounterMachine(), keep_log_entries=3)
    rep.start()
    for _ in range(10):
        await rep.propose_and_wait(b"1")
    await rep.stop()
    assert [index for index, _, _ in read_log(store)] == [8, 9, 10]


async def test_state_waits_in_memory_and_a_crash_replays_the_log_after_the_checkpoint(tmp_path: Path) -> None:
    store = LmdbStore(str(tmp_path / "node"))
    rep = LocalReplicator(store, CounterMachine(), tables=DeferredTables(store, max_rows=1_000, max_seconds=3600))
    rep.start()
    for _ in range(3):
        await rep.propose_and_wait(b"1")
    assert store.get("counter", b"total") is None  # not checkpointed yet ...
    assert rep.tables.get("counter", b"total") == b"3"  # ... but readable
    assert [index for index, _, _ in read_log(store)] == [1, 2, 3]  # the log makes it durable
    (tmp_path / "crash").mkdir()
    store.env.copy(str(tmp_path / "crash"))  # a consistent image of the disk: as after kill -9 here
    await rep.stop()
    assert store.get("counter", b"total") == b"3"  # stop wrote a checkpoint and dropped the log it covers
    assert read_log(store) == []

    crashed = LmdbStore(str(tmp_path / "crash"))
    sm = CounterMachine()
    rep = LocalReplicator(crashed, sm)
    rep.start()
    assert sm.total == 3  # replayed from the log
    assert await rep.propose_and_wait(b"2") == 5
    assert sm.metas[-1].index == 4  # indexes keep counting after the replayed entries
    await rep.stop()
    assert crashed.get("counter", b"total") == b"5"
    assert crashed.get(META_TABLE, b"last_applied") == (4).to_bytes(8, "big")


async def test_rows_held_back_by_the_state_machine_reach_the_checkpoint_of_the_state_before_the_batch(
        tmp_path: Path) -> None:
    store = LmdbStore(str(tmp_path / "node"))
    sm = HeldBackCounter()
    rep = LocalReplicator(store, sm, tables=DeferredTables(store, max_rows=1, max_seconds=3600))
    rep.start()
    await rep.propose_and_wait(b"1")
    assert store.get("counter", b"total") is None  # held back in the state machine, not pending in the tables
    await rep.propose_and_wait(b"10")  # the held-back row is due: this batch writes it as it was BEFORE the batch
    assert store.get("counter", b"total") == b"1"
    assert store.get(META_TABLE, b"last_applied") == (1).to_bytes(8, "big")
    assert [index for index, _, _ in read_log(store)] == [2]
    (tmp_path / "crash").mkdir()
    store.env.copy(str(tmp_path / "crash"))  # kill -9 here: the checkpoint says 1 at index 1, the log has 2
    await rep.stop()
    assert store.get("counter", b"total") == b"11"  # stop flushed the held-back row
    crashed = LmdbStore(str(tmp_path / "crash"))
    again = HeldBackCounter()
    rep = LocalReplicator(crashed, again)
    rep.start()
    assert again.total == 11  # checkpoint 1 + replayed entry 2, applied once
    await rep.stop()
    assert crashed.get("counter", b"total") == b"11"


async def test_a_checkpoint_rides_on_a_batch_once_enough_rows_are_pending(tmp_path: Path) -> None:
    store = LmdbStore(str(tmp_path))
    rep = LocalReplicator(store, CounterMachine(), tables=DeferredTables(store, max_rows=1, max_seconds=3600))
    rep.start()
    await rep.propose_and_wait(b"1")
    assert store.get("counter", b"total") is None
    await rep.propose_and_wait(b"1")  # one row pending: this batch carries the checkpoint of the first
    assert store.get("counter", b"total") == b"1"
    assert [index for index, _, _ in read_log(store)] == [2]
    assert rep.tables.get("counter", b"total") == b"2"
    await rep.stop()


async def test_apply_bug_fails_one_proposal_not_the_node(tmp_path: Path) -> None:
    rep = LocalReplicator(LmdbStore(str(tmp_path)), CounterMachine())
    rep.start()
    reply = await rep.propose_and_wait(b"boom")
    assert isinstance(reply, RuntimeError)
    assert await rep.propose_and_wait(b"3") == 3
    await rep.stop()


async def test_read_barrier_waits_for_the_batch_in_flight(tmp_path: Path) -> None:
    store = LmdbStore(str(tmp_path))
    sm = CounterMachine()
    rep = LocalReplicator(store, sm)
    rep.start()
    proposal = asyncio.ensure_future(rep.propose_and_wait(b"5"))
    while not rep.committing:  # let the commit loop take the batch (applied in memory, write in flight)
        await asyncio.sleep(0)
    assert sm.total == 5
    await rep.read_barrier()
    assert rep.tables.get("counter", b"total") == b"5"  # whatever a reader now sees is durable
    assert await proposal == 5
    await rep.stop()


async def test_proposals_after_stop_are_refused(tmp_path: Path) -> None:
    rep = LocalReplicator(LmdbStore(str(tmp_path)), CounterMachine())
    rep.start()
    await rep.stop()
    with pytest.raises(ReplicatorClosed):
        await rep.propose_and_wait(b"1")
