"""The harness's wire client and the sqs-cycle loop, against botocore and a fake server with known answers."""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import AsyncIterator, Callable
from typing import Any

import botocore.auth
import pytest
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from benchmarks.awsjson import AwsError, AwsJsonClient, Target
from benchmarks.fakesqs import FakeSqs, start
from benchmarks.http1 import HttpConnection, HttpConnectionError
from benchmarks.pacing import Pacer, closed
from benchmarks.scenarios.sqs_cycle import SqsCycle
from benchmarks.sigv4 import SigV4Signer
from benchmarks.stats import WorkerStats

FIXED = datetime.datetime(2026, 11, 28, 15, 27, 55, tzinfo=datetime.UTC)


def parse_request(raw: bytes) -> tuple[str, dict[str, str], bytes]:
    head, body = raw.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, value = line.split(": ", 1)
        assert name.lower() not in headers, f"duplicate header {name}"
        headers[name.lower()] = value
    return lines[0], headers, body


def test_request_is_signed_exactly_like_botocore(monkeypatch: pytest.MonkeyPatch) -> None:
    target = Target("http://127.0.0.1:4566", "eu-west-1", "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    client = AwsJsonClient(target, clock=lambda: FIXED.strftime("%Y%m%dT%H%M%SZ"))
    body = b'{"QueueUrl": "http://127.0.0.1:4566/000000000000/q", "Entries": [{"Id": "0", "MessageBody": "hi"}]}'
    line, headers, sent_body = parse_request(client.build_request("SendMessageBatch", body))
    assert line == "POST / HTTP/1.1" and sent_body == body
    assert headers["content-length"] == str(len(body))
    assert headers["x-amz-target"] == "AmazonSQS.SendMessageBatch"
    assert headers["content-type"] == "application/x-amz-json-1.0"
    assert headers["x-amzn-query-mode"] == "true"

    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: FIXED.replace(tzinfo=None))
    request = AWSRequest("POST", "http://127.0.0.1:4566/", data=body, headers={
        "X-Amz-Target": "AmazonSQS.SendMessageBatch", "Content-Type": "application/x-amz-json-1.0",
        "x-amzn-query-mode": "true"})
    botocore.auth.SigV4Auth(Credentials(target.access_key, target.secret_key), "sqs", "eu-west-1").add_auth(request)
    assert headers["authorization"] == request.headers["Authorization"]
    assert headers["x-amz-date"] == request.headers["X-Amz-Date"]


def test_signer_matches_the_aws_sigv4_test_suite_get_vanilla() -> None:
    signer = SigV4Signer("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "us-east-1", "service")
    expected = ("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
                "SignedHeaders=host;x-amz-date, "
                "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")
    headers = [("host", "example.amazonaws.com")]
    assert signer.authorization("20150830T123600Z", headers, b"", method="GET") == expected
    # the cached canonical parts must not leak one call's date or body into the next
    other = signer.authorization("20150831T000000Z", headers, b"x", method="GET")
    assert other != expected and "20150831/us-east-1" in other
    assert signer.authorization("20150830T123600Z", headers, b"", method="GET") == expected


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeSqs, Target]]:
    sqs = FakeSqs(receive_count=3)
    server = await start(sqs)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield sqs, Target(f"http://127.0.0.1:{port}")


def after_sends(sqs: FakeSqs, n: int) -> Pacer:
    """Stop a connection's closed loop once it has started ``n`` cycles (checked at the top of each cycle)."""
    return closed(lambda: sqs.calls["SendMessageBatch"] >= n)


async def test_cycle_counts_what_the_server_did(fake: tuple[FakeSqs, Target]) -> None:
    sqs, target = fake
    scenario = SqsCycle(batch=10)
    await scenario.setup(target)
    assert scenario.queue_url == f"{target.endpoint}/000000000000/{scenario.queue_url.rsplit('/', 1)[1]}"
    stats = WorkerStats("deleted")
    await scenario.run_connection(target, stats, after_sends(sqs, 5), 0)
    await scenario.teardown(target)
    # 5 cycles: 10 sent each; the fake always returns 3 messages, all deleted
    assert stats.counters == {"sent": 50, "received": 15, "deleted": 15}
    assert stats.errors == {}
    assert {k: h.count for k, h in stats.latency.items()} == {
        "SendMessageBatch": 5, "ReceiveMessage": 5, "DeleteMessageBatch": 5}
    assert sqs.entries == {"sent": 50, "received": 15, "deleted": 15}
    assert sqs.calls["CreateQueue"] == 1 and sqs.calls["DeleteQueue"] == 1
    assert sqs.last_headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=")


