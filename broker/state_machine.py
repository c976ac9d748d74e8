"""The broker's ``cluster.api.StateMachine``: log bytes -> command -> model, with wake-ups held back until durable.

Long pollers must not see a message before it is on disk (a crash would lose what they were handed), so the queues
that got receivable messages are only notified in ``after_durable``, once the batch is fsynced.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from broker.model import commands, errors
from broker.model.sqs_model import SqsModel
from broker.notify import Notifier
from cluster.api import EntryMeta
from storage.changes import ChangeSink, TableReader

log = logging.getLogger(__name__)


def sqs_wake_key(account: str, name: str) -> tuple[str, str, str]:
    """The Notifier key long pollers of one SQS queue wait on."""
    return ("sqs", account, name)


class ModelPart(Protocol):
    """One service's share of the replicated state (SQS, Kinesis, SNS ...): the methods SqsModel already has."""

    wake_prefix: str  # first element of the Notifier keys this part's wake-ups are delivered on

    def handles(self, command: commands.Command) -> bool: ...

    def apply(self, command: commands.Command, meta: EntryMeta, changes: ChangeSink) -> object: ...

    def restore(self, reader: TableReader) -> None: ...

    def take_wakeups(self) -> set[Any]: ...

    @property
    def dirty_rows(self) -> int: ...

    def flush_rows(self, changes: ChangeSink) -> int: ...


class BrokerStateMachine:
    """Applies replicated commands to the model parts; notifies long pollers after each durable batch."""

    def __init__(self, sqs: SqsModel, notifier: Notifier, *others: ModelPart) -> None:
        self.sqs = sqs
        self.parts: tuple[ModelPart, ...] = (sqs, *others)
        self._notifier = notifier
        self._by_type: dict[type[Any], ModelPart] = {}
        self._woken: set[tuple[Any, ...]] = set()

    def _part(self, command: commands.Command) -> ModelPart | None:
        part = self._by_type.get(type(command))
        if part is None:
            part = next((p for p in self.parts if p.handles(command)), None)
            if part is not None:
                self._by_type[type(command)] = part
        return part

    def apply(self, meta: EntryMeta, data: bytes, changes: ChangeSink) -> object:
        try:
            command = commands.decode(data)
        except Exception:  # a corrupt or foreign entry must not stop the apply loop
            log.exception("cannot decode log entry %d", meta.index)
            return errors.InternalFailure()
        part = self._part(command)
        if part is None:
            log.error("no model handles command type %d (entry %d)", command.TYPE_ID, meta.index)
            return errors.InternalFailure()
        reply = part.apply(command, meta, changes)
        # A command of one part may wake another's pollers (an SNS publish fans out into SQS queues).
        for each in self.parts:
            woken = each.take_wakeups()
            if woken:
                prefix = each.wake_prefix
                self._woken.update((prefix, *key) for key in woken)
        return reply

    def after_durable(self) -> None:
        woken, self._woken = self._woken, set()
        for key in woken:
            self._notifier.notify(key)

    def restore(self, reader: TableReader) -> None:
        for part in self.parts:
            part.restore(reader)
        self._woken.clear()

    def dirty_rows(self) -> int:
        return sum(part.dirty_rows for part in self.parts)

    def flush_rows(self, changes: ChangeSink) -> int:
        return sum(part.flush_rows(changes) for part in self.parts)
