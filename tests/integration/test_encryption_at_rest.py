"""Encryption at rest end to end: bodies and records sealed in every file of the data directory, opened for readers.

One server on one data directory lives through the whole story, restarted with different key files: the key file
as written, then with a rotated key (a second version), without the key file, with wrong key material, and with the
right file again. Plaintext markers are searched for in the raw bytes of every file (Raft/commit log and LMDB state
alike); the unencrypted queue's marker must be found, which proves the scan can see plaintext.
"""

from __future__ import annotations

import base64
import json
import os
import struct
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from broker.client import Client
from tests.integration.conftest import make_client
from tests.integration.helpers import error_code, md5_of_body, receive_until
from tests.integration.server import RaftMQServer

KEY_ID = "4f1c2d9e-7a33-4c61-9d0e-2b8f6a1c5e70"
DISABLED_ID = "0b7e8a51-2c4d-4e6f-8a9b-1c2d3e4f5a6b"
V1 = os.urandom(32)
V2 = os.urandom(32)


def _write_keys(path: Path, versions: list[bytes]) -> Path:
    doc = {"keys": [
        {"id": KEY_ID, "aliases": ["alias/orders"], "versions": [base64.b64encode(v).decode() for v in versions]},
        {"id": DISABLED_ID, "aliases": ["alias/off"], "enabled": False,
         "versions": [base64.b64encode(os.urandom(32)).decode()]},
    ]}
    path.write_text(json.dumps(doc))
    return path


def _raw_data(data_dir: Path) -> bytes:
    """Every byte of every file under the data directory."""
    return b"".join(p.read_bytes() for p in sorted(data_dir.rglob("*")) if p.is_file())


