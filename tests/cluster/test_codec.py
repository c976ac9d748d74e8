"""The protobuf codec round-trips every message shape exactly, including checksums (so corruption stays visible)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cluster.core.codec import (
    CodecError,
    decode_batch,
    decode_entry,
    decode_hard_state,
    decode_message,
    encode_batch,
    encode_entry,
    encode_hard_state,
    encode_message,
)
from cluster.core.messages import Message, MsgType, SnapshotChunk
from cluster.core.types import ConfState, Entry, EntryType, HardState, SnapshotMeta
from proto.cluster.v1 import raft_pb2 as pb

u64 = st.integers(min_value=0, max_value=2**64 - 1)
small = st.integers(min_value=0, max_value=2**40)
ids = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=8)
entries = st.builds(
    Entry, index=small, term=small, type=st.sampled_from(EntryType), data=st.binary(max_size=64),
    ts=st.integers(min_value=-(2**62), max_value=2**62),
)
confs = st.builds(ConfState, voters=st.frozensets(ids, max_size=5), learners=st.frozensets(ids, max_size=3))
chunks = st.builds(SnapshotChunk, meta=st.builds(SnapshotMeta, index=small, term=small, conf_state=confs),
                   offset=small, data=st.binary(max_size=64), done=st.booleans())
messages = st.builds(
    Message, type=st.sampled_from(MsgType), frm=ids, to=ids, term=u64, group_id=u64, cluster_id=st.text(max_size=12),
    log_term=u64, index=u64, entries=st.lists(entries, max_size=4).map(tuple), commit=u64, reject=st.booleans(),
    reject_hint=u64, context=st.binary(max_size=16), snapshot=st.none() | chunks,
)


@given(messages)
def test_message_round_trip(m: Message) -> None:
    assert decode_message(encode_message(m)) == m


@given(st.lists(messages, max_size=5))
def test_batch_round_trip(ms: list[Message]) -> None:
    assert decode_batch(encode_batch(ms)) == ms


@given(entries)
def test_entry_round_trip_keeps_checksum(e: Entry) -> None:
    back = decode_entry(encode_entry(e))
    assert back == e and back.valid()


def test_corrupted_entry_stays_detectable_after_a_round_trip() -> None:
    e = Entry(7, 3, EntryType.NORMAL, b"payload", 1234)
    bad = replace(e, data=b"pAyload")
    back = decode_entry(encode_entry(bad))
    assert back.crc == e.crc and not back.valid()


@given(st.builds(HardState, term=u64, vote=ids, commit=u64))
def test_hard_state_round_trip(hs: HardState) -> None:
    assert decode_hard_state(encode_hard_state(hs)) == hs


def test_enum_numbers_match_the_proto() -> None:
    for t in MsgType:
        assert pb.MessageType.Value("MSG_" + t.name) == int(t)
    for et in EntryType:
        assert pb.EntryType.Value("ENTRY_" + et.name) == int(et)


@pytest.mark.parametrize("data", [b"\xff\xff\xff", b"\x08\x63"])  # garbage; an unknown message type (99)
def test_garbage_is_a_codec_error(data: bytes) -> None:
    with pytest.raises(CodecError):
        decode_message(data)
