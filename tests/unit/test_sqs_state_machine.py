"""BrokerStateMachine: decodes log entries for the model and wakes long pollers only once a batch is durable."""

from __future__ import annotations

import asyncio

from broker.model import errors
from broker.model.commands import CreateQueue, ReceiveMessages, SendMessages, encode
from broker.model.sqs_model import SqsModel
from broker.notify import Notifier
from broker.state_machine import BrokerStateMachine, sqs_wake_key
from cluster.api import EntryMeta
from storage import codec
from storage.changes import ChangeSet, MemoryTables
from tests.unit.test_model_sqs import ACCOUNT, T0, entry


async def test_wakeups_wait_for_durability() -> None:
    notifier = Notifier()
    sm = BrokerStateMachine(SqsModel(), notifier)
    tables = MemoryTables()
    changes = ChangeSet()
    sm.apply(EntryMeta(1, 1, T0), encode(CreateQueue(ACCOUNT, "q")), changes)
    waiter = asyncio.create_task(notifier.wait(sqs_wake_key(ACCOUNT, "q"), 5))
    await asyncio.sleep(0)  # let the waiter register
    assert sm.apply(EntryMeta(2, 1, T0), encode(SendMessages(ACCOUNT, "q", "s", (entry("1", "m"),))), changes) == [
        None]
    await asyncio.sleep(0)
    assert not waiter.done()  # applied in memory, not yet durable
    tables.apply(changes)
    sm.after_durable()
    assert await waiter is True


async def test_bad_entries_become_internal_failures_and_replies_pass_through() -> None:
    sm = BrokerStateMachine(SqsModel(), Notifier())
    changes = ChangeSet()
    assert isinstance(sm.apply(EntryMeta(1, 1, T0), b"\xff\x00garbage", changes), errors.InternalFailure)
    assert isinstance(sm.apply(EntryMeta(2, 1, T0), codec.pack([9999]), changes), errors.InternalFailure)
    reply = sm.apply(EntryMeta(3, 1, T0), encode(ReceiveMessages(ACCOUNT, "missing", 1)), changes)
    assert isinstance(reply, errors.QueueDoesNotExist)
    assert len(changes) == 0


def test_restore_rebuilds_the_model_from_the_tables() -> None:
    tables = MemoryTables()
    sm = BrokerStateMachine(SqsModel(), Notifier())
    changes = ChangeSet()
    sm.apply(EntryMeta(1, 1, T0), encode(CreateQueue(ACCOUNT, "q")), changes)
    sm.apply(EntryMeta(2, 1, T0), encode(SendMessages(ACCOUNT, "q", "s", (entry("1", "m"),))), changes)
    assert sm.dirty_rows() == 1  # the message's row is held back for the checkpoint
    assert sm.flush_rows(changes) == 0 and sm.dirty_rows() == 0
    tables.apply(changes)
    fresh = BrokerStateMachine(SqsModel(), Notifier())
    fresh.restore(tables)
    assert fresh.sqs.snapshot() == sm.sqs.snapshot()
