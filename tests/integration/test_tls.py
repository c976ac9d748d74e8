"""A real server with ``--tls-cert``/``--tls-key``: boto3 and the AWS CLI over HTTPS trusting the CA (and failing
with another CA), ``aws:SecureTransport`` true in policies over TLS only, the Python gRPC client over TLS."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, SSLError

from broker.certs import create_ca, issue
from broker.client import Client
from broker.client.errors import RaftMQError
from tests.integration.server import RaftMQServer

REGION = "us-east-1"
ACCOUNT = "111111111111"
ROOT = ("AKIATLSROOT0000001", "tls-root-secret")
TLS_ONLY = ("AKIATLSONLY0000001", "tls-only-secret")
# The usual "deny anything not over TLS" policy of AWS's documentation.
TLS_ONLY_POLICY = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "sqs:*", "Resource": "*"},
    {"Effect": "Deny", "Action": "sqs:*", "Resource": "*", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]})
CREDENTIALS = {"accounts": [{"id": ACCOUNT, "root_keys": [{"id": ROOT[0], "secret": ROOT[1]}], "users": [
    {"name": "tls-only", "policies": [TLS_ONLY_POLICY], "keys": [{"id": TLS_ONLY[0], "secret": TLS_ONLY[1]}]}]}]}


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pki")
    create_ca(root / "ca")
    create_ca(root / "other")
    issue(root / "ca", "server", ["127.0.0.1", "localhost"])
    return root


def _server(base: Path, name: str, args: list[str]) -> RaftMQServer:
    return RaftMQServer(base / name, account_id=ACCOUNT, region=REGION, extra_args=args)


@pytest.fixture(scope="module")
def servers(pki: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, RaftMQServer]]:
    """``https``: TLS + credentials; ``plain``: the same credentials in clear; ``dev``: TLS, dev mode (gRPC)."""
    base = tmp_path_factory.mktemp("tls-servers")
    credentials = base / "credentials.json"
    credentials.write_text(json.dumps(CREDENTIALS))
    tls = ["--tls-cert", str(pki / "ca" / "server.pem"), "--tls-key", str(pki / "ca" / "server.key")]
    made = {"https": _server(base, "https", [*tls, "--credentials", str(credentials)]),
            "plain": _server(base, "plain", ["--credentials", str(credentials)]),
            "dev": _server(base, "dev", tls)}
    try:
        for srv in made.values():
            srv.start()
        yield made
    finally:
        for srv in made.values():
            srv.close()


def sqs(server: RaftMQServer, key: tuple[str, str], verify: str | bool) -> Any:
    return boto3.session.Session().client(
        "sqs", endpoint_url=server.endpoint, region_name=REGION, aws_access_key_id=key[0],
        aws_secret_access_key=key[1], verify=verify,
        config=Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=5, read_timeout=30))


def test_https_endpoint_serves_boto3_that_trusts_the_ca(servers: dict[str, RaftMQServer], pki: Path) -> None:
    server = servers["https"]
    assert server.endpoint.startswith("https://127.0.0.1:")
    client = sqs(server, ROOT, str(pki / "ca" / "ca.pem"))
    url = client.create_queue(QueueName="over-tls")["QueueUrl"]
    assert url == f"{server.endpoint}/{ACCOUNT}/over-tls"
    client.send_message(QueueUrl=url, MessageBody="secret payload")
    [message] = client.receive_message(QueueUrl=url, WaitTimeSeconds=2)["Messages"]
    assert message["Body"] == "secret payload"
    sts = boto3.session.Session().client("sts", endpoint_url=server.endpoint, region_name=REGION,
                                         aws_access_key_id=ROOT[0], aws_secret_access_key=ROOT[1],
                                         verify=str(pki / "ca" / "ca.pem"))
    assert sts.get_caller_identity()["Account"] == ACCOUNT


def test_a_client_trusting_another_ca_cannot_connect(servers: dict[str, RaftMQServer], pki: Path) -> None:
    with pytest.raises(SSLError):
        sqs(servers["https"], ROOT, str(pki / "other" / "ca.pem")).list_queues()
    with pytest.raises(SSLError):  # nor one trusting only the system roots
        sqs(servers["https"], ROOT, True).list_queues()


def test_secure_transport_is_true_over_tls_only(servers: dict[str, RaftMQServer], pki: Path) -> None:
    over_tls = sqs(servers["https"], TLS_ONLY, str(pki / "ca" / "ca.pem"))
    assert "QueueUrl" in over_tls.create_queue(QueueName="tls-only")
    with pytest.raises(ClientError) as denied:
        sqs(servers["plain"], TLS_ONLY, False).create_queue(QueueName="tls-only")
    assert denied.value.response["Error"]["Code"] == "AccessDenied"
    assert "explicit deny" in denied.value.response["Error"]["Message"]


def _aws(server: RaftMQServer, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ACCESS_KEY_ID=ROOT[0], AWS_SECRET_ACCESS_KEY=ROOT[1], AWS_DEFAULT_REGION=REGION,
               AWS_CONFIG_FILE=str(tmp_path / "no-config"), AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "no-creds"),
               AWS_PAGER="", AWS_MAX_ATTEMPTS="1")
    cmd = [sys.executable, "-m", "awscli", "sqs", *args, "--endpoint-url", server.endpoint, "--output", "json"]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60, check=False)


def test_aws_cli_with_ca_bundle(servers: dict[str, RaftMQServer], pki: Path, tmp_path: Path) -> None:
    server = servers["https"]
    done = _aws(server, tmp_path, "create-queue", "--queue-name", "from-cli", "--ca-bundle", str(pki / "ca" / "ca.pem"))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["QueueUrl"] == f"{server.endpoint}/{ACCOUNT}/from-cli"
    refused = _aws(server, tmp_path, "list-queues", "--ca-bundle", str(pki / "other" / "ca.pem"))
    assert refused.returncode != 0 and "SSL" in refused.stderr


def test_grpc_client_over_tls(servers: dict[str, RaftMQServer], pki: Path) -> None:
    ready = servers["dev"].ready
    assert ready is not None
    address = f"127.0.0.1:{ready.grpc_port}"
    with Client(address, tls_ca_file=str(pki / "ca" / "ca.pem")) as client:
        client.create_queue("grpc-tls")
        client.send("grpc-tls", ["over grpc tls"])
        [message] = client.receive("grpc-tls", wait_seconds=2)
        assert message.body == "over grpc tls"
    for options in ({}, {"tls_ca_file": str(pki / "other" / "ca.pem")}):  # clear text; a CA that did not sign it
        with Client(address, retries=0, timeout_s=5, **options) as wrong, pytest.raises(RaftMQError) as failed:
            wrong.list_queues()
        assert failed.value.retryable  # UNAVAILABLE: the connection never came up


@pytest.mark.parametrize(("args", "says"), [
    (["--tls-cert", "{ca}/server.pem", "--tls-key", "{ca}/ca.key"], "--tls-cert/--tls-key"),
    (["--peers", "n1=127.0.0.1:1", "--tls-cert", "{ca}/server.pem", "--tls-key", "{ca}/server.key"],
     "also needs --cluster-ca"),
    (["--join", "--peers", "n1=127.0.0.1:1", "--cluster-ca", "{ca}/ca.pem", "--node-cert", "{ca}/server.pem",
      "--node-key", "{ca}/server.key"], "list n9 in --peers"),
])
def test_serve_refuses_inconsistent_tls_options(pki: Path, tmp_path: Path, args: list[str], says: str) -> None:
    argv = [a.format(ca=pki / "ca") for a in args]
    done = subprocess.run([sys.executable, "-m", "broker.cli", "serve", "--node-id", "n9", "--data-dir",
                           str(tmp_path / "data"), "--port", "0", "--grpc-port", "0", *argv],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1, done.stderr
    assert "raftmq: cannot start:" in done.stderr and says in done.stderr
