"""Fixtures for real-process cluster fault tests: a started cluster that is always torn down, proxy included."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster_e2e.cluster import Cluster
from tests.integration.server import RaftMQServer

SLOW = os.environ.get("RAFTMQ_SLOW") == "1"


def _cluster(tmp_path: Path, size: int) -> Iterator[Cluster]:
    c = Cluster(tmp_path, size)
    try:
        c.start()
        yield c
    finally:
        c.close()


@pytest.fixture
def cluster3(tmp_path: Path) -> Iterator[Cluster]:
    yield from _cluster(tmp_path, 3)


@pytest.fixture
def cluster5(tmp_path: Path) -> Iterator[Cluster]:
    yield from _cluster(tmp_path, 5)


@pytest.fixture(scope="session", autouse=True)
def _no_orphan_servers() -> Iterator[None]:
    yield
    RaftMQServer.kill_all()
