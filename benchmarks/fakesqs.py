"""A tiny fake SQS (AWS JSON 1.0) with fixed, known behaviour: the harness's own test double and yardstick.

Why it lives here and not in tests: pointed at with ``--spawn-cmd 'python -m benchmarks.fakesqs --port {port}'``
it shows the load generator's ceiling on this machine (a server that does almost nothing), which tells whether a
figure measured the broker or the generator.

Behaviour: CreateQueue returns ``http://HOST/000000000000/NAME``; SendMessageBatch accepts every entry (correct
MD5s); ReceiveMessage always returns ``receive_count`` messages (at most MaxNumberOfMessages) with body
``fake-body-N``; DeleteMessageBatch fails the first ``delete_failures`` entries with ReceiptHandleIsInvalid and
accepts the rest; anything else is a 400 InvalidAction. Requests are counted per operation.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import itertools
import signal
from collections import Counter
from typing import Any, cast

import httptools
import orjson

_JSON_HEADERS = b"Content-Type: application/x-amz-json-1.0\r\n"
_XML_HEADERS = b"Content-Type: text/xml\r\n"


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


class FakeSqs:
    """State and answers of the fake, independent of the transport."""

    def __init__(self, receive_count: int = 10, delete_failures: int = 0) -> None:
        self.receive_count = receive_count
        self.delete_failures = delete_failures
        self.calls: Counter[str] = Counter()
        self.entries: Counter[str] = Counter()  # entries sent / returned / deleted successfully
        self.last_headers: dict[str, str] = {}
        self._ids = itertools.count()

    def handle(self, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any] | bytes]:
        """(status, JSON result, or an XML answer as bytes) of one request."""
        self.last_headers = headers
        op = headers.get("x-amz-target", "").removeprefix("AmazonSQS.")
        self.calls[op] += 1
        try:
            req = orjson.loads(body) if body else {}
        except orjson.JSONDecodeError:
            return 400, {"__type": "com.amazonaws.sqs#InvalidRequest", "message": "bad JSON"}
        if op == "CreateQueue":
            return 200, {"QueueUrl": f"http://{headers.get('host', '')}/000000000000/{req['QueueName']}"}
        if op == "DeleteQueue":
            return 200, {}
        if op == "SendMessageBatch":
            ok = [{"Id": e["Id"], "MessageId": f"m{next(self._ids)}", "MD5OfMessageBody": _md5(e["MessageBody"])}
                  for e in req["Entries"]]
            self.entries["sent"] += len(ok)
            return 200, {"Successful": ok}
        if op == "ReceiveMessage":
            n = min(self.receive_count, int(req.get("MaxNumberOfMessages", 1)))
            msgs = []
            for _ in range(n):
                i = next(self._ids)
                text = f"fake-body-{i}"
                msgs.append({"MessageId": f"m{i}", "ReceiptHandle": f"rh{i}", "MD5OfBody": _md5(text), "Body": text})
            self.entries["received"] += n
            return 200, ({"Messages": msgs} if msgs else {})
        if op == "DeleteMessageBatch":
            entries = req["Entries"]
            bad = entries[: self.delete_failures]
            good = entries[self.delete_failures:]
            self.entries["deleted"] += len(good)
            return 200, {"Successful": [{"Id": e["Id"]} for e in good],
                         "Failed": [{"Id": e["Id"], "SenderFault": True, "Code": "ReceiptHandleIsInvalid",
                                     "Message": "invalid"} for e in bad]}
        return 400, {"__type": "com.amazonaws.sqs#InvalidAction", "message": f"unknown operation {op!r}"}


class _FakeProtocol(asyncio.Protocol):
    def __init__(self, fake: FakeSqs) -> None:  # or any subclass answering other protocols
        self._fake = fake
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass it

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            if self._transport is not None:
                self._transport.close()

    def on_message_begin(self) -> None:
        self._headers = {}
        self._body = []

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        status, result = self._fake.handle(self._headers, b"".join(self._body))
        payload, headers = (result, _XML_HEADERS) if isinstance(result, bytes) else (orjson.dumps(result),
                                                                                     _JSON_HEADERS)
        reason = b"OK" if status == 200 else b"Bad Request"
        assert self._transport is not None
        self._transport.write(b"HTTP/1.1 %d %s\r\n%sContent-Length: %d\r\n\r\n%s"
                              % (status, reason, headers, len(payload), payload))
        if not self._parser.should_keep_alive():
            self._transport.close()


async def start(fake: FakeSqs, host: str = "127.0.0.1", port: int = 0) -> asyncio.Server:
    """Serve ``fake`` on ``host:port`` (0 = a free port) in the running loop."""
    return await asyncio.get_running_loop().create_server(lambda: _FakeProtocol(fake), host, port)


async def _serve(args: argparse.Namespace) -> None:
    server = await start(FakeSqs(args.receive_count, args.delete_failures), args.host, args.port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fakesqs", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4566)
    parser.add_argument("--receive-count", type=int, default=10)
    parser.add_argument("--delete-failures", type=int, default=0)
    asyncio.run(_serve(parser.parse_args()))


if __name__ == "__main__":
    main()
