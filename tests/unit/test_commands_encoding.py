"""Every registered command, with any field values its annotations allow, decodes to an identical command.

Identical down to the types (repr tells NamedTuples from tuples and tuples from lists): a node that applies a
decoded command must behave exactly as the proposer that built it."""

from __future__ import annotations

import dataclasses
import typing

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import broker.model.group_commands
import broker.model.kinesis_commands
import broker.model.sns_commands  # noqa: F401  (each command module registers its commands on import)
from broker.model.commands import REGISTRY, Command, decode, encode


def _every_field(cls: type[Command]) -> st.SearchStrategy[Command]:
    """Like ``st.builds(cls)``, but fields with defaults are drawn too."""
    hints = typing.get_type_hints(cls)
    assert dataclasses.is_dataclass(cls)
    return st.builds(cls, **{f.name: st.from_type(hints[f.name]) for f in dataclasses.fields(cls)})


@pytest.mark.parametrize("type_id", sorted(REGISTRY))
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_any_command_decodes_to_itself(type_id: int, data: st.DataObject) -> None:
    command = data.draw(_every_field(REGISTRY[type_id]))
    assert repr(decode(encode(command), remembered=False)) == repr(command)