def _sealed_prefix(version: int) -> bytes:
    """The base64 text a body sealed under KEY_ID ``version`` starts with in storage (after the NUL prefix)."""
    header = b"RMK1" + struct.pack(">I", version) + bytes((len(KEY_ID),)) + KEY_ID.encode()
    return base64.b64encode(header)[:len(header) // 3 * 4]


def _code(call: Any) -> str:
    with pytest.raises(ClientError) as info:
        call()
    return error_code(info.value)


class Env:
    def __init__(self, tmp: Path) -> None:
        self.data = tmp / "data"
        self.keys = _write_keys(tmp / "keys.json", [V1])
        self.server = RaftMQServer(self.data, extra_args=["--kms-keys", str(self.keys)])
        self.sqs: Any = None
        self.kinesis: Any = None
        self.grpc = ""

    def start(self, extra: list[str]) -> None:
        self.server.extra_args = extra
        ready = self.server.restart()
        self.sqs = make_client("sqs", ready.endpoint)
        self.kinesis = make_client("kinesis", ready.endpoint)
        self.grpc = f"127.0.0.1:{ready.grpc_port}"

    def url(self, name: str) -> str:
        return str(self.sqs.get_queue_url(QueueName=name)["QueueUrl"])


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    e = Env(tmp_path_factory.mktemp("encryption"))
    try:
        yield e
    finally:
        e.server.close()


def _records(kinesis: Any) -> list[bytes]:
    shard = kinesis.list_shards(StreamName="sealed")["Shards"][0]["ShardId"]
    iterator = kinesis.get_shard_iterator(StreamName="sealed", ShardId=shard,
                                          ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    return [r["Data"] for r in kinesis.get_records(ShardIterator=iterator)["Records"]]


def test_encryption_at_rest_across_restarts_and_key_files(env: Env, tmp_path: Path) -> None:
    env.start(["--kms-keys", str(env.keys)])
    marks = {name: f"{name}-plaintext-{uuid.uuid4().hex}" for name in ("sse", "kms", "plain", "fifo", "stream", "grpc")}
    sqs, kinesis = env.sqs, env.kinesis
    sse = sqs.create_queue(QueueName="sse")["QueueUrl"]  # SqsManagedSseEnabled defaults to true, as on AWS
    kms = sqs.create_queue(QueueName="kms", Attributes={"KmsMasterKeyId": "alias/orders",
                                                         "VisibilityTimeout": "1"})["QueueUrl"]
    plain = sqs.create_queue(QueueName="plain", Attributes={"SqsManagedSseEnabled": "false"})["QueueUrl"]
    fifo = sqs.create_queue(QueueName="sse.fifo", Attributes={"FifoQueue": "true",
                                                              "ContentBasedDeduplication": "true"})["QueueUrl"]
    # AWS accepts any KmsMasterKeyId when it is set; sends then fail with the KMS error.
    missing = sqs.create_queue(QueueName="missing", Attributes={"KmsMasterKeyId": "alias/nope"})["QueueUrl"]
    off = sqs.create_queue(QueueName="off", Attributes={"KmsMasterKeyId": f"arn:aws:kms:us-east-1:000000000000:"
                                                                          f"key/{DISABLED_ID}"})["QueueUrl"]
    assert _code(lambda: sqs.send_message(QueueUrl=missing, MessageBody="x")) == "KmsNotFound"
    assert _code(lambda: sqs.send_message(QueueUrl=off, MessageBody="x")) == "KmsDisabled"

    for name, url in (("sse", sse), ("kms", kms), ("plain", plain)):
        for i in range(2):
            sent = sqs.send_message(QueueUrl=url, MessageBody=f"{marks[name]}-{i}")
            assert sent["MD5OfMessageBody"] == md5_of_body(f"{marks[name]}-{i}")
    first = sqs.send_message(QueueUrl=fifo, MessageBody=marks["fifo"], MessageGroupId="g")
    again = sqs.send_message(QueueUrl=fifo, MessageBody=marks["fifo"], MessageGroupId="g")
    assert again["MessageId"] == first["MessageId"]  # content-based deduplication hashes the plaintext
    sqs.create_queue(QueueName="grpc")
    with Client(env.grpc) as client:  # the gRPC Queues API shares the data path: sealed and opened alike
        client.send("grpc", [marks["grpc"]])
        (got_grpc,) = client.receive("grpc", wait_seconds=5)
    assert got_grpc.body == marks["grpc"] and got_grpc.md5_of_body == md5_of_body(marks["grpc"])

    kinesis.create_stream(StreamName="sealed", ShardCount=1)
    kinesis.get_waiter("stream_exists").wait(StreamName="sealed", WaiterConfig={"Delay": 0.2})
    assert _code(lambda: kinesis.start_stream_encryption(StreamName="sealed", EncryptionType="KMS",
                                                         KeyId="alias/nope")) == "KMSNotFoundException"
    kinesis.start_stream_encryption(StreamName="sealed", EncryptionType="KMS", KeyId="alias/orders")
    kinesis.get_waiter("stream_exists").wait(StreamName="sealed", WaiterConfig={"Delay": 0.2})
    assert kinesis.put_record(StreamName="sealed", Data=marks["stream"].encode(),
                              PartitionKey="p")["EncryptionType"] == "KMS"
    assert _records(kinesis) == [marks["stream"].encode()]

    got = sqs.receive_message(QueueUrl=kms, MaxNumberOfMessages=1, WaitTimeSeconds=5)["Messages"]
    assert got[0]["Body"].startswith(marks["kms"]) and got[0]["MD5OfBody"] == md5_of_body(got[0]["Body"])
    sqs.delete_message(QueueUrl=kms, ReceiptHandle=got[0]["ReceiptHandle"])
    assert [m["Body"] for m in receive_until(sqs, fifo, 1, timeout=10)] == [marks["fifo"]]
    env.server.stop()

    raw = _raw_data(env.data)
    assert f"{marks['plain']}-0".encode() in raw  # the scan sees plaintext where there is some
    for name in ("sse", "kms", "fifo", "stream", "grpc"):
        assert marks[name].encode() not in raw, f"{name} plaintext found at rest"
    assert _sealed_prefix(1) in raw

    # Rotation: a second version seals new data; the message sealed under version 1 still opens.
    _write_keys(env.keys, [V1, V2])
    env.start(["--kms-keys", str(env.keys)])
    sqs = env.sqs
    sqs.send_message(QueueUrl=env.url("kms"), MessageBody=f"{marks['kms']}-rotated")
    assert sorted(m["Body"] for m in receive_until(env.sqs, env.url("sse"), 2, timeout=10)) == [
        f"{marks['sse']}-0", f"{marks['sse']}-1"]
    env.server.stop()
    assert _sealed_prefix(2) in _raw_data(env.data)

    # Without the key file: a clear KMS error for the sealed messages and records, nothing lost, server up.
    env.start([])
    kms_url = env.url("kms")
    assert _code(lambda: env.sqs.receive_message(QueueUrl=kms_url, WaitTimeSeconds=5)) == "KmsNotFound"
    assert _code(lambda: _records(env.kinesis)) == "KMSNotFoundException"
    assert env.sqs.send_message(QueueUrl=env.url("plain"), MessageBody="still up")["MessageId"]

    # Wrong key material under the same key id: KmsInvalidState, the messages stay.
    wrong = _write_keys(tmp_path / "wrong.json", [os.urandom(32), os.urandom(32)])
    env.start(["--kms-keys", str(wrong)])
    assert _code(lambda: env.sqs.receive_message(QueueUrl=env.url("kms"), WaitTimeSeconds=5)) == "KmsInvalidState"

    # The right file again: every message and the record come back intact, version 1 and 2 alike.
    env.start(["--kms-keys", str(env.keys)])
    got = receive_until(env.sqs, env.url("kms"), 2, timeout=15)
    assert sorted(m["Body"] for m in got) == [f"{marks['kms']}-1", f"{marks['kms']}-rotated"]
    assert all(m["MD5OfBody"] == md5_of_body(m["Body"]) for m in got)
    assert _records(env.kinesis) == [marks["stream"].encode()]


def test_a_wrong_key_file_refuses_to_start_without_quoting_material(tmp_path: Path) -> None:
    keys = tmp_path / "keys.json"
    material = base64.b64encode(b"too short").decode()
    keys.write_text(json.dumps({"keys": [{"id": KEY_ID, "versions": [material]}]}))
    run = subprocess.run([sys.executable, "-m", "broker.cli", "serve", "--data-dir", str(tmp_path / "data"),
                          "--port", "0", "--grpc-port", "0", "--kms-keys", str(keys)],
                         capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert run.returncode != 0
    assert "keys[0]: versions[0]: must decode to 32 bytes" in run.stderr and material not in run.stderr
    assert not (tmp_path / "data").exists() or not any((tmp_path / "data").iterdir())
