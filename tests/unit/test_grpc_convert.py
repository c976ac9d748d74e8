"""Protobuf -> send entries: the batch path's test of "body and nothing else" against every other field."""

from __future__ import annotations

import pytest

from broker.grpc_api.convert import SHORT_BODY, plain_bodies
from broker.grpc_api.queues import _entry_ids
from broker.sqs.messages import plain_send_entries, plain_send_entry
from proto.broker.v1 import queues_pb2 as pb


def _request(*entries: pb.SendEntry, queue: str = "orders") -> pb.SendRequest:
    return pb.SendRequest.FromString(pb.SendRequest(queue=queue, entries=entries).SerializeToString())


@pytest.mark.parametrize("size", [1, SHORT_BODY, SHORT_BODY + 1, 127, 128, 16_383, 16_384, 262_144])
@pytest.mark.parametrize("queue", ["orders", "", "q" * 80, "ünï"])
def test_bodies_alone_of_any_length_are_plain(size: int, queue: str) -> None:
    bodies = ["a" * size, "b", "c" * (size // 2 + 1)]
    assert plain_bodies(_request(*(pb.SendEntry(body=b) for b in bodies), queue=queue)) == bodies


@pytest.mark.parametrize("other", [
    pb.SendEntry(body="x", delay_seconds=0),  # set explicitly, even to zero: the general path checks it
    pb.SendEntry(body="x", delay_seconds=5),
    pb.SendEntry(body="x", group_id="g"),
    pb.SendEntry(body="x", deduplication_id="d"),
    pb.SendEntry(body="x", attributes={"a": pb.AttributeValue(data_type="String", string_value="v")}),
    pb.SendEntry(body=""),
    pb.SendEntry(body="line\nbreak"),  # valid in SQS, but not printable ASCII: the general path decides
    pb.SendEntry(body="caf\u00e9"),
    pb.SendEntry(body="\x01"),
], ids=["delay0", "delay", "group", "dedup", "attributes", "empty", "newline", "non-ascii", "control"])
@pytest.mark.parametrize("size", [10, 300])
def test_any_other_field_or_body_takes_the_entry_by_entry_path(other: pb.SendEntry, size: int) -> None:
    assert plain_bodies(_request(pb.SendEntry(body="a" * size), other, pb.SendEntry(body="b"))) is None


def test_batch_entries_are_the_single_entry_path_s_with_the_stored_body() -> None:
    built = plain_send_entries(["one", "two"], ["sealed-one", "sealed-two"])
    for i, (entry, text) in enumerate(zip(built, ["one", "two"], strict=True)):
        alone = plain_send_entry(str(i), text)
        assert entry._replace(message_id="", body="") == alone._replace(message_id="", body="")
        assert entry.body == f"sealed-{text}" and entry.size == len(text)
    assert len({e.message_id for e in plain_send_entries(["x"] * 100)}) == 100


def test_entry_ids_count_from_zero_for_any_batch_size() -> None:
    assert _entry_ids(3) == ("0", "1", "2") and _entry_ids(0) == ()
    assert _entry_ids(1001) == tuple(str(i) for i in range(1001))
