"""Operating the broker: the startup line, STS, /health and /metrics, the AWS CLI, and graceful shutdown.

The module server runs with a non-default account id so the tests prove ``--account-id`` reaches STS, queue URLs
and ARNs.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.conftest import DUMMY_KEY, DUMMY_SECRET, REGION, make_client
from tests.integration.helpers import http_request
from tests.integration.server import RaftMQServer, ServerError, serving

ACCOUNT = "123456789012"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RaftMQServer]:
    with serving(RaftMQServer(tmp_path_factory.mktemp("raftmq-ops") / "data", account_id=ACCOUNT)) as srv:
        yield srv


# -- Startup line ----------------------------------------------------------------------------------------------------

def test_ready_line_names_the_real_ports_and_data_dir(server: RaftMQServer) -> None:
    ready = server.ready
    assert ready is not None
    assert server.stdout_lines.count(ready.raw) == 1
    assert ready.host == "127.0.0.1" and ready.grpc_host == "127.0.0.1"
    assert ready.port > 0 and ready.grpc_port > 0 and ready.port != ready.grpc_port
    assert ready.endpoint == f"http://127.0.0.1:{ready.port}"
    assert Path(ready.data_dir).is_absolute()
    assert Path(ready.data_dir).resolve() == server.data_dir.resolve()
    assert ready.node == "n1"
    for port in (ready.port, ready.grpc_port):  # both announced ports accept connections
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass


# -- STS -------------------------------------------------------------------------------------------------------------

def test_sts_get_caller_identity_reports_the_configured_account(server: RaftMQServer) -> None:
    sts = make_client("sts", server.endpoint)
    identity = sts.get_caller_identity()
    assert identity["Account"] == ACCOUNT
    assert identity["Arn"].startswith("arn:aws:") and ACCOUNT in identity["Arn"]
    assert identity["UserId"]


def test_account_id_shapes_queue_urls_and_arns(sqs: Any, server: RaftMQServer, queue_name: str) -> None:
    url = sqs.create_queue(QueueName=queue_name)["QueueUrl"]
    assert url == f"{server.endpoint}/{ACCOUNT}/{queue_name}"
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    assert arn == f"arn:aws:sqs:{REGION}:{ACCOUNT}:{queue_name}"


# -- /health and /metrics --------------------------------------------------------------------------------------------

def test_health_is_ok(server: RaftMQServer) -> None:
    response = http_request(server.endpoint + "/health")
    assert response.status == 200
    assert json.loads(response.body) == {"status": "ok"}


def scrape(server: RaftMQServer) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = http_request(server.endpoint + "/metrics")
    assert response.status == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(response.body.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def requests_total(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], service: str, action: str,
                   status: str) -> float:
    key = ("raftmq_requests_total", (("action", action), ("service", service), ("status", status)))
    return samples.get(key, 0.0)


def test_metrics_count_requests_per_action_and_status(sqs: Any, server: RaftMQServer, queue_name: str) -> None:
    before = scrape(server)
    for _ in range(3):
        sqs.list_queues(QueueNamePrefix=queue_name)
    with pytest.raises(sqs.exceptions.QueueDoesNotExist):
        sqs.get_queue_url(QueueName=queue_name)
    make_client("sts", server.endpoint).get_caller_identity()
    after = scrape(server)
    assert requests_total(after, "sqs", "ListQueues", "200") - requests_total(before, "sqs", "ListQueues", "200") == 3
    assert requests_total(after, "sqs", "GetQueueUrl", "400") - requests_total(before, "sqs", "GetQueueUrl", "400") == 1
    assert (requests_total(after, "sts", "GetCallerIdentity", "200")
            - requests_total(before, "sts", "GetCallerIdentity", "200")) == 1
    latency_count = ("raftmq_request_seconds_count", (("action", "ListQueues"), ("service", "sqs")))
    assert after[latency_count] >= 3


def test_metrics_show_durable_commits(sqs: Any, server: RaftMQServer, queue_name: str) -> None:
    url = sqs.create_queue(QueueName=queue_name)["QueueUrl"]
    fsyncs = ("raftmq_fsync_seconds_count", ())
    before = scrape(server).get(fsyncs, 0.0)
    for i in range(3):
        sqs.send_message(QueueUrl=url, MessageBody=f"durable {i}")  # each acknowledged only after an fsync
    assert scrape(server)[fsyncs] >= before + 3


def test_metrics_show_queue_depth_gauges(sqs: Any, server: RaftMQServer, queue_name: str) -> None:
    url = sqs.create_queue(QueueName=queue_name)["QueueUrl"]
    sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": "x"} for i in range(3)])
    sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=600)
    sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, VisibilityTimeout=600)
    samples = scrape(server)
    labels = (("account", ACCOUNT), ("queue", queue_name))
    assert samples[("raftmq_queue_messages", labels)] == 2
    assert samples[("raftmq_queue_messages_in_flight", labels)] == 1
    assert samples[("raftmq_queue_messages_delayed", labels)] == 1


# -- AWS CLI ---------------------------------------------------------------------------------------------------------

def aws_cli(server: RaftMQServer, tmp_path: Path, *args: str) -> Any:
    """Run ``aws sqs ...`` (AWS CLI v1, the test dependency) in a clean environment; return its parsed JSON."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ACCESS_KEY_ID=DUMMY_KEY, AWS_SECRET_ACCESS_KEY=DUMMY_SECRET, AWS_DEFAULT_REGION=REGION,
               AWS_CONFIG_FILE=str(tmp_path / "no-config"), AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "no-creds"),
               AWS_PAGER="", AWS_MAX_ATTEMPTS="1")
    cmd = [sys.executable, "-m", "awscli", "sqs", *args, "--endpoint-url", server.endpoint, "--output", "json"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, f"{' '.join(args)} failed ({done.returncode}): {done.stderr}"
    return json.loads(done.stdout) if done.stdout.strip() else {}


def test_aws_cli_round_trip(sqs: Any, server: RaftMQServer, queue_name: str, tmp_path: Path) -> None:
    url = aws_cli(server, tmp_path, "create-queue", "--queue-name", queue_name)["QueueUrl"]
    assert url == f"{server.endpoint}/{ACCOUNT}/{queue_name}"
    sent = aws_cli(server, tmp_path, "send-message", "--queue-url", url, "--message-body", "from the cli",
                   "--message-attributes", '{"k": {"DataType": "String", "StringValue": "v"}}')
    assert sent["MessageId"]
    received = aws_cli(server, tmp_path, "receive-message", "--queue-url", url, "--wait-time-seconds", "5",
                       "--message-attribute-names", "All", "--attribute-names", "All")
    [message] = received["Messages"]
    assert message["MessageId"] == sent["MessageId"]
    assert message["Body"] == "from the cli"
    assert message["MessageAttributes"] == {"k": {"DataType": "String", "StringValue": "v"}}
    assert message["Attributes"]["ApproximateReceiveCount"] == "1"
    aws_cli(server, tmp_path, "delete-message", "--queue-url", url, "--receipt-handle", message["ReceiptHandle"])
    listed = aws_cli(server, tmp_path, "list-queues", "--queue-name-prefix", queue_name)
    assert listed["QueueUrls"] == [url]
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert (attrs["ApproximateNumberOfMessages"], attrs["ApproximateNumberOfMessagesNotVisible"]) == ("0", "0")


# -- Graceful shutdown -----------------------------------------------------------------------------------------------

@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[RaftMQServer]:
    """A server this test may stop (the module's one must outlive it)."""
    srv = RaftMQServer(tmp_path / "data")
    srv.start()
    try:
        yield srv
    finally:
        srv.close()


def test_sigterm_ends_an_open_long_poll_empty_and_exits_zero(own_server: RaftMQServer) -> None:
    sqs: Any = make_client("sqs", own_server.endpoint)
    url = sqs.create_queue(QueueName="shutdown")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="kept")
    sqs.receive_message(QueueUrl=url, VisibilityTimeout=600)  # in flight: the poll below must find nothing
    poller: Any = make_client("sqs", own_server.endpoint)
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(poller.receive_message, QueueUrl=url, WaitTimeSeconds=20)
        done, _ = wait([future], timeout=0.3)
        assert not done, "the long poll did not wait"
        t_term = time.monotonic()
        os.kill(own_server.pid, signal.SIGTERM)
        response = future.result(timeout=10)
        t_returned = time.monotonic()
    assert response.get("Messages", []) == []
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert t_returned - t_term < 2.0, "the long poll was not ended promptly at shutdown"
    assert own_server.wait(15) == 0, own_server.stderr_text()


