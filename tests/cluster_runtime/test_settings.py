"""The ``--peers`` syntax and the settings a node refuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from cluster.runtime import RaftReplicator, RaftSettings, parse_peers
from storage.lmdb_store import LmdbStore
from tests.cluster_runtime.harness import ListMachine


def test_peers_parse_in_order() -> None:
    assert parse_peers("n1=127.0.0.1:7001, n2=host-b:7002,n3=[::1]:7003") == {
        "n1": "127.0.0.1:7001", "n2": "host-b:7002", "n3": "[::1]:7003"}


@pytest.mark.parametrize("bad", ["", "n1", "n1=host", "n1=host:port", "=h:1", "n1=:1", "n1=h:1,n1=h:2",
                                 "a|b=h:1", "n 1=h:1"])
def test_malformed_peers_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_peers(bad)


def test_a_founding_node_must_be_among_its_peers(tmp_path: Path) -> None:
    store = LmdbStore(str(tmp_path / "db"))
    try:
        with pytest.raises(ValueError):
            RaftReplicator(store, ListMachine(), RaftSettings("n9", {"n1": "h:1", "n2": "h:2"}))
    finally:
        store.close()
