"""The SQS state machine: every SQS rule that depends on state, applied deterministically from log entries.

``apply(command, meta, changes)`` reads time only from ``meta.ts`` and identity only from ``meta.index`` and the
command; it returns the reply (a result or a ``BrokerError`` instance, never raising for a client error), updates
memory and records each changed row in ``changes``. ``restore(reader)`` rebuilds the same state from the tables.
Reads take ``now_ms`` from the caller (the leader clock) and never change logical state.

Decisions where AWS is unclear or impractical locally (see the module docs of the service for the wire side):
- A deleted queue's name can be reused at once (AWS asks for 60 s; local tools delete and recreate immediately).
- DeleteMessage with an out-of-date receipt handle succeeds without deleting (as AWS documents); with a handle of
  another queue, or garbage, it is ReceiptHandleIsInvalid.
- ChangeMessageVisibility on a message that is no longer in flight (visible again, or handle out of date) is
  MessageNotInflight; on a deleted message InvalidParameterValue, as AWS answers.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from broker.model import errors
from broker.model.commands import (
    ChangeVisibility,
    Command,
    CreateQueue,
    DeleteMessages,
    DeleteQueue,
    ExpireMessages,
    PurgeQueue,
    ReceiveMessages,
    SendMessages,
    SetQueueAttributes,
    TagQueue,
    UntagQueue,
)
from broker.model.sqs_keys import (
    MESSAGES,
    MSGSTATE,
    QUEUES,
    make_receipt_handle,
    message_key,
    message_key_from,
    parse_receipt_handle,
    queue_key,
)
from broker.model.sqs_queue import Msg, Queue
from broker.model.sqs_types import (
    MAX_IN_FLIGHT,
    MAX_LIST_QUEUES,
    MAX_VISIBILITY_TIMEOUT,
    PURGE_INTERVAL_MS,
    QUEUE_TYPE_STANDARD,
    QueueInfo,
    ReceivedMessage,
    StoredMessage,
)
from broker.model.sqs_validation import DEFAULT_ATTRIBUTES
from storage import codec
from storage.changes import ChangeSink, TableReader

MAX_TAGS = 50


class Meta(Protocol):
    """What apply needs of a log entry (``cluster.api.EntryMeta`` fits)."""

    @property
    def index(self) -> int: ...

    @property
    def ts(self) -> int: ...


QueueKey = tuple[str, str]


class SqsModel:
    """All SQS queues of this node."""

    wake_prefix = "sqs"  # wake-ups are (account, name) pairs, delivered on Notifier keys ("sqs", account, name)

    def __init__(self) -> None:
        self.queues: dict[QueueKey, Queue] = {}
        self.by_id: dict[int, Queue] = {}
        # Queues that got receivable messages during the entries applied since the last ``take_wakeups``.
        self.wakeups: set[QueueKey] = set()
        self._handlers: dict[type[Any], Callable[[Any, Meta, ChangeSink], object]] = {
            CreateQueue: self._create_queue, DeleteQueue: self._delete_queue, PurgeQueue: self._purge_queue,
            SetQueueAttributes: self._set_attributes, TagQueue: self._tag_queue, UntagQueue: self._untag_queue,
            SendMessages: self._send, ReceiveMessages: self._receive, DeleteMessages: self._delete_messages,
            ChangeVisibility: self._change_visibility, ExpireMessages: self._expire,
        }

    # -- apply ------------------------------------------------------------------------------------------------

    def handles(self, command: Command) -> bool:
        return type(command) in self._handlers

    def apply(self, command: Command, meta: Meta, changes: ChangeSink) -> object:
        try:
            return self._handlers[type(command)](command, meta, changes)
        except errors.BrokerError as exc:
            return exc

    def take_wakeups(self) -> set[QueueKey]:
        woken, self.wakeups = self.wakeups, set()
        return woken

    def _queue(self, account: str, name: str) -> Queue:
        queue = self.queues.get((account, name))
        if queue is None:
            raise errors.QueueDoesNotExist()
        return queue

    def _save_queue(self, q: Queue, changes: ChangeSink) -> None:
        changes.put(QUEUES, queue_key(q.account, q.name), codec.pack(
            [q.queue_id, q.queue_type, q.attributes, q.tags, q.created_ts, q.modified_ts, q.last_purge_ts]))

    def _create_queue(self, cmd: CreateQueue, meta: Meta, changes: ChangeSink) -> object:
        existing = self.queues.get((cmd.account, cmd.name))
        if existing is not None:
            current = existing.effective_attributes()
            for key, value in cmd.attributes:
                if current.get(key, "") != value:
                    raise errors.QueueNameExists(
                        f"A queue already exists with the same name and a different value for attribute {key}")
            return existing.queue_id
        q = Queue(cmd.account, cmd.name, meta.index, QUEUE_TYPE_STANDARD, dict(cmd.attributes), dict(cmd.tags),
                  meta.ts, meta.ts)
        self.queues[(q.account, q.name)] = q
        self.by_id[q.queue_id] = q
        self._save_queue(q, changes)
        return q.queue_id

    def _drop_messages(self, q: Queue, changes: ChangeSink) -> None:
        for msg in q.clear():
            self._record_delete(q, msg, changes)

    @staticmethod
    def _record_delete(q: Queue, msg: Msg, changes: ChangeSink) -> None:
        key = message_key(q.queue_id, msg.seq)
        changes.delete(MESSAGES, key)
        if msg.receive_count:
            changes.delete(MSGSTATE, key)

    def _delete_queue(self, cmd: DeleteQueue, meta: Meta, changes: ChangeSink) -> object:
        q = self._queue(cmd.account, cmd.name)
        self._drop_messages(q, changes)
        del self.queues[(q.account, q.name)]
        del self.by_id[q.queue_id]
        changes.delete(QUEUES, queue_key(q.account, q.name))
        self.wakeups.add((q.account, q.name))  # long pollers notice the queue is gone
        return None

    def _purge_queue(self, cmd: PurgeQueue, meta: Meta, changes: ChangeSink) -> object:
        q = self._queue(cmd.account, cmd.name)
        if q.last_purge_ts and meta.ts - q.last_purge_ts < PURGE_INTERVAL_MS:
            raise errors.PurgeQueueInProgress(
                f"Only one PurgeQueue operation on {q.name} is allowed every 60 seconds.")
        self._drop_messages(q, changes)
        q.last_purge_ts = meta.ts
        self._save_queue(q, changes)
        return None

    def _set_attributes(self, cmd: SetQueueAttributes, meta: Meta, changes: ChangeSink) -> object:
        q = self._queue(cmd.account, cmd.name)
        for key, value in cmd.attributes:
            if value == "" and key not in DEFAULT_ATTRIBUTES:
                q.attributes.pop(key, None)  # an empty policy removes it
            else:
                q.attributes[key] = value
        q.settings_changed()
        q.modified_ts = meta.ts
        self._save_queue(q, changes)
        return None

    def _tag_queue(self, cmd: TagQueue, meta: Meta, changes: ChangeSink) -> object:
        q = self._queue(cmd.account, cmd.name)
        tags = {**q.tags, **dict(cmd.tags)}
        if len(tags) > MAX_TAGS:
            raise errors.InvalidParameterValue(f"Too many tags added for queue {q.name}.")
        q.tags = tags
        self._save_queue(q, changes)
        return None

    def _untag_queue(self, cmd: UntagQueue, meta: Meta, changes: ChangeSink) -> object:
        q = self._queue(cmd.account, cmd.name)
        for key in cmd.keys:
            q.tags.pop(key, None)
        self._save_queue(q, changes)
        return None

    def _send(self, cmd: SendMessages, meta: Meta, changes: ChangeSink) -> list[errors.BrokerError | None]:
        """Per entry: None when stored, else the error of that entry (a batch fails entry by entry)."""
        q = self._queue(cmd.account, cmd.name)
        ts = meta.ts
        base_seq = meta.index * 16
        results: list[errors.BrokerError | None] = []
        woke = False
        for position, e in enumerate(cmd.entries):
            if e.size > q.max_size:
                results.append(errors.InvalidParameterValue(
                    f"One or more parameters are invalid. Reason: Message must be shorter than {q.max_size} bytes."))
                continue
            visible_at = ts + (q.delay_ms if e.delay_seconds is None else e.delay_seconds * 1000)
            stored = StoredMessage(e.message_id, e.body, e.attributes, e.md5_body, e.md5_attributes, ts,
                                   cmd.sender_id, e.system_attributes, e.md5_system_attributes)
            seq = base_seq + position
            changes.put(MESSAGES, message_key(q.queue_id, seq), codec.pack((*stored, visible_at)))
            q.add(Msg(seq, stored, visible_at), ts)
            woke = woke or visible_at <= ts
            results.append(None)
        if woke:
            self.wakeups.add((q.account, q.name))
        return results

    def _save_state(self, q: Queue, msg: Msg, changes: ChangeSink) -> None:
        changes.put(MSGSTATE, message_key(q.queue_id, msg.seq), codec.pack(
            [msg.visible_at, msg.receive_count, msg.first_receive_ts, msg.receipt, msg.received_at]))

    def _receive(self, cmd: ReceiveMessages, meta: Meta, changes: ChangeSink) -> list[ReceivedMessage]:
        q = self._queue(cmd.account, cmd.name)
        ts = meta.ts
        q.advance(ts)
        if q.n_inflight >= MAX_IN_FLIGHT:
            raise errors.OverLimit(f"Too many messages in flight for queue {q.name} (limit {MAX_IN_FLIGHT}).")
        wanted = min(cmd.max_messages, MAX_IN_FLIGHT - q.n_inflight)
        timeout = q.visibility_s if cmd.visibility_timeout is None else cmd.visibility_timeout
        visible_at = ts + timeout * 1000
        out: list[ReceivedMessage] = []
        early: list[Msg] = []
        while len(out) < wanted:
            msg = q.pop_visible()
            if msg is None:
                break
            if msg.visible_at > ts:  # promoted by a read whose clock ran ahead of this entry: not yet visible
                early.append(msg)
                continue
            if msg.stored.sent_ts + q.retention_ms <= ts:  # expired, not yet swept
                q.remove(msg)
                self._record_delete(q, msg, changes)
                continue
            msg.receive_count += 1
            if msg.receive_count == 1:
                msg.first_receive_ts = ts
            msg.receipt = meta.index
            msg.received_at = ts
            q.make_pending(msg, visible_at)
            self._save_state(q, msg, changes)
            out.append(ReceivedMessage(msg.stored, make_receipt_handle(q.queue_id, msg.seq, meta.index),
                                       msg.receive_count, msg.first_receive_ts))
        for msg in early:
            q.make_pending(msg, msg.visible_at)
        if timeout == 0 and out:
            self.wakeups.add((q.account, q.name))
        return out

    def _resolve(self, q: Queue, handle: str) -> tuple[Msg | None, int]:
        """The message a receipt handle names (None if gone) and the receive it came from."""
        parsed = parse_receipt_handle(handle)
        if parsed is None or parsed[0] != q.queue_id:
            raise errors.ReceiptHandleIsInvalid(f'The input receipt handle "{handle}" is not a valid receipt handle.')
        _, seq, receive_index = parsed
        return q.messages.get(seq), receive_index

    def _delete_messages(self, cmd: DeleteMessages, meta: Meta,
                         changes: ChangeSink) -> list[errors.BrokerError | None]:
        q = self._queue(cmd.account, cmd.name)
        results: list[errors.BrokerError | None] = []
        for _entry_id, handle in cmd.entries:
            try:
                msg, receive_index = self._resolve(q, handle)
            except errors.BrokerError as exc:
                results.append(exc)
                continue
            if msg is not None and msg.receipt == receive_index:
                q.remove(msg)
                self._record_delete(q, msg, changes)
            results.append(None)
        return results

    def _change_visibility(self, cmd: ChangeVisibility, meta: Meta,
                           changes: ChangeSink) -> list[errors.BrokerError | None]:
        q = self._queue(cmd.account, cmd.name)
        ts = meta.ts
        q.advance(ts)
        results: list[errors.BrokerError | None] = []
        woke = False
        for _entry_id, handle, timeout in cmd.entries:
            try:
                msg, receive_index = self._resolve(q, handle)
            except errors.BrokerError as exc:
                results.append(exc)
                continue
            if msg is None:
                results.append(errors.InvalidParameterValue(
                    f"Value {handle} for parameter ReceiptHandle is invalid. Reason: Message does not exist or is "
                    "not available for visibility timeout change."))
                continue
            # in flight is decided from visible_at alone, never from index state a read may have advanced early
            if msg.receipt != receive_index or msg.visible_at <= ts:
                results.append(errors.MessageNotInflight("The message referred to isn't in flight."))
                continue
            if (ts - msg.received_at) // 1000 + timeout > MAX_VISIBILITY_TIMEOUT:
                results.append(errors.InvalidParameterValue(
                    f"Value {timeout} for parameter VisibilityTimeout is invalid. Reason: Total VisibilityTimeout "
                    f"for the message is beyond the limit [{MAX_VISIBILITY_TIMEOUT} seconds]."))
                continue
            q.make_pending(msg, ts + timeout * 1000)
            self._save_state(q, msg, changes)
            woke = woke or timeout == 0
            results.append(None)
        if woke:
            q.advance(ts)
            self.wakeups.add((q.account, q.name))
        return results

    def _expire(self, cmd: ExpireMessages, meta: Meta, changes: ChangeSink) -> int:
        """Remove expired messages; return how many."""
        removed = 0
        for q in self.queues.values():
            horizon = meta.ts - q.retention_ms
            while removed < cmd.limit:
                msg = q.oldest()
                if msg is None or msg.stored.sent_ts > horizon:
                    break
                q.remove(msg)
                self._record_delete(q, msg, changes)
                removed += 1
        return removed

    # -- restore ----------------------------------------------------------------------------------------------

    def restore(self, reader: TableReader) -> None:
        self.queues.clear()
        self.by_id.clear()
        self.wakeups.clear()
        for key, value in reader.scan(QUEUES):
            account, name = key.decode().split("\x00")
            queue_id, queue_type, attributes, tags, created, modified, last_purge = codec.unpack(value)
            q = Queue(account, name, queue_id, queue_type, attributes, tags, created, modified, last_purge)
            self.queues[(account, name)] = q
            self.by_id[queue_id] = q
        states = {key: codec.unpack(value) for key, value in reader.scan(MSGSTATE)}
        for key, value in reader.scan(MESSAGES):
            queue_id, seq = message_key_from(key)
            owner = self.by_id.get(queue_id)
            if owner is None:
                continue
            f = codec.unpack(value)
            stored = StoredMessage(f[0], f[1], tuple((n, t, s, b) for n, t, s, b in f[2]), f[3], f[4], f[5], f[6],
                                   tuple((n, t, s, b) for n, t, s, b in f[7]), f[8])
            msg = Msg(seq, stored, f[9])
            state = states.get(key)
            if state is not None:
                msg.visible_at, msg.receive_count, msg.first_receive_ts, msg.receipt, msg.received_at = state
            owner.add(msg, -1)

    # -- reads ------------------------------------------------------------------------------------------------

    def queue(self, account: str, name: str) -> QueueInfo:
        q = self._queue(account, name)
        return QueueInfo(q.account, q.name, q.queue_id, dict(q.attributes), dict(q.tags), q.created_ts,
                         q.modified_ts)

    def get_queue_attributes(self, account: str, name: str, names: list[str], now_ms: int,
                             arn: str) -> dict[str, str]:
        """The requested attributes (``All`` for every one); Approximate* counted as of ``now_ms``."""
        q = self._queue(account, name)
        q.advance(now_ms)
        every = {
            **q.effective_attributes(),
            "ApproximateNumberOfMessages": str(q.n_visible),
            "ApproximateNumberOfMessagesNotVisible": str(q.n_inflight),
            "ApproximateNumberOfMessagesDelayed": str(q.n_delayed),
            "CreatedTimestamp": str(q.created_ts // 1000),
            "LastModifiedTimestamp": str(q.modified_ts // 1000),
            "QueueArn": arn,
        }
        if "All" in names:
            return every
        return {n: every[n] for n in names if n in every}

    def list_queues(self, account: str, prefix: str = "", max_results: int | None = None,
                    next_token: str | None = None) -> tuple[list[str], str | None]:
        """Names in order; a NextToken only when ``max_results`` was given and more remain (as AWS does)."""
        after = ""
        if next_token:
            after = _decode_token(next_token, account)
        names = sorted(n for (a, n) in self.queues if a == account and n.startswith(prefix) and n > after)
        limit = MAX_LIST_QUEUES if max_results is None else max_results
        page = names[:limit]
        token = None
        if max_results is not None and len(names) > limit:
            token = base64.urlsafe_b64encode(f"{account}\x00{page[-1]}".encode()).decode()
        return page, token

    def receive_wait_seconds(self, account: str, name: str) -> int:
        """The queue's ReceiveMessageWaitTimeSeconds (the long-poll default)."""
        return int(self._queue(account, name).attributes.get("ReceiveMessageWaitTimeSeconds", "0"))

    def list_queue_tags(self, account: str, name: str) -> dict[str, str]:
        return dict(self._queue(account, name).tags)

    def has_visible(self, account: str, name: str, now_ms: int) -> bool:
        q = self._queue(account, name)
        q.advance(now_ms)
        return q.n_visible > 0

    def next_visible_at(self, account: str, name: str) -> int | None:
        """When the next delayed or in-flight message becomes visible (None: nothing pending)."""
        return self._queue(account, name).next_visible_at()

    def next_expiry_ms(self) -> int | None:
        """When the earliest message of any queue passes its retention period (None: no messages)."""
        due: int | None = None
        for q in self.queues.values():
            msg = q.oldest()
            if msg is not None:
                at = msg.stored.sent_ts + q.retention_ms
                due = at if due is None else min(due, at)
        return due

    def gauges(self, now_ms: int) -> Iterator[tuple[str, str, int, int, int]]:
        """(account, name, visible, in flight, delayed) per queue, for ``broker.metrics.register_queue_gauges``."""
        for q in list(self.queues.values()):
            q.advance(now_ms)
            yield q.account, q.name, q.n_visible, q.n_inflight, q.n_delayed

    def snapshot(self) -> dict[QueueKey, Any]:
        """A canonical, comparable view of the logical state (tests: apply-then-restore gives the same model)."""
        out: dict[QueueKey, Any] = {}
        for key, q in self.queues.items():
            out[key] = (q.queue_id, q.queue_type, q.attributes, q.tags, q.created_ts, q.modified_ts,
                        q.last_purge_ts, sorted(
                            (m.seq, m.stored, m.visible_at, m.receive_count, m.first_receive_ts, m.receipt,
                             m.received_at) for m in q.messages.values()))
        return out


def _decode_token(token: str, account: str) -> str:
    try:
        owner, _, name = base64.urlsafe_b64decode(token.encode()).decode().partition("\x00")
    except (binascii.Error, ValueError, UnicodeError):
        owner, name = "", ""
    if owner != account or not name:
        raise errors.InvalidParameterValue("Invalid NextToken value.")
    return name

