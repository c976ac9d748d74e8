"""Abuse limits against a real ``raftmq serve``: an announced 1 GB body is refused without being read, chunked
bodies are cut at the cap, slowloris connections are closed after the (shortened) timeouts, the connection cap
refuses the next connection, and boto3 over a per-key rate limit gets each service's throttling error (and retries
it by itself when allowed to) while another key goes on. Between every abuse, normal requests are served."""

from __future__ import annotations

import json
import socket
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.integration.conftest import make_client
from tests.integration.helpers import error_code, http_status
from tests.integration.server import RaftMQServer, serving

ACCOUNT = "111111111111"
FAST = ("AKIAFAST0000000001", "fast-secret")
SLOW = ("AKIASLOW0000000001", "slow-secret")
ALLOW_ALL = {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
CREDENTIALS = {"accounts": [{"id": ACCOUNT, "users": [
    {"name": "fast", "policies": [ALLOW_ALL], "keys": [{"id": FAST[0], "secret": FAST[1]}]},
    # 3 at once, then one every 100 s: the test never waits long enough to get a token back.
    {"name": "slow", "policies": [ALLOW_ALL], "rate_limit": {"requests_per_second": 0.01, "burst": 3},
     "keys": [{"id": SLOW[0], "secret": SLOW[1]}]}]}]}
HEADER_TIMEOUT = 1.0
BODY_TIMEOUT = 1.0
SQS_CAP = 64 * 1024
SQS_JSON = "X-Amz-Target: AmazonSQS.ListQueues\r\nContent-Type: application/x-amz-json-1.0\r\n"


class LimitedServer(RaftMQServer):
    """``raftmq serve`` with a credentials file and the given limit options."""

    def __init__(self, data_dir: Path, extra: list[str]) -> None:
        super().__init__(data_dir)
        self.extra = extra

    def args(self) -> list[str]:
        return [*super().args(), *self.extra]

    def address(self) -> tuple[str, int]:
        assert self.ready is not None
        return self.ready.host, self.ready.port


def started(base: Path, extra: list[str]) -> Iterator[LimitedServer]:
    with serving(LimitedServer(base / "data", extra)) as srv:
        yield srv


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LimitedServer]:
    base = tmp_path_factory.mktemp("raftmq-limits")
    credentials = base / "credentials.json"
    credentials.write_text(json.dumps(CREDENTIALS))
    yield from started(base, ["--credentials", str(credentials), "--header-timeout", str(HEADER_TIMEOUT),
                              "--body-timeout", str(BODY_TIMEOUT), "--max-body-bytes", f"sqs={SQS_CAP}"])


@pytest.fixture(scope="module")
def capped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LimitedServer]:
    yield from started(tmp_path_factory.mktemp("raftmq-capped"), ["--max-connections", "3"])


def client(server: RaftMQServer, service: str, key: tuple[str, str], **kwargs: Any) -> Any:
    return make_client(service, server.endpoint, aws_access_key_id=key[0], aws_secret_access_key=key[1], **kwargs)


def still_serving(server: RaftMQServer) -> None:
    sqs = client(server, "sqs", FAST)
    assert sqs.list_queues()["ResponseMetadata"]["HTTPStatusCode"] == 200