def test_sigint_exits_zero_and_state_survives_a_clean_restart(own_server: RaftMQServer) -> None:
    sqs: Any = make_client("sqs", own_server.endpoint)
    url = sqs.create_queue(QueueName="survivor", Attributes={"VisibilityTimeout": "17"},
                           tags={"keep": "me"})["QueueUrl"]
    sent = sqs.send_message(QueueUrl=url, MessageBody="still here")
    os.kill(own_server.pid, signal.SIGINT)
    assert own_server.wait(15) == 0, own_server.stderr_text()
    own_server.start()
    sqs = make_client("sqs", own_server.endpoint)
    url = sqs.get_queue_url(QueueName="survivor")["QueueUrl"]
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout"])["Attributes"]
    assert attrs == {"VisibilityTimeout": "17"}
    assert sqs.list_queue_tags(QueueUrl=url)["Tags"] == {"keep": "me"}
    [message] = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)["Messages"]
    assert (message["MessageId"], message["Body"]) == (sent["MessageId"], "still here")
    own_server.stop()


def test_a_second_server_on_the_same_data_dir_is_refused(own_server: RaftMQServer) -> None:
    """Two writers on one LMDB directory would corrupt it; the second must fail fast, not serve."""
    second = RaftMQServer(own_server.data_dir, ready_timeout=20)
    try:
        with pytest.raises(ServerError):
            second.start()
        assert second.returncode not in (None, 0, -signal.SIGKILL), "it should exit by itself with an error"
    finally:
        second.close()
    assert own_server.running
    assert http_request(own_server.endpoint + "/health").status == 200

