"""The persisted value encoding: JSON where it can, CBOR where it must, and old CBOR data still readable."""

from __future__ import annotations

from typing import NamedTuple

import cbor2
from hypothesis import given
from hypothesis import strategies as st

from storage import codec


class Pair(NamedTuple):
    a: int
    b: str


scalars = (st.none() | st.booleans() | st.integers() | st.text() | st.binary()
           | st.floats(allow_nan=False, allow_infinity=False))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4)
                      | st.dictionaries(st.integers(), inner, max_size=3), max_leaves=20)


@given(values)
def test_every_value_decodes_as_cbor_would_decode_it(value: object) -> None:
    assert codec.unpack(codec.pack(value)) == cbor2.loads(cbor2.dumps(value))


@given(values)
def test_data_written_as_cbor_before_the_json_encoding_still_decodes(value: object) -> None:
    assert codec.unpack(cbor2.dumps(value)) == cbor2.loads(cbor2.dumps(value))


def test_plain_records_take_the_fast_json_path_and_others_cbor() -> None:
    assert codec.pack(["id", 1, None, [Pair(2, "x")]])[:1] == b"\x1c"
    assert codec.unpack(codec.pack(["id", 1, None, [Pair(2, "x")]])) == ["id", 1, None, [[2, "x"]]]
    assert codec.pack([b"raw"])[:1] != b"\x1c"  # bytes must stay bytes
    assert codec.unpack(codec.pack([2**70, {1: "k"}])) == [2**70, {1: "k"}]