def connect(server: LimitedServer) -> socket.socket:
    sock = socket.create_connection(server.address(), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def read_to_eof(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (the socket's timeout bounds the wait)."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def rejected(server: RaftMQServer, reason: str) -> float:
    with urllib.request.urlopen(server.endpoint + "/metrics", timeout=10) as reply:
        text = reply.read().decode()
    prefix = f'raftmq_rejected_requests_total{{reason="{reason}"}} '
    return next((float(line[len(prefix):]) for line in text.splitlines() if line.startswith(prefix)), 0.0)


# -- body size ---------------------------------------------------------------------------------------------------


def test_a_1gb_announced_body_is_refused_at_once_and_the_connection_closed(limited: LimitedServer) -> None:
    with connect(limited) as sock:
        started_at = time.monotonic()
        sock.sendall(f"POST / HTTP/1.1\r\nHost: h\r\n{SQS_JSON}Content-Length: 1000000000\r\n\r\n".encode()
                     + b"{" * 1000)
        answer = read_to_eof(sock)  # returns only because the server closes: it did not wait for 1 GB
        elapsed = time.monotonic() - started_at
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413 ")
    assert b"Connection: close" in head
    assert json.loads(body)["__type"] == "RequestEntityTooLarge"
    assert elapsed < 5
    assert rejected(limited, "body_too_large") >= 1
    still_serving(limited)


def test_a_chunked_body_is_cut_at_the_cap_in_the_query_protocol_too(limited: LimitedServer) -> None:
    with connect(limited) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")
        chunk = b"a" * 8192
        for _ in range(SQS_CAP // len(chunk) + 2):  # just past the cap, never the end of the body
            sock.sendall(b"2000\r\n" + chunk + b"\r\n")
        answer = read_to_eof(sock)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413 ")
    assert b"<Code>RequestEntityTooLarge</Code>" in body
    still_serving(limited)


def test_a_large_legal_message_still_goes_through(limited: LimitedServer) -> None:
    sqs = client(limited, "sqs", FAST)
    url = sqs.create_queue(QueueName="limits-large")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="x" * (SQS_CAP - 1024))
    got = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)["Messages"]
    assert len(got[0]["Body"]) == SQS_CAP - 1024


# -- slow clients ----------------------------------------------------------------------------------------------


def test_slowloris_head_is_answered_408_and_closed(limited: LimitedServer) -> None:
    before = rejected(limited, "header_timeout")
    with connect(limited) as sock:
        started_at = time.monotonic()
        sock.sendall(b"POST / HTTP/1.1\r\nHost: h\r\nX-Slow: ")
        answer = read_to_eof(sock)
        elapsed = time.monotonic() - started_at
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert HEADER_TIMEOUT * 0.9 <= elapsed < HEADER_TIMEOUT + 4
    assert rejected(limited, "header_timeout") == before + 1
    still_serving(limited)


def test_a_silent_connection_is_closed(limited: LimitedServer) -> None:
    with connect(limited) as sock:
        started_at = time.monotonic()
        assert read_to_eof(sock) == b""
        assert time.monotonic() - started_at < HEADER_TIMEOUT + 4


def test_a_trickled_body_is_answered_408(limited: LimitedServer) -> None:
    with connect(limited) as sock:
        sock.sendall(f"POST / HTTP/1.1\r\nHost: h\r\n{SQS_JSON}Content-Length: 100\r\n\r\n{{".encode())
        answer = read_to_eof(sock)
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b"RequestTimeout" in answer
    still_serving(limited)


def test_a_long_poll_outlives_the_timeouts(limited: LimitedServer) -> None:
    sqs = client(limited, "sqs", FAST)
    url = sqs.create_queue(QueueName="limits-long-poll")["QueueUrl"]
    started_at = time.monotonic()
    reply = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=3)  # 3x the header and body timeouts
    assert "Messages" not in reply
    assert time.monotonic() - started_at >= 2.9


# -- connections -------------------------------------------------------------------------------------------------


def test_the_connection_cap_refuses_the_next_connection(capped: LimitedServer) -> None:
    held = [connect(capped) for _ in range(3)]
    try:
        with connect(capped) as extra:
            answer = read_to_eof(extra)
        assert answer.startswith(b"HTTP/1.1 503 ")
        assert b"ServiceUnavailable" in answer
        for sock in held:  # the admitted ones are served normally
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: h\r\n\r\n")
            assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
        held.pop().close()
        # Once the server has seen that close, a new connection is admitted again.
        deadline = time.monotonic() + 10
        while True:
            with connect(capped) as sock:
                sock.sendall(b"GET /health HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
                if read_to_eof(sock).startswith(b"HTTP/1.1 200 "):
                    break
            assert time.monotonic() < deadline, "a slot never came free"
        assert rejected(capped, "connection_limit") >= 1
    finally:
        for sock in held:
            sock.close()


# -- rate limits -------------------------------------------------------------------------------------------------


def test_a_key_over_its_rate_gets_each_services_throttling_error(limited: LimitedServer) -> None:
    slow = {service: client(limited, service, SLOW) for service in ("sqs", "sns", "sts", "kinesis")}
    fast_sqs = client(limited, "sqs", FAST)
    for _ in range(3):  # the burst
        slow["sqs"].list_queues()
    before = rejected(limited, "rate_limit")
    calls: dict[str, Callable[[Any], Any]] = {"sqs": lambda c: c.list_queues(), "sns": lambda c: c.list_topics(),
             "sts": lambda c: c.get_caller_identity(), "kinesis": lambda c: c.list_streams()}
    expected = {"sqs": ("RequestThrottled", 403), "sns": ("Throttling", 400), "sts": ("Throttling", 400),
                "kinesis": ("LimitExceededException", 400)}
    for service, call in calls.items():
        with pytest.raises(ClientError) as info:
            call(slow[service])
        assert (error_code(info.value), http_status(info.value)) == expected[service], service
        assert fast_sqs.list_queues()["ResponseMetadata"]["HTTPStatusCode"] == 200  # another key is not throttled
    assert rejected(limited, "rate_limit") == before + 4
    # Allowed to retry, botocore recognises the throttling and retries by itself (standard and legacy modes).
    for mode in ("standard", "legacy"):
        retrying = client(limited, "sqs", SLOW, config=Config(retries={"mode": mode, "total_max_attempts": 2}))
        with pytest.raises(ClientError) as info:
            retrying.list_queues()
        assert info.value.response["ResponseMetadata"]["RetryAttempts"] == 1, mode
    still_serving(limited)
