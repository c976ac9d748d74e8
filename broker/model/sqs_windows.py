"""The two 5-minute windows of a FIFO queue, kept in replicated state: deduplication and receive attempts.

Deduplication: a send whose MessageDeduplicationId (or body SHA-256, with ContentBasedDeduplication) was seen in
the last 5 minutes of replicated time, in the same queue (or group, with DeduplicationScope messageGroup), is
answered with the original message's id and sequence number and not stored. Receive attempts: a ReceiveMessage
retried with the same ReceiveRequestAttemptId returns the same messages and receipt handles while none of them was
deleted or had its visibility changed. Both windows are ordered by expiry (entries are added in time order), so
expiring them costs O(1) per entry; their rows live in the ``dedup`` and ``attempts`` tables.
"""

from __future__ import annotations

import hashlib

from broker.model import errors
from broker.model.commands import SendEntry
from broker.model.sqs_keys import ATTEMPTS, DEDUP, attempt_key, dedup_key, make_receipt_handle
from broker.model.sqs_queue import Queue
from broker.model.sqs_types import DEDUP_WINDOW_MS, SEQUENCE_BASE, ReceivedMessage, StoredMessage
from storage import codec
from storage.changes import ChangeSink, TableReader

Taken = tuple[tuple[int, int, int], ...]  # (seq, receive index, visible_at) of each message a receive returned


def deduplicate(q: Queue, e: SendEntry, stored: StoredMessage, seq: int, ts: int, changes: ChangeSink) -> object:
    """A FIFO send: the message to store (with its dedup id and sequence number), or the reply for a duplicate
    (the original's (message id, sequence number)), or the entry's error."""
    if e.group_id is None:
        return errors.MissingParameter("The request must contain the parameter MessageGroupId.")
    dedup_id = e.dedup_id
    if dedup_id is None:
        if not q.content_dedup:
            return errors.InvalidParameterValue("The queue should either have ContentBasedDeduplication enabled "
                                                "or MessageDeduplicationId provided explicitly")
        dedup_id = hashlib.sha256(e.body.encode("utf-8")).hexdigest()
    key = (e.group_id if q.dedup_by_group else "", dedup_id)
    original = q.dedup.get(key)
    if original is not None:
        return (original[0], original[1])
    sequence_number = str(SEQUENCE_BASE + seq)
    expires = ts + DEDUP_WINDOW_MS
    q.dedup[key] = (e.message_id, sequence_number, expires)
    q.dedup_order.append((expires, key))
    changes.put(DEDUP, dedup_key(q.queue_id, *key), codec.pack([e.message_id, sequence_number, expires]))
    return stored._replace(dedup_id=dedup_id, sequence_number=sequence_number)


def expire_dedup(q: Queue, ts: int, changes: ChangeSink) -> None:
    order = q.dedup_order
    while order and order[0][0] <= ts:
        _, key = order.popleft()
        q.dedup.pop(key, None)
        changes.delete(DEDUP, dedup_key(q.queue_id, *key))


def record_attempt(q: Queue, attempt_id: str, taken: Taken, ts: int, changes: ChangeSink) -> None:
    expires = ts + DEDUP_WINDOW_MS
    q.attempts[attempt_id] = (expires, taken)
    q.attempt_order.append((expires, attempt_id))
    changes.put(ATTEMPTS, attempt_key(q.queue_id, attempt_id), codec.pack([expires, [list(t) for t in taken]]))


def expire_attempts(q: Queue, ts: int, changes: ChangeSink) -> None:
    order = q.attempt_order
    while order and order[0][0] <= ts:
        expires, attempt_id = order.popleft()
        current = q.attempts.get(attempt_id)
        if current is not None and current[0] == expires:  # not replaced by a later attempt with that id
            del q.attempts[attempt_id]
            changes.delete(ATTEMPTS, attempt_key(q.queue_id, attempt_id))


def repeat_attempt(q: Queue, attempt_id: str, ts: int) -> list[ReceivedMessage] | None:
    """The messages of an earlier receive with this ReceiveRequestAttemptId, if none of them was deleted or had
    its visibility changed since (then the retry returns the same messages and receipt handles)."""
    attempt = q.attempts.get(attempt_id)
    if attempt is None:
        return None
    out: list[ReceivedMessage] = []
    for seq, receipt, visible_at in attempt[1]:
        msg = q.messages.get(seq)
        if msg is None or msg.receipt != receipt or msg.visible_at != visible_at or visible_at <= ts:
            return None
        out.append(ReceivedMessage(msg.stored, make_receipt_handle(q.queue_id, seq, receipt), msg.receive_count,
                                   msg.first_receive_ts))
    return out


def drop_windows(q: Queue, changes: ChangeSink) -> None:
    """Delete the rows of a queue that is being deleted."""
    for group, dedup_id in q.dedup:
        changes.delete(DEDUP, dedup_key(q.queue_id, group, dedup_id))
    for attempt_id in q.attempts:
        changes.delete(ATTEMPTS, attempt_key(q.queue_id, attempt_id))


def restore_windows(by_id: dict[int, Queue], reader: TableReader) -> None:
    """Both windows of every queue from the tables, each in expiry order."""
    dedups: list[tuple[int, Queue, tuple[str, str], str, str]] = []
    for key, value in reader.scan(DEDUP):
        queue_id_text, group, dedup_id = key.decode().split("\x00")
        owner = by_id.get(int(queue_id_text))
        if owner is not None:
            message_id, sequence_number, expires = codec.unpack(value)
            dedups.append((expires, owner, (group, dedup_id), message_id, sequence_number))
    dedups.sort(key=lambda d: d[0])
    for expires, owner, dkey, message_id, sequence_number in dedups:
        owner.dedup[dkey] = (message_id, sequence_number, expires)
        owner.dedup_order.append((expires, dkey))
    attempts: list[tuple[int, Queue, str, Taken]] = []
    for key, value in reader.scan(ATTEMPTS):
        queue_id_text, attempt_id = key.decode().split("\x00")
        owner = by_id.get(int(queue_id_text))
        if owner is not None:
            expires, taken = codec.unpack(value)
            attempts.append((expires, owner, attempt_id, tuple((s, r, v) for s, r, v in taken)))
    attempts.sort(key=lambda a: a[0])
    for expires, owner, attempt_id, taken_ in attempts:
        owner.attempts[attempt_id] = (expires, taken_)
        owner.attempt_order.append((expires, attempt_id))
