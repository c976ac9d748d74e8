"""LocalReplicator: group commit, monotonic leader time, durability before reply, restart from the tables."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from cluster.api import EntryMeta
from cluster.local import LocalReplicator, ReplicatorClosed, read_log
from storage.changes import ChangeSink, TableReader
from storage.lmdb_store import LmdbStore


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
    rep = LocalReplicator(store, CounterMachine())
    rep.start()
    for _ in range(5):
        await rep.propose_and_wait(b"2")
    await rep.stop()
    store.close()

    store = LmdbStore(str(tmp_path))
    sm = CounterMachine()
    rep = LocalReplicator(store, sm)
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


async def test_without_a_log_the_state_tables_alone_survive_a_restart(tmp_path: Path) -> None:
    store = LmdbStore(str(tmp_path))
    rep = LocalReplicator(store, CounterMachine())
    rep.start()
    for _ in range(3):
        await rep.propose_and_wait(b"1")
    await rep.stop()
    assert len(read_log(store)) == 3
    rep = LocalReplicator(store, CounterMachine(), keep_log_entries=0)
    rep.start()
    assert await rep.propose_and_wait(b"2") == 5
    await rep.stop()
    assert read_log(store) == []  # the old log is gone and no entry was written
    sm = CounterMachine()
    rep = LocalReplicator(store, sm, keep_log_entries=0)
    rep.start()
    assert sm.total == 5
    assert await rep.propose_and_wait(b"1") == 6
    assert sm.metas[-1].index == 5  # indexes keep counting from last_applied
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
    assert store.get("counter", b"total") == b"5"  # whatever a reader now sees is durable
    assert await proposal == 5
    await rep.stop()


async def test_proposals_after_stop_are_refused(tmp_path: Path) -> None:
    rep = LocalReplicator(LmdbStore(str(tmp_path)), CounterMachine())
    rep.start()
    await rep.stop()
    with pytest.raises(ReplicatorClosed):
        await rep.propose_and_wait(b"1")
