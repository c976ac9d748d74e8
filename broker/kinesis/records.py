"""Reading records back from the durable ``kinesis_records`` table (only committed, applied records are there).

Counters of a shard are contiguous, so a read walks ``get`` from a counter until a limit or the first missing key;
``TableReader`` offers no range scan from an arbitrary key, and point gets on LMDB cost a few microseconds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from broker.model.kinesis_keys import RECORDS, parse_record_value, record_key
from storage.changes import TableReader

MAX_BYTES = 10 << 20  # GetRecords returns at most 10 MiB


class StoredRecord(NamedTuple):
    counter: int
    partition_key: str
    data: bytes  # plaintext
    arrival_ms: int
    encrypted: bool = False  # stored sealed (stream encryption was on when it was written)


Unseal = Callable[[bytes], bytes]


def read_records(reader: TableReader, stream_id: int, shard_index: int, start: int, last: int, limit: int,
                 max_bytes: int = MAX_BYTES, unseal: Unseal | None = None) -> list[StoredRecord]:
    """Records ``start..last`` (at most ``limit`` and ``max_bytes``, at least one if any), in counter order;
    ``unseal`` opens records stored encrypted."""
    out: list[StoredRecord] = []
    size = 0
    counter = start
    while counter <= last and len(out) < limit:
        raw = reader.get(RECORDS, record_key(stream_id, shard_index, counter))
        if raw is None:
            break
        partition_key, data, arrival, sealed = parse_record_value(raw)
        size += len(data) + len(partition_key)
        if out and size > max_bytes:
            break
        if sealed:
            if unseal is None:
                raise ValueError("an encrypted record was read without a key")
            data = unseal(data)
        out.append(StoredRecord(counter, partition_key, data, arrival, sealed))
        counter += 1
    return out


def first_at_or_after(reader: TableReader, stream_id: int, shard_index: int, start: int, last: int,
                      ts_ms: int) -> int:
    """The counter of the first record from ``start`` that arrived at or after ``ts_ms`` (``last + 1``: none)."""
    counter = start
    while counter <= last:
        raw = reader.get(RECORDS, record_key(stream_id, shard_index, counter))
        if raw is not None and parse_record_value(raw)[2] >= ts_ms:
            return counter
        counter += 1
    return counter
