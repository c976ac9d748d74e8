"""What every model part shares: dispatch of a command to its handler, and the wake-ups it collected."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, Generic, Protocol, TypeVar

from broker.model import errors
from storage.changes import ChangeSink

Key = TypeVar("Key", bound=Hashable)


class Meta(Protocol):
    """What apply needs of a log entry (``cluster.api.EntryMeta`` fits)."""

    @property
    def index(self) -> int: ...

    @property
    def ts(self) -> int: ...

    @property
    def reply(self) -> bool:
        """False when nobody awaits the reply: a part may skip building it (never a change of state)."""
        ...


Handler = Callable[[Any, Any, ChangeSink], object]


class DispatchingPart(Generic[Key]):
    """``handles``/``apply``/``take_wakeups`` of a ``ModelPart`` (broker/state_machine.py) whose ``_handlers`` map
    each command type to a handler; a handler's BrokerError is the reply (the entry still counts as applied)."""

    _handlers: dict[type[Any], Handler]
    wakeups: set[Key]

    def handles(self, command: object) -> bool:
        return type(command) in self._handlers

    def apply(self, command: object, meta: Meta, changes: ChangeSink) -> object:
        try:
            return self._handlers[type(command)](command, meta, changes)
        except errors.BrokerError as exc:
            return exc

    def take_wakeups(self) -> set[Key]:
        woken, self.wakeups = self.wakeups, set()
        return woken

    @property
    def dirty_rows(self) -> int:
        """Rows this part writes itself at the next checkpoint (``flush_rows``); most parts record every change
        in the ChangeSink as it happens and have none."""
        return 0

    def flush_rows(self, changes: ChangeSink) -> int:
        """Record the rows held back for the checkpoint being taken; return how many rows came and went unwritten
        since the last one."""
        return 0
