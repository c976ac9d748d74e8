"""Scenario scripts in ``testdata/*.txt`` (command, ``----``, expected output), in the style of etcd-io/raft.

Regenerate the expected outputs after an intended behaviour change with ``RAFTMQ_REWRITE=1 python -m pytest
tests/cluster/test_scenarios.py`` and review the diff: the diff IS the behaviour change.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.cluster.interaction import run_script

TESTDATA = Path(__file__).parent / "testdata"
SCRIPTS = sorted(TESTDATA.glob("*.txt"))


def test_there_are_scenarios() -> None:
    names = {p.stem for p in SCRIPTS}
    assert {"campaign", "prevote", "checkquorum", "log_conflict", "snapshot", "membership", "transfer_leader",
            "read_index"} <= names


@pytest.mark.parametrize("path", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_scenario(path: Path) -> None:
    text = path.read_text()
    actual = run_script(text)
    if os.environ.get("RAFTMQ_REWRITE") == "1":
        path.write_text(actual)
        return
    assert actual == text
