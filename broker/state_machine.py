"""The broker's ``cluster.api.StateMachine``: log bytes -> command -> model, with wake-ups held back until durable.

Long pollers must not see a message before it is on disk (a crash would lose what they were handed), so the queues
that got receivable messages are only notified in ``after_durable``, once the batch is fsynced.
"""

from __future__ import annotations

import logging

from broker.model import commands, errors
from broker.model.sqs_model import SqsModel
from broker.notify import Notifier
from cluster.api import EntryMeta
from storage.changes import ChangeSink, TableReader

log = logging.getLogger(__name__)


def sqs_wake_key(account: str, name: str) -> tuple[str, str, str]:
    """The Notifier key long pollers of one SQS queue wait on."""
    return ("sqs", account, name)


class BrokerStateMachine:
    """Applies replicated commands to the model; notifies long pollers after each durable batch."""

    def __init__(self, sqs: SqsModel, notifier: Notifier) -> None:
        self.sqs = sqs
        self._notifier = notifier
        self._woken: set[tuple[str, str]] = set()

    def apply(self, meta: EntryMeta, data: bytes, changes: ChangeSink) -> object:
        try:
            command = commands.decode(data)
        except Exception:  # a corrupt or foreign entry must not stop the apply loop
            log.exception("cannot decode log entry %d", meta.index)
            return errors.InternalFailure()
        if not self.sqs.handles(command):
            log.error("no model handles command type %d (entry %d)", command.TYPE_ID, meta.index)
            return errors.InternalFailure()
        reply = self.sqs.apply(command, meta, changes)
        if self.sqs.wakeups:
            self._woken |= self.sqs.take_wakeups()
        return reply

    def after_durable(self) -> None:
        woken, self._woken = self._woken, set()
        for account, name in woken:
            self._notifier.notify(sqs_wake_key(account, name))

    def restore(self, reader: TableReader) -> None:
        self.sqs.restore(reader)
        self._woken.clear()
