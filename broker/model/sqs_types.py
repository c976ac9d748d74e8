"""Plain value types and limits shared by the SQS model, its validation and the service layer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

# (name, data type, string value, binary value): exactly one of the two values is set.
MessageAttribute = tuple[str, str, str | None, bytes | None]

MAX_BATCH_ENTRIES = 10
MAX_BATCH_BYTES = 1_048_576
MAX_MESSAGE_ATTRIBUTES = 10
MAX_IN_FLIGHT = 120_000
MAX_LIST_QUEUES = 1000
PURGE_INTERVAL_MS = 60_000
MAX_RECEIVE = 10
MAX_WAIT_SECONDS = 20
MAX_VISIBILITY_TIMEOUT = 43_200
MAX_DELAY_SECONDS = 900
QUEUE_TYPE_STANDARD = 0
QUEUE_TYPE_FIFO = 1
DEDUP_WINDOW_MS = 300_000  # FIFO deduplication and ReceiveRequestAttemptId window
SEQUENCE_BASE = 10**19  # FIFO SequenceNumber = SEQUENCE_BASE + seq: an increasing 20-digit decimal string
# The messages a command at log index I stores are numbered I * SEQ_SLOTS + position: unique and increasing
# without any counter. SQS batches carry 10; the gRPC API sends up to SEQ_SLOTS in one command (one log entry).
SEQ_SLOTS = 1024
MAX_MOVES_PER_COMMAND = 16  # messages one redrive or move-task step moves (numbered like a send's)


class StoredMessage(NamedTuple):
    """The immutable part of a message, as persisted in the ``messages`` table (a tuple: cheap to build)."""

    message_id: str
    body: str
    attributes: tuple[MessageAttribute, ...]
    md5_body: str
    md5_attributes: str | None
    sent_ts: int
    sender_id: str
    system_attributes: tuple[MessageAttribute, ...] = ()  # AWSTraceHeader only, for now
    md5_system_attributes: str | None = None
    group_id: str | None = None  # MessageGroupId (FIFO; also kept when a standard queue is given one)
    dedup_id: str | None = None  # MessageDeduplicationId (FIFO: given or the body's SHA-256)
    sequence_number: str | None = None  # FIFO only
    dlq_source: str | None = None  # "account/name" of the queue it was dead-lettered from
    enqueue_ts: int | None = None  # retention counts from here when set (FIFO messages moved to a DLQ)


class ReceivedMessage(NamedTuple):
    """One message handed out by a receive: its immutable part plus the state at that receive."""

    message: StoredMessage
    receipt_handle: str
    receive_count: int
    first_receive_ts: int


@dataclass(frozen=True, slots=True)
class QueueInfo:
    """What reads return about a queue (a snapshot; attributes are the settable ones as strings)."""

    account: str
    name: str
    queue_id: int
    attributes: dict[str, str]
    tags: dict[str, str]
    created_ts: int
    modified_ts: int
