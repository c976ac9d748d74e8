"""Encryption at rest in a 3-node cluster: every node has the same key file; a body sealed by the node that took the
send opens on another node, and no node's data directory holds the plaintext (the log is replicated sealed)."""

from __future__ import annotations

import base64
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster_e2e.cluster import Cluster, ClusterNodeServer, Node
from tests.integration.conftest import make_client
from tests.integration.helpers import md5_of_body

KEY_ID = "4f1c2d9e-7a33-4c61-9d0e-2b8f6a1c5e70"


class _KeyedNode(ClusterNodeServer):
    key_file = ""

    def args(self) -> list[str]:
        return [*super().args(), "--kms-keys", self.key_file]


class _KeyedCluster(Cluster):
    """A cluster whose every node starts with ``--kms-keys key_file``."""

    def __init__(self, root: Path, size: int, key_file: Path) -> None:
        super().__init__(root, size)
        self.key_file = key_file

    def _make_node(self, node_id: str, port: int, peers: str, *, join: bool) -> None:
        server = _KeyedNode(self.root / node_id, node_id, peers, join=join)
        server.key_file = str(self.key_file)
        self.nodes[node_id] = Node(node_id, port, (f"127.0.1.{self._index(node_id)}", port), server)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[_KeyedCluster]:
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"keys": [{"id": KEY_ID, "aliases": ["alias/orders"],
                                          "versions": [base64.b64encode(os.urandom(32)).decode()]}]}))
    c = _KeyedCluster(tmp_path / "nodes", 3, keys)
    try:
        c.start()
        yield c
    finally:
        c.close()


def test_sealed_on_one_node_opened_on_another_and_never_in_clear(cluster: _KeyedCluster) -> None:
    leader = cluster.leader()
    writer, reader = [n for n in cluster.ids if n != leader][:2]  # followers: the send is forwarded sealed
    sqs_w = make_client("sqs", cluster.endpoint(writer))
    sqs_r = make_client("sqs", cluster.endpoint(reader))
    url = sqs_w.create_queue(QueueName="orders", Attributes={"KmsMasterKeyId": "alias/orders"})["QueueUrl"]
    sse_url = sqs_w.create_queue(QueueName="managed")["QueueUrl"]
    bodies = {url: f"kms-{uuid.uuid4().hex}", sse_url: f"sse-{uuid.uuid4().hex}"}
    for queue, body in bodies.items():
        assert sqs_w.send_message(QueueUrl=queue, MessageBody=body)["MD5OfMessageBody"] == md5_of_body(body)
    for queue, body in bodies.items():
        reader_url = queue.replace(cluster.endpoint(writer), cluster.endpoint(reader))
        got = sqs_r.receive_message(QueueUrl=reader_url, WaitTimeSeconds=10)["Messages"]
        assert [m["Body"] for m in got] == [body]
    for node_id in cluster.ids:
        cluster.wait_caught_up(node_id)
    for node_id in cluster.ids:
        cluster.stop(node_id)
    for node_id in cluster.ids:
        data = b"".join(p.read_bytes() for p in (cluster.root / node_id).rglob("*") if p.is_file())
        for body in bodies.values():
            assert body.encode() not in data, f"plaintext at rest on {node_id}"
        assert b"orders" in data  # the scan sees clear metadata (the queue's name)