async def test_failed_delete_entries_are_errors_not_throughput(fake: tuple[FakeSqs, Target]) -> None:
    sqs, target = fake
    sqs.delete_failures = 1
    scenario = SqsCycle(batch=10, queue_url=f"{target.endpoint}/000000000000/q")
    stats = WorkerStats("deleted")
    await scenario.run_connection(target, stats, after_sends(sqs, 4), 0)
    assert stats.counters == {"sent": 40, "received": 12, "deleted": 8}
    assert stats.errors == {"DeleteMessageBatch:ReceiptHandleIsInvalid": 4}


async def test_empty_receives_skip_the_delete(fake: tuple[FakeSqs, Target]) -> None:
    sqs, target = fake
    sqs.receive_count = 0
    scenario = SqsCycle(batch=5, queue_url=f"{target.endpoint}/000000000000/q")
    stats = WorkerStats("deleted")
    await scenario.run_connection(target, stats, after_sends(sqs, 3), 0)
    assert stats.counters == {"sent": 15, "empty_receives": 3}
    assert sqs.calls["DeleteMessageBatch"] == 0


class _Faulty(FakeSqs):
    """Receives fail with QueueDoesNotExist on odd calls and carry a wrong MD5 on even calls."""

    def handle(self, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        status, result = super().handle(headers, body)
        if headers.get("x-amz-target") == "AmazonSQS.ReceiveMessage":
            if self.calls["ReceiveMessage"] % 2:
                return 400, {"__type": "com.amazonaws.sqs#QueueDoesNotExist", "message": "gone"}
            result["Messages"][0]["MD5OfBody"] = "0" * 32
        return status, result


async def test_http_errors_and_md5_mismatches_are_counted_by_code() -> None:
    sqs = _Faulty(receive_count=2)
    server = await start(sqs)
    target = Target(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}")
    async with server:
        stats = WorkerStats("deleted")
        await SqsCycle(queue_url="u").run_connection(target, stats, after_sends(sqs, 4), 0)
    assert stats.errors == {"ReceiveMessage:QueueDoesNotExist": 2, "ReceiveMessage:MD5Mismatch": 2}
    assert stats.counters == {"sent": 40, "received": 4, "deleted": 4}
    assert stats.latency["ReceiveMessage"].count == 2  # failed calls are not in the latency histogram


async def test_connection_refused_is_counted_and_the_loop_goes_on() -> None:
    server = await asyncio.get_running_loop().create_server(asyncio.Protocol, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    stats = WorkerStats("deleted")
    await SqsCycle(queue_url="u").run_connection(Target(f"http://127.0.0.1:{port}"), stats,
                                                 closed(lambda: sum(stats.errors.values()) >= 4), 0)
    assert stats.errors == {"SendMessageBatch:ConnectionError": 2, "ReceiveMessage:ConnectionError": 2}
    assert stats.counters == {}


async def test_call_decodes_results_and_raises_aws_errors(fake: tuple[FakeSqs, Target]) -> None:
    _, target = fake
    client = AwsJsonClient(target)
    try:
        assert (await client.call("CreateQueue", {"QueueName": "abc"}))["QueueUrl"].endswith("/000000000000/abc")
        with pytest.raises(AwsError) as err:
            await client.call("NoSuchThing", {})
        assert (err.value.status, err.value.code) == (400, "InvalidAction")
        assert client.connection.connects == 1  # both calls on one keep-alive connection
    finally:
        client.close()


async def _serve_raw(handler: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Any]) -> asyncio.Server:
    return await asyncio.start_server(handler, "127.0.0.1", 0)


async def test_http_client_handles_chunked_dribbled_responses_and_reconnects() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        response = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\nX-Thing: A\r\n\r\n"
                    b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
        for i in range(len(response)):  # one byte per write: the parser must reassemble
            writer.write(response[i:i + 1])
            await writer.drain()
        writer.close()

    server = await _serve_raw(handler)
    conn = HttpConnection("127.0.0.1", server.sockets[0].getsockname()[1])
    async with server:
        for _ in range(2):
            resp = await conn.request(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert (resp.status, resp.body, resp.headers["x-thing"]) == (200, b"hello world", "A")
        conn.close()
    assert conn.connects == 2  # the server said Connection: close, so the client reconnected


async def test_http_client_times_out_and_reports_early_close() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # never answers; returns when the client gives up and closes
        writer.close()

    async def rude(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort")
        writer.close()

    for handler, error in ((silent, TimeoutError), (rude, HttpConnectionError)):
        server = await _serve_raw(handler)
        conn = HttpConnection("127.0.0.1", server.sockets[0].getsockname()[1], timeout=0.2)
        async with server:
            with pytest.raises(error):
                await conn.request(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            conn.close()
