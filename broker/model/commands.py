"""Replicated commands: frozen dataclasses with fixed numeric type ids, and their compact byte encoding.

Every change to broker state is one of these, appended to the log as ``encode(command)`` and applied on every node
from ``decode(data)``. TYPE_IDs are append-only: never change or reuse one (old logs and snapshots must decode).
The encoding is an array ``[TYPE_ID, *fields]`` (``storage.codec``: JSON, or CBOR where needed).

The node that proposes a data-path command applies the very bytes it encoded, so ``encode`` remembers the command
of those bytes and ``decode`` hands it back instead of decoding again: decoding a large send was ~10% of a busy
node's CPU. Only the types in ``_REMEMBERED`` take part; for each of them a test checks that decoding yields a
command identical to the encoded one (same types down to the tuples), so no node behaves differently for having
skipped the decode.

    1 CreateQueue  2 DeleteQueue  3 PurgeQueue  4 SetQueueAttributes  5 TagQueue  6 UntagQueue
    7 SendMessages  8 ReceiveMessages  9 DeleteMessages  10 ChangeVisibility  11 ExpireMessages
    12 AddPermission  13 RemovePermission  14 StartMoveTask  15 MoveMessages  16 CancelMoveTask

Fields added to an existing command go at the end with a default, so entries written before still decode.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple, Protocol, Self

from broker.model.sqs_types import MessageAttribute
from storage import codec


class PlainFields:
    """``wire``/``from_wire`` of a command whose fields are all plain values (str, int, bool, bytes, None), in
    declaration order. Written once here; commands with nested values (batches, pairs) keep their own, which
    rebuild the exact tuple types."""

    __slots__ = ()

    def wire(self) -> list[Any]:
        names: tuple[str, ...] = type(self).__slots__  # a slots dataclass: its fields, in declaration order
        return [getattr(self, name) for name in names]

    @classmethod
    def from_wire(cls, f: list[Any]) -> Self:
        return cls(*f)


class Command(Protocol):
    TYPE_ID: ClassVar[int]

    def wire(self) -> list[Any]: ...

    @classmethod
    def from_wire(cls, fields: list[Any]) -> Command: ...


def _pairs(items: list[Any]) -> tuple[tuple[str, str], ...]:
    return tuple((k, v) for k, v in items)


def _attrs(items: list[Any]) -> tuple[MessageAttribute, ...]:
    return tuple((n, t, s, b) for n, t, s, b in items) if items else ()


@dataclass(frozen=True, slots=True)
class CreateQueue:
    """Create a queue, or succeed when it exists with the same attributes (``attributes`` already validated)."""

    TYPE_ID: ClassVar[int] = 1
    account: str
    name: str
    attributes: tuple[tuple[str, str], ...] = ()
    tags: tuple[tuple[str, str], ...] = ()

    def wire(self) -> list[Any]:
        return [self.account, self.name, self.attributes, self.tags]

    @classmethod
    def from_wire(cls, f: list[Any]) -> CreateQueue:
        return cls(f[0], f[1], _pairs(f[2]), _pairs(f[3]))


@dataclass(frozen=True, slots=True)
class DeleteQueue(PlainFields):
    TYPE_ID: ClassVar[int] = 2
    account: str
    name: str


@dataclass(frozen=True, slots=True)
class PurgeQueue(PlainFields):
    TYPE_ID: ClassVar[int] = 3
    account: str
    name: str


@dataclass(frozen=True, slots=True)
class SetQueueAttributes:
    TYPE_ID: ClassVar[int] = 4
    account: str
    name: str
    attributes: tuple[tuple[str, str], ...]

    def wire(self) -> list[Any]:
        return [self.account, self.name, self.attributes]

    @classmethod
    def from_wire(cls, f: list[Any]) -> SetQueueAttributes:
        return cls(f[0], f[1], _pairs(f[2]))


@dataclass(frozen=True, slots=True)
class TagQueue:
    TYPE_ID: ClassVar[int] = 5
    account: str
    name: str
    tags: tuple[tuple[str, str], ...]

    def wire(self) -> list[Any]:
        return [self.account, self.name, self.tags]

    @classmethod
    def from_wire(cls, f: list[Any]) -> TagQueue:
        return cls(f[0], f[1], _pairs(f[2]))


@dataclass(frozen=True, slots=True)
class UntagQueue:
    TYPE_ID: ClassVar[int] = 6
    account: str
    name: str
    keys: tuple[str, ...]

    def wire(self) -> list[Any]:
        return [self.account, self.name, self.keys]

    @classmethod
    def from_wire(cls, f: list[Any]) -> UntagQueue:
        return cls(f[0], f[1], tuple(f[2]))


class SendEntry(NamedTuple):
    """One message of a SendMessage/SendMessageBatch call, validated and hashed by the service layer.

    A NamedTuple rather than a dataclass: immutable too, ~4x cheaper to build and encoded as-is.

    ``size`` is the body plus attribute bytes (checked against the queue's MaximumMessageSize in ``apply``);
    ``delay_seconds`` None means the queue's DelaySeconds.
    """

    entry_id: str
    message_id: str
    body: str
    md5_body: str
    size: int
    delay_seconds: int | None = None
    attributes: tuple[MessageAttribute, ...] = ()
    md5_attributes: str | None = None
    system_attributes: tuple[MessageAttribute, ...] = ()
    md5_system_attributes: str | None = None
    group_id: str | None = None
    dedup_id: str | None = None  # FIFO: None means content-based (the model hashes the body) or an error


@dataclass(frozen=True, slots=True)
class SendMessages:
    """SendMessage (one entry) and SendMessageBatch (1..10 entries) alike."""

    TYPE_ID: ClassVar[int] = 7
    account: str
    name: str
    sender_id: str
    entries: tuple[SendEntry, ...]

    def wire(self) -> list[Any]:
        return [self.account, self.name, self.sender_id, self.entries]

    @classmethod
    def from_wire(cls, f: list[Any]) -> SendMessages:
        # tuple.__new__ of the decoded list itself, its attribute lists made tuples in place, is ~3x cheaper than
        # the NamedTuple's __new__ (a follower decodes every message); entries written before group_id/dedup_id
        # existed have 10 fields and take the defaults.
        new = tuple.__new__
        entries = []
        for e in f[3]:
            if len(e) == 12:
                e[6] = _attrs(e[6]) if e[6] else ()
                e[8] = _attrs(e[8]) if e[8] else ()
                entries.append(new(SendEntry, e))
            else:
                entries.append(SendEntry(e[0], e[1], e[2], e[3], e[4], e[5], _attrs(e[6]), e[7], _attrs(e[8]), e[9],
                                         *e[10:12]))
        return cls(f[0], f[1], f[2], tuple(entries))


@dataclass(frozen=True, slots=True)
class ReceiveMessages:
    """Move up to ``max_messages`` visible messages in flight; ``visibility_timeout`` None: the queue's.

    ``attempt_id`` is a FIFO ReceiveRequestAttemptId: a retry within 5 minutes returns the same messages.
    """

    TYPE_ID: ClassVar[int] = 8
    account: str
    name: str
    max_messages: int
    visibility_timeout: int | None = None
    attempt_id: str | None = None

    def wire(self) -> list[Any]:
        return [self.account, self.name, self.max_messages, self.visibility_timeout, self.attempt_id]

    @classmethod
    def from_wire(cls, f: list[Any]) -> ReceiveMessages:
        return cls(f[0], f[1], f[2], f[3], f[4] if len(f) > 4 else None)


@dataclass(frozen=True, slots=True)
class DeleteMessages:
    """DeleteMessage and DeleteMessageBatch: entries are (entry id, receipt handle)."""

    TYPE_ID: ClassVar[int] = 9
    account: str
    name: str
    entries: tuple[tuple[str, str], ...]

    def wire(self) -> list[Any]:
        return [self.account, self.name, self.entries]

    @classmethod
    def from_wire(cls, f: list[Any]) -> DeleteMessages:
        return cls(f[0], f[1], _pairs(f[2]))


@dataclass(frozen=True, slots=True)
class ChangeVisibility:
    """ChangeMessageVisibility(Batch): entries are (entry id, receipt handle, timeout seconds)."""

    TYPE_ID: ClassVar[int] = 10
    account: str
    name: str
    entries: tuple[tuple[str, str, int], ...]

    def wire(self) -> list[Any]:
        return [self.account, self.name, self.entries]

    @classmethod
    def from_wire(cls, f: list[Any]) -> ChangeVisibility:
        return cls(f[0], f[1], tuple((i, h, t) for i, h, t in f[2]))


@dataclass(frozen=True, slots=True)
class ExpireMessages(PlainFields):
    """Remove messages older than their queue's MessageRetentionPeriod at the entry's time (at most ``limit``)."""

    TYPE_ID: ClassVar[int] = 11
    limit: int = 10_000


@dataclass(frozen=True, slots=True)
class AddPermission:
    """Add a statement (Sid = ``label``) to the queue's Policy; ``queue_arn`` is its Resource."""

    TYPE_ID: ClassVar[int] = 12
    account: str
    name: str
    label: str
    account_ids: tuple[str, ...]
    actions: tuple[str, ...]
    queue_arn: str

    def wire(self) -> list[Any]:
        return [self.account, self.name, self.label, self.account_ids, self.actions, self.queue_arn]

    @classmethod
    def from_wire(cls, f: list[Any]) -> AddPermission:
        return cls(f[0], f[1], f[2], tuple(f[3]), tuple(f[4]), f[5])


@dataclass(frozen=True, slots=True)
class RemovePermission(PlainFields):
    TYPE_ID: ClassVar[int] = 13
    account: str
    name: str
    label: str


@dataclass(frozen=True, slots=True)
class StartMoveTask(PlainFields):
    """Start moving the messages of a dead-letter queue back to their sources (``dest_name`` None) or elsewhere.

    The ARNs are kept only to report them (ListMessageMoveTasks); the model works on (account, name).
    """

    TYPE_ID: ClassVar[int] = 14
    account: str
    name: str
    source_arn: str
    dest_account: str | None = None
    dest_name: str | None = None
    dest_arn: str | None = None
    rate: int | None = None  # MaxNumberOfMessagesPerSecond; None: as fast as the system moves them


@dataclass(frozen=True, slots=True)
class MoveMessages(PlainFields):
    """One step of a running move task: move what its rate allows since the last step (at most ``limit``)."""

    TYPE_ID: ClassVar[int] = 15
    task_id: int
    limit: int = 16


@dataclass(frozen=True, slots=True)
class CancelMoveTask(PlainFields):
    TYPE_ID: ClassVar[int] = 16
    account: str
    name: str
    task_id: int


REGISTRY: dict[int, type[Command]] = {}

# TYPE_ID ranges per service, so each service's command module can grow without coordination:
# SQS 1-99, SNS 100-199, Kinesis 200-299, cluster-wide/admin 300-399.


def register(*classes: type[Command]) -> None:
    """Add command classes to the registry (each service's command module calls this once at import)."""
    for cls in classes:
        if cls.TYPE_ID in REGISTRY:
            raise ValueError(f"command type id {cls.TYPE_ID} of {cls.__name__} is taken by {REGISTRY[cls.TYPE_ID]}")
        REGISTRY[cls.TYPE_ID] = cls


register(CreateQueue, DeleteQueue, PurgeQueue, SetQueueAttributes, TagQueue, UntagQueue, SendMessages,
         ReceiveMessages, DeleteMessages, ChangeVisibility, ExpireMessages, AddPermission, RemovePermission,
         StartMoveTask, MoveMessages, CancelMoveTask)


class UnknownCommand(ValueError):
    """The log holds a command type this build does not know (a newer node wrote it)."""


_REMEMBERED = frozenset({SendMessages, ReceiveMessages, DeleteMessages, ChangeVisibility})
_RECENT_MAX_BYTES = 32 << 20  # a follower forwards what it encodes and never applies those bytes: bound them
# id(bytes) -> (the bytes, the command). The bytes are held, so their id cannot be reused while remembered.
_recent: dict[int, tuple[bytes, Command]] = {}
_recent_bytes = 0


def encode(command: Command) -> bytes:
    global _recent_bytes
    data = codec.pack([command.TYPE_ID, *command.wire()])
    if type(command) in _REMEMBERED:
        if _recent_bytes > _RECENT_MAX_BYTES:
            _recent.clear()
            _recent_bytes = 0
        _recent[id(data)] = (data, command)
        _recent_bytes += len(data)
    return data


def decode(data: bytes, *, remembered: bool = True) -> Command:
    """The command of ``data``; ``remembered=False`` always decodes (tests of the encoding itself)."""
    global _recent_bytes
    if remembered and _recent:
        hit = _recent.pop(id(data), None)
        if hit is not None:
            _recent_bytes -= len(hit[0])
            if hit[0] is data:
                return hit[1]
    fields = codec.unpack(data)
    cls = REGISTRY.get(fields[0])
    if cls is None:
        raise UnknownCommand(f"unknown command type {fields[0]}")
    return cls.from_wire(fields[1:])
