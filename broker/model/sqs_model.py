"""The SQS state machine: every SQS rule that depends on state, applied deterministically from log entries.

``apply(command, meta, changes)`` reads time only from ``meta.ts`` and identity only from ``meta.index`` and the
command; it returns the reply (a result or a ``BrokerError`` instance, never raising for a client error), updates
memory and records each changed row in ``changes``. ``restore(reader)`` rebuilds the same state from the tables.
Reads take ``now_ms`` from the caller (the leader clock) and never change logical state.

Decisions where AWS is unclear or impractical locally (see the module docs of the service for the wire side):
- A deleted queue's name can be reused at once (AWS asks for 60 s and answers QueueDeletedRecently; local tools and
  test suites delete and recreate immediately, so RaftMQ never raises QueueDeletedRecently).
- A message moved to a dead-letter queue (or back by a move task) starts there with ApproximateReceiveCount 0; it
  keeps its MessageId, body, attributes and SentTimestamp; retention keeps counting from the original enqueue
  time on standard queues and restarts on FIFO queues (AWS's documented rule).
- One receive moves at most 16 messages to the dead-letter queue (the rest move on the next receives): moved
  messages are numbered from the receive's log index, which has room for 16.
- A move task moves the messages that were in the source queue when it started and are not in flight; it is
  COMPLETED once none of those is left to move (messages in flight then stay in the dead-letter queue). Without a
  DestinationArn, a message that was sent to the dead-letter queue directly fails the task with
  CouldNotDetermineMessageSource (the developer guide's wording); a missing destination with
  AWS.SimpleQueueService.NonExistentQueue. Messages not yet moved stay where they are.
- DeleteMessage with an out-of-date receipt handle succeeds without deleting (as AWS documents); with a handle of
  another queue, or garbage, it is ReceiptHandleIsInvalid.
- ChangeMessageVisibility on a message that is no longer in flight (visible again, or handle out of date) is
  MessageNotInflight; on a deleted message InvalidParameterValue, as AWS answers.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import heapq
import itertools
import json
from collections.abc import Callable, Generator, Iterator
from typing import Any

from broker.model import errors
from broker.model.commands import (
    AddPermission,
    CancelMoveTask,
    ChangeVisibility,
    CreateQueue,
    DeleteMessages,
    DeleteQueue,
    ExpireMessages,
    MoveMessages,
    PurgeQueue,
    ReceiveMessages,
    RemovePermission,
    SendMessages,
    SetQueueAttributes,
    StartMoveTask,
    TagQueue,
    UntagQueue,
)
from broker.model.part import DispatchingPart, Meta
from broker.model.sqs_keys import (
    MESSAGES,
    MOVETASKS,
    MSGSTATE,
    QUEUES,
    make_receipt_handle,
    message_key,
    message_key_from,
    parse_receipt_handles,
    queue_key,
    task_key,
)
from broker.model.sqs_movetask import CANCELLED, COMPLETED, FAILED, MAX_TASKS_PER_SOURCE, RUNNING, MoveTask
from broker.model.sqs_policy import add_statement, remove_statement
from broker.model.sqs_queue import ON_DISK_MESSAGE, ON_DISK_STATE, VISIBLE, Msg, Queue
from broker.model.sqs_types import (
    MAX_IN_FLIGHT,
    MAX_LIST_QUEUES,
    MAX_MOVES_PER_COMMAND,
    MAX_VISIBILITY_TIMEOUT,
    PURGE_INTERVAL_MS,
    QUEUE_TYPE_FIFO,
    QUEUE_TYPE_STANDARD,
    SEQ_SLOTS,
    SEQUENCE_BASE,
    QueueInfo,
    ReceivedMessage,
    StoredMessage,
)
from broker.model.sqs_validation import DEFAULT_ATTRIBUTES, arn_queue, check_fifo_settings
from broker.model.sqs_windows import (
    deduplicate,
    drop_windows,
    expire_attempts,
    expire_dedup,
    record_attempt,
    repeat_attempt,
    restore_windows,
)
from storage import codec
from storage.changes import ChangeSink, TableReader

MAX_TAGS = 50
FIFO_GROUP_SCAN = 256  # messages of one group looked at per receive (bounds the work of one command)
_NO_EXTRA = (None,) * (len(StoredMessage._fields) - 9)
# NamedTuple(...) goes through a generated Python __new__; tuple.__new__ with every field is ~2x cheaper, which
# counts where a tuple is built per message (every field must then be given, defaults included).
_new_tuple = tuple.__new__


def pack_message(stored: StoredMessage, visible_at: int) -> bytes:
    """The ``messages`` row: the first nine StoredMessage fields, visible_at, then the later fields (trailing
    Nones dropped, so a standard message keeps the original compact layout)."""
    extra = stored[9:]
    if extra == _NO_EXTRA:
        return codec.pack((*stored[:9], visible_at))
    trimmed = list(extra)
    while trimmed[-1] is None:
        trimmed.pop()
    return codec.pack((*stored[:9], visible_at, *trimmed))


def _pack_message_row(row: tuple[StoredMessage, int]) -> bytes:
    return pack_message(*row)


def unpack_message(value: bytes) -> tuple[StoredMessage, int]:
    f = codec.unpack(value)
    stored = StoredMessage(f[0], f[1], tuple((n, t, s, b) for n, t, s, b in f[2]), f[3], f[4], f[5], f[6],
                           tuple((n, t, s, b) for n, t, s, b in f[7]), f[8], *f[10:])
    return stored, f[9]



QueueKey = tuple[str, str]


class SqsModel(DispatchingPart[QueueKey]):
    """All SQS queues of this node."""

    wake_prefix = "sqs"  # wake-ups are (account, name) pairs, delivered on Notifier keys ("sqs", account, name)

    def __init__(self) -> None:
        self.queues: dict[QueueKey, Queue] = {}
        self.by_id: dict[int, Queue] = {}
        # Queues that got receivable messages during the entries applied since the last ``take_wakeups``.
        self.wakeups: set[QueueKey] = set()
        self.tasks: dict[int, MoveTask] = {}  # move tasks by id (log index of their StartMoveTask), oldest first
        # Messages whose rows changed since the last ``flush_rows`` (removed ones too), with their queue. Message
        # rows are not recorded in the ChangeSink one by one: most messages live for milliseconds, so recording
        # them cost more than everything else a checkpoint saves. The checkpoint asks for them instead.
        self._dirty: dict[Msg, Queue] = {}
        self._vanished = 0  # messages created and removed again since the last flush: never written
        self._handlers: dict[type[Any], Callable[[Any, Meta, ChangeSink], object]] = {
            CreateQueue: self._create_queue, DeleteQueue: self._delete_queue, PurgeQueue: self._purge_queue,
            SetQueueAttributes: self._set_attributes, TagQueue: self._tag_queue, UntagQueue: self._untag_queue,
            SendMessages: self._send, ReceiveMessages: self._receive, DeleteMessages: self._delete_messages,
            ChangeVisibility: self._change_visibility, ExpireMessages: self._expire,
            AddPermission: self._add_permission, RemovePermission: self._remove_permission,
            StartMoveTask: self._start_move_task, MoveMessages: self._move_messages,
            CancelMoveTask: self._cancel_move_task,
        }

    # -- apply ------------------------------------------------------------------------------------------------



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
        attributes = dict(cmd.attributes)
        queue_type = QUEUE_TYPE_FIFO if attributes.get("FifoQueue") == "true" else QUEUE_TYPE_STANDARD
        q = Queue(cmd.account, cmd.name, meta.index, queue_type, attributes, dict(cmd.tags), meta.ts, meta.ts)
        check_fifo_settings(q.effective_attributes())
        self._check_redrive(q)
        self.queues[(q.account, q.name)] = q
        self.by_id[q.queue_id] = q
        self._save_queue(q, changes)
        return q.queue_id

    def _drop_messages(self, q: Queue) -> None:
        for msg in q.clear():
            self._record_delete(q, msg)

    def _record_delete(self, q: Queue, msg: Msg) -> None:
        """``msg`` has left ``q`` (removed from its messages)."""
        if msg.disk:
            self._dirty[msg] = q  # its rows leave at the next checkpoint
        elif self._dirty.pop(msg, None) is not None:
            self._vanished += 1

    # -- checkpoints ------------------------------------------------------------------------------------------

    @property
    def dirty_rows(self) -> int:
        """Messages whose rows the next checkpoint writes or deletes."""
        return len(self._dirty)

    def flush_rows(self, changes: ChangeSink) -> int:
        """Record the current rows of every message changed since the last flush in ``changes`` (a checkpoint is
        being taken of the state as applied so far); return how many messages came and went meanwhile unwritten.

        A message is one MESSAGES row (its StoredMessage and visible_at; restore takes it as is) and, once received,
        one MSGSTATE row with its delivery state, which restore lays over it."""
        for msg, q in self._dirty.items():
            key = message_key(q.queue_id, msg.seq)
            if q.messages.get(msg.seq) is not msg:  # removed (deleted, expired, moved, purged, its queue deleted)
                if msg.disk & ON_DISK_MESSAGE:
                    changes.delete(MESSAGES, key)
                if msg.disk & ON_DISK_STATE:
                    changes.delete(MSGSTATE, key)
                msg.disk = 0
                continue
            if not msg.disk & ON_DISK_MESSAGE:
                changes.create(MESSAGES, key, (_pack_message_row, (msg.stored, msg.visible_at)))
            if msg.receive_count:
                changes.put(MSGSTATE, key, (codec.pack, (
                    msg.visible_at, msg.receive_count, msg.first_receive_ts, msg.receipt, msg.received_at)))
                msg.disk |= ON_DISK_STATE
            msg.disk |= ON_DISK_MESSAGE
        self._dirty.clear()
        vanished, self._vanished = self._vanished, 0
        return vanished

    def _delete_queue(self, cmd: DeleteQueue, meta: Meta, changes: ChangeSink) -> object:
        q = self._queue(cmd.account, cmd.name)
        self._drop_messages(q)
        drop_windows(q, changes)
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
        self._drop_messages(q)
        q.last_purge_ts = meta.ts
        self._save_queue(q, changes)
        return None

    def _set_attributes(self, cmd: SetQueueAttributes, meta: Meta, changes: ChangeSink) -> object:
        q = self._queue(cmd.account, cmd.name)
        before = dict(q.attributes)
        for key, value in cmd.attributes:
            if value == "" and key not in DEFAULT_ATTRIBUTES:
                q.attributes.pop(key, None)  # an empty policy removes it
            else:
                q.attributes[key] = value
        try:
            check_fifo_settings(q.effective_attributes())
            if any(key == "RedrivePolicy" for key, _ in cmd.attributes):
                self._check_redrive(q)
        except errors.BrokerError:
            q.attributes = before
            raise
        q.settings_changed()
        q.modified_ts = meta.ts
        self._save_queue(q, changes)
        return None

    def _check_redrive(self, q: Queue) -> None:
        """A RedrivePolicy's target must exist, be of the same type and allow ``q`` as a source."""
        raw = q.attributes.get("RedrivePolicy")
        if not raw:
            return
        arn = str(json.loads(raw)["deadLetterTargetArn"])
        target_key = arn_queue(arn)
        target = self.queues.get(target_key) if target_key is not None else None

        def invalid(reason: str) -> errors.BrokerError:
            return errors.InvalidParameterValue(
                f"Value {raw} for parameter RedrivePolicy is invalid. Reason: {reason}")
        if target is None:
            raise invalid("Dead letter target does not exist.")
        if target.fifo != q.fifo:
            raise invalid("Dead-letter queue must be same type of queue as the source..")  # sic: AWS's ".."
        allow_raw = target.attributes.get("RedriveAllowPolicy")
        if not allow_raw:
            return
        allow = json.loads(allow_raw)
        permission = allow.get("redrivePermission")
        sources = {arn_queue(a) for a in allow.get("sourceQueueArns", [])}
        if permission == "denyAll" or (permission == "byQueue" and (q.account, q.name) not in sources):
            raise invalid(f"Queue {arn} does not allow this queue to use it as a dead-letter queue.")

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

    def _send(self, cmd: SendMessages, meta: Meta, changes: ChangeSink) -> list[object]:
        """Per entry: None when stored in a standard queue; (message id, sequence number) for a FIFO queue (the
        original message's for a duplicate, which is not stored again); else the error of that entry."""
        q = self._queue(cmd.account, cmd.name)
        ts = meta.ts
        if len(cmd.entries) > SEQ_SLOTS:
            # Messages of one entry are numbered index * SEQ_SLOTS + position: more would collide with the next's.
            too_many = errors.TooManyEntriesInBatchRequest(
                f"Maximum number of entries per request are {SEQ_SLOTS}. You have sent {len(cmd.entries)}.")
            return [too_many] * len(cmd.entries)
        base_seq = meta.index * SEQ_SLOTS
        results: list[object] = []
        woke = False
        fifo = q.fifo
        if fifo:
            expire_dedup(q, ts, changes)
        dirty = self._dirty
        for position, e in enumerate(cmd.entries):
            if e.size > q.max_size:
                results.append(errors.InvalidParameterValue(
                    f"One or more parameters are invalid. Reason: Message must be shorter than {q.max_size} bytes."))
                continue
            seq = base_seq + position
            stored = _new_tuple(StoredMessage, (e.message_id, e.body, e.attributes, e.md5_body, e.md5_attributes, ts,
                                                cmd.sender_id, e.system_attributes, e.md5_system_attributes,
                                                e.group_id, None, None, None, None))
            if fifo:
                outcome = deduplicate(q, e, stored, seq, ts, changes)
                results.append(outcome)
                if not isinstance(outcome, StoredMessage):
                    continue
                stored = outcome
                results[-1] = (stored.message_id, stored.sequence_number)
            else:
                results.append(None)
            visible_at = ts + (q.delay_ms if e.delay_seconds is None else e.delay_seconds * 1000)
            msg = Msg(seq, stored, visible_at)
            dirty[msg] = q
            q.add(msg, ts)
            woke = woke or visible_at <= ts
        if woke:
            self.wakeups.add((q.account, q.name))
        return results

    def _save_state(self, q: Queue, msg: Msg) -> None:
        """The message's delivery state changed: its MSGSTATE row is written at the next checkpoint."""
        self._dirty[msg] = q

    def _walk(self, q: Queue, ts: int) -> Generator[Msg, None, None]:
        """The messages a receive at ``ts`` may take, in delivery order; expired ones are removed on the way.

        The consumer takes each yielded message (makes it pending, or removes it) or stops iterating; the one
        yielded last and not taken is put back when the walk is closed. Standard queues: oldest visible first.
        FIFO queues: the ready group with the oldest head, as many of its messages in order as are visible, then
        the next group. Indexes a read advanced beyond ``ts`` are corrected first, so every node decides alike.
        """
        if q.groups is None:
            early: list[Msg] = []
            last: Msg | None = None
            try:
                while True:
                    msg = q.pop_visible()
                    if msg is None:
                        return
                    if msg.visible_at > ts:  # promoted by a read whose clock ran ahead of this entry
                        early.append(msg)
                        continue
                    if msg.retain_from + q.retention_ms <= ts:  # expired, not yet swept
                        q.remove(msg)
                        self._record_delete(q, msg)
                        continue
                    last = msg
                    yield msg
            finally:
                if last is not None and last.state == VISIBLE and last.seq in q.messages:
                    heapq.heappush(q.visible, last.seq)
                for msg in early:
                    q.make_pending(msg, msg.visible_at)
        groups = q.groups
        popped: list[str] = []
        try:
            while True:
                group = groups.pop_ready(q.messages)
                if group is None:
                    return
                popped.append(group.name)
                if q.horizon > ts:
                    for seq in group.seqs:
                        msg = q.messages.get(seq)
                        if msg is not None and msg.state == VISIBLE and msg.visible_at > ts:
                            q.make_pending(msg, msg.visible_at)
                    if group.inflight:
                        continue
                for seq in list(itertools.islice(group.seqs, 0, FIFO_GROUP_SCAN)):
                    msg = q.messages.get(seq)
                    if msg is None:
                        continue
                    if msg.state != VISIBLE or msg.visible_at > ts:
                        break  # delayed or in flight: the rest of the group waits behind it
                    if msg.retain_from + q.retention_ms <= ts:
                        q.remove(msg)
                        self._record_delete(q, msg)
                        continue
                    yield msg
        finally:
            for name in popped:
                groups.touch(name, q.messages)

    def _receive(self, cmd: ReceiveMessages, meta: Meta, changes: ChangeSink) -> list[ReceivedMessage]:
        q = self._queue(cmd.account, cmd.name)
        ts = meta.ts
        q.advance(ts)
        if q.attempts:
            expire_attempts(q, ts, changes)
        if cmd.attempt_id is not None and q.fifo:
            repeated = repeat_attempt(q, cmd.attempt_id, ts)
            if repeated is not None:
                return repeated
        if q.n_inflight >= MAX_IN_FLIGHT:
            raise errors.OverLimit(f"Too many messages in flight for queue {q.name} (limit {MAX_IN_FLIGHT}).")
        wanted = min(cmd.max_messages, MAX_IN_FLIGHT - q.n_inflight)
        timeout = q.visibility_s if cmd.visibility_timeout is None else cmd.visibility_timeout
        visible_at = ts + timeout * 1000
        dlq = self._dead_letter_queue(q)
        out: list[ReceivedMessage] = []
        reply = meta.reply  # a follower applying the leader's receive discards the messages: skip building them
        count = 0
        taken: list[tuple[int, int, int]] | None = [] if cmd.attempt_id is not None and q.fifo else None
        moved = 0
        dirty = self._dirty
        with contextlib.closing(self._walk(q, ts)) as walk:
            for msg in walk:
                if dlq is not None and msg.receive_count >= dlq[1]:
                    if moved == MAX_MOVES_PER_COMMAND:
                        break  # the next receive moves the rest
                    self._move(q, msg, dlq[0], meta.index * SEQ_SLOTS + moved, ts, to_dlq=True)
                    moved += 1
                    continue
                msg.receive_count += 1
                if msg.receive_count == 1:
                    msg.first_receive_ts = ts
                msg.receipt = meta.index
                msg.received_at = ts
                q.make_pending(msg, visible_at)
                dirty[msg] = q  # its delivery state changed (_save_state, inlined: once per message received)
                if reply:
                    out.append(_new_tuple(ReceivedMessage, (
                        msg.stored, make_receipt_handle(q.queue_id, msg.seq, meta.index), msg.receive_count,
                        msg.first_receive_ts)))
                if taken is not None:  # a FIFO receive attempt remembers what it took
                    taken.append((msg.seq, meta.index, visible_at))
                count += 1
                if count >= wanted:
                    break
        if (timeout == 0 and count) or moved:
            self.wakeups.add((q.account, q.name))
        if taken and cmd.attempt_id is not None:
            record_attempt(q, cmd.attempt_id, tuple(taken), ts, changes)
        return out

    def _dead_letter_queue(self, q: Queue) -> tuple[Queue, int] | None:
        """The queue's dead-letter queue and maxReceiveCount (None: no redrive policy, or its target is gone)."""
        if q.redrive is None:
            return None
        target = self.queues.get(q.redrive[0])
        if target is None or target is q:
            return None
        return target, q.redrive[1]

    def _move(self, src: Queue, msg: Msg, dest: Queue, seq: int, ts: int, *, to_dlq: bool) -> None:
        """Move ``msg`` from ``src`` to ``dest`` as a fresh, visible message numbered ``seq`` (same MessageId, body
        and attributes). Retention keeps counting from the original enqueue time, except that a message entering
        a FIFO queue starts again (as AWS resets a FIFO message's enqueue timestamp)."""
        src.remove(msg)
        self._record_delete(src, msg)
        stored = msg.stored._replace(
            dlq_source=f"{src.account}/{src.name}" if to_dlq else None,
            enqueue_ts=ts if dest.fifo else msg.stored.enqueue_ts,
            sequence_number=str(SEQUENCE_BASE + seq) if dest.fifo else None)
        if dest.fifo and stored.group_id is None:
            stored = stored._replace(group_id="")
        moved = Msg(seq, stored, ts)
        self._dirty[moved] = dest
        dest.add(moved, ts)
        self.wakeups.add((dest.account, dest.name))

    def _resolve(self, q: Queue, handles: list[str]) -> list[tuple[Msg | None, int] | errors.BrokerError]:
        """For each receipt handle, the message it names (None if gone) and the receive it came from, or the
        error of a handle that is not one of this queue's."""
        get, queue_id = q.messages.get, q.queue_id
        return [(get(parsed[1]), parsed[2]) if parsed is not None and parsed[0] == queue_id else
                errors.ReceiptHandleIsInvalid(f'The input receipt handle "{handle}" is not a valid receipt handle.')
                for handle, parsed in zip(handles, parse_receipt_handles(handles), strict=True)]

    def _delete_messages(self, cmd: DeleteMessages, meta: Meta,
                         changes: ChangeSink) -> list[errors.BrokerError | None]:
        q = self._queue(cmd.account, cmd.name)
        results: list[errors.BrokerError | None] = []
        for found in self._resolve(q, [handle for _entry_id, handle in cmd.entries]):
            if isinstance(found, errors.BrokerError):
                results.append(found)
                continue
            msg, receive_index = found
            if msg is not None and msg.receipt == receive_index:
                q.remove(msg)
                self._record_delete(q, msg)
                if q.fifo:
                    self.wakeups.add((q.account, q.name))  # its group may deliver again
            results.append(None)
        return results

    def _change_visibility(self, cmd: ChangeVisibility, meta: Meta,
                           changes: ChangeSink) -> list[errors.BrokerError | None]:
        q = self._queue(cmd.account, cmd.name)
        ts = meta.ts
        q.advance(ts)
        results: list[errors.BrokerError | None] = []
        woke = False
        for (_entry_id, handle, timeout), found in zip(cmd.entries, self._resolve(q, [e[1] for e in cmd.entries]),
                                                      strict=True):
            if isinstance(found, errors.BrokerError):
                results.append(found)
                continue
            msg, receive_index = found
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
            self._save_state(q, msg)
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
                if msg is None or msg.retain_from > horizon:
                    break
                q.remove(msg)
                self._record_delete(q, msg)
                removed += 1
        return removed

    # -- permissions ------------------------------------------------------------------------------------------

    def _add_permission(self, cmd: AddPermission, meta: Meta, changes: ChangeSink) -> object:
        q = self._queue(cmd.account, cmd.name)
        q.attributes["Policy"] = add_statement(q.attributes.get("Policy"), cmd.label, cmd.account_ids, cmd.actions,
                                               cmd.queue_arn)
        self._save_queue(q, changes)
        return None

    def _remove_permission(self, cmd: RemovePermission, meta: Meta, changes: ChangeSink) -> object:
        q = self._queue(cmd.account, cmd.name)
        policy = remove_statement(q.attributes.get("Policy"), cmd.label)
        if policy is None:
            q.attributes.pop("Policy", None)
        else:
            q.attributes["Policy"] = policy
        self._save_queue(q, changes)
        return None

    # -- message move tasks ------------------------------------------------------------------------------------

    def is_dead_letter_queue(self, account: str, name: str) -> bool:
        return any(q.redrive is not None and q.redrive[0] == (account, name) for q in self.queues.values())

    def _start_move_task(self, cmd: StartMoveTask, meta: Meta, changes: ChangeSink) -> object:
        """Start a task; reply its id (the TaskHandle is built from it)."""
        source = self.queues.get((cmd.account, cmd.name))
        if source is None:
            raise errors.ResourceNotFoundException(
                "The resource that you specified for the SourceArn parameter doesn't exist.")
        if not self.is_dead_letter_queue(cmd.account, cmd.name):
            raise errors.InvalidParameterValue("Source queue must be configured as a Dead Letter Queue.")
        dest: tuple[str, str] | None = None
        if cmd.dest_name is not None:
            dest = (cmd.dest_account or cmd.account, cmd.dest_name)
            if dest not in self.queues:
                raise errors.ResourceNotFoundException(
                    "The resource that you specified for the DestinationArn parameter doesn't exist.")
        same_source = [t for t in self.tasks.values() if (t.account, t.name) == (cmd.account, cmd.name)]
        if any(t.status == RUNNING for t in same_source):
            raise errors.InvalidParameterValue("There is already a task running. Only one active task is allowed "
                                               "for a source queue arn at a given time.")
        for old in same_source[:max(0, len(same_source) + 1 - MAX_TASKS_PER_SOURCE)]:
            del self.tasks[old.task_id]
            changes.delete(MOVETASKS, task_key(old.task_id))
        task = MoveTask(meta.index, cmd.account, cmd.name, cmd.source_arn, dest, cmd.dest_arn, cmd.rate,
                        len(source.messages), meta.ts, meta.index * SEQ_SLOTS)
        self.tasks[task.task_id] = task
        changes.put(MOVETASKS, task_key(task.task_id), codec.pack(task.row()))
        return task.task_id

    def _move_messages(self, cmd: MoveMessages, meta: Meta, changes: ChangeSink) -> int:
        """One step of a running task; reply how many messages moved."""
        task = self.tasks.get(cmd.task_id)
        if task is None or task.status != RUNNING:
            return 0
        ts = meta.ts
        source = self.queues.get((task.account, task.name))
        if source is None:
            return self._finish(task, FAILED, changes, "AWS.SimpleQueueService.NonExistentQueue")
        source.advance(ts)
        budget = task.budget(ts, min(cmd.limit, MAX_MOVES_PER_COMMAND))
        moved = 0
        status: str | None = None
        failure: str | None = None
        if budget > 0:
            status = COMPLETED
            with contextlib.closing(self._walk(source, ts)) as walk:
                for msg in walk:
                    if msg.seq >= task.boundary:
                        break
                    dest_key = task.dest
                    if dest_key is None and msg.stored.dlq_source is not None:
                        account, _, name = msg.stored.dlq_source.partition("/")
                        dest_key = (account, name)
                    if dest_key is None:  # sent to the dead-letter queue directly: no source to go back to
                        status, failure = FAILED, "CouldNotDetermineMessageSource"
                        break
                    dest = self.queues.get(dest_key)
                    if dest is None:
                        status, failure = FAILED, "AWS.SimpleQueueService.NonExistentQueue"
                        break
                    self._move(source, msg, dest, meta.index * SEQ_SLOTS + moved, ts, to_dlq=False)
                    moved += 1
                    if moved == budget:
                        status = None  # more may be left: the next step tells
                        break
        task.moved += moved
        task.spent(moved, ts)
        if status is not None:
            return self._finish(task, status, changes, failure, moved)
        changes.put(MOVETASKS, task_key(task.task_id), codec.pack(task.row()))
        return moved

    @staticmethod
    def _finish(task: MoveTask, status: str, changes: ChangeSink, failure: str | None = None,
                moved: int = 0) -> int:
        task.status = status
        task.failure = failure
        changes.put(MOVETASKS, task_key(task.task_id), codec.pack(task.row()))
        return moved

    def _cancel_move_task(self, cmd: CancelMoveTask, meta: Meta, changes: ChangeSink) -> int:
        """Cancel a running task; reply how many messages it had moved."""
        if (cmd.account, cmd.name) not in self.queues:
            raise errors.ResourceNotFoundException(
                "The resource that you specified for the SourceArn parameter doesn't exist.")
        task = self.tasks.get(cmd.task_id)
        if task is None or (task.account, task.name) != (cmd.account, cmd.name) or task.status != RUNNING:
            raise errors.ResourceNotFoundException("Task does not exist.")
        self._finish(task, CANCELLED, changes)
        return task.moved

    def move_tasks(self, account: str, name: str) -> list[MoveTask]:
        """The tasks of one source queue, newest first."""
        return sorted((t for t in self.tasks.values() if (t.account, t.name) == (account, name)),
                      key=lambda t: -t.task_id)

    def running_tasks(self) -> list[MoveTask]:
        return [t for t in self.tasks.values() if t.status == RUNNING]

    # -- restore ----------------------------------------------------------------------------------------------

    def restore(self, reader: TableReader) -> None:
        self.queues.clear()
        self.by_id.clear()
        self.wakeups.clear()
        self.tasks.clear()
        self._dirty.clear()
        self._vanished = 0
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
            stored, visible_at = unpack_message(value)
            msg = Msg(seq, stored, visible_at)
            msg.disk = ON_DISK_MESSAGE
            state = states.get(key)
            if state is not None:
                msg.visible_at, msg.receive_count, msg.first_receive_ts, msg.receipt, msg.received_at = state
                msg.disk |= ON_DISK_STATE
            owner.add(msg, -1)
        restore_windows(self.by_id, reader)
        for _key, value in reader.scan(MOVETASKS):
            task = MoveTask.from_row(codec.unpack(value))
            self.tasks[task.task_id] = task

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
        """Whether a receive now could return a message (FIFO: some group can deliver)."""
        return self._queue(account, name).has_deliverable(now_ms)

    def has_queue(self, account: str, name: str) -> bool:
        return (account, name) in self.queues

    def has_attempt(self, account: str, name: str, attempt_id: str, now_ms: int) -> bool:
        """Whether a ReceiveRequestAttemptId retry may be answered from an earlier receive."""
        attempt = self._queue(account, name).attempts.get(attempt_id)
        return attempt is not None and attempt[0] > now_ms

    def dead_letter_sources(self, account: str, name: str) -> list[tuple[str, str]]:
        """(account, name) of the queues whose RedrivePolicy targets this one, sorted."""
        self._queue(account, name)
        target = (account, name)
        return sorted(key for key, q in self.queues.items() if q.redrive is not None and q.redrive[0] == target)

    def next_visible_at(self, account: str, name: str) -> int | None:
        """When the next delayed or in-flight message becomes visible (None: nothing pending)."""
        return self._queue(account, name).next_visible_at()

    def next_expiry_ms(self) -> int | None:
        """When the earliest message of any queue passes its retention period (None: no messages)."""
        due: int | None = None
        for q in self.queues.values():
            msg = q.oldest()
            if msg is not None:
                at = msg.retain_from + q.retention_ms
                due = at if due is None else min(due, at)
        return due

    def gauges(self, now_ms: int) -> Iterator[tuple[str, str, int, int, int]]:
        """(account, name, visible, in flight, delayed) per queue, for ``broker.metrics.register_queue_gauges``."""
        for q in list(self.queues.values()):
            q.advance(now_ms)
            yield q.account, q.name, q.n_visible, q.n_inflight, q.n_delayed

    def snapshot(self) -> dict[QueueKey, Any]:
        """A canonical, comparable view of the logical state (tests: apply-then-restore gives the same model)."""
        out: dict[Any, Any] = {"tasks": sorted(tuple(t.row()) for t in self.tasks.values())}
        for key, q in self.queues.items():
            out[key] = (q.queue_id, q.queue_type, q.attributes, q.tags, q.created_ts, q.modified_ts,
                        q.last_purge_ts, sorted(
                            (m.seq, m.stored, m.visible_at, m.receive_count, m.first_receive_ts, m.receipt,
                             m.received_at) for m in q.messages.values()), dict(q.dedup), dict(q.attempts))
        return out


def _decode_token(token: str, account: str) -> str:
    try:
        owner, _, name = base64.urlsafe_b64decode(token.encode()).decode().partition("\x00")
    except (binascii.Error, ValueError, UnicodeError):
        owner, name = "", ""
    if owner != account or not name:
        raise errors.InvalidParameterValue("Invalid NextToken value.")
    return name

