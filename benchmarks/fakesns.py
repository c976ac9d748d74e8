"""A tiny fake SNS (Query) + SQS (AWS JSON 1.0) that really fans out, to test ``sns-fanout`` against known behaviour.

Topics fan each Publish out to the queues subscribed to them (raw delivery: the body is the message); queues are
in-memory FIFOs; ReceiveMessage pops up to MaxNumberOfMessages at once and never waits; DeleteMessageBatch accepts
every entry. ``published``, ``delivered`` (popped by a receive) and ``deleted`` are counted, so a test can check that
the harness counted exactly what the server did. Served by ``fakesqs.start``.
"""

from __future__ import annotations

import hashlib
import itertools
from collections import deque
from typing import Any
from urllib.parse import parse_qsl

import orjson

from benchmarks.fakesqs import FakeSqs

ACCOUNT = "000000000000"


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


class FakeSns(FakeSqs):
    def __init__(self) -> None:
        super().__init__()
        self.queues: dict[str, deque[str]] = {}  # queue name -> bodies
        self.topics: dict[str, list[str]] = {}  # topic ARN -> subscribed queue names
        self._handles = itertools.count()

    def handle(self, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any] | bytes]:
        if headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            return self._query(dict(parse_qsl(body.decode())))
        op = headers.get("x-amz-target", "").removeprefix("AmazonSQS.")
        self.calls[op] += 1
        req = orjson.loads(body) if body else {}
        name = str(req.get("QueueUrl", "")).rsplit("/", 1)[-1]
        if op == "CreateQueue":
            self.queues.setdefault(req["QueueName"], deque())
            return 200, {"QueueUrl": f"http://{headers.get('host', '')}/{ACCOUNT}/{req['QueueName']}"}
        if op == "GetQueueAttributes":
            return 200, {"Attributes": {"QueueArn": f"arn:aws:sqs:us-east-1:{ACCOUNT}:{name}"}}
        if op == "DeleteQueue":
            self.queues.pop(name, None)
            return 200, {}
        if op == "ReceiveMessage":
            queue = self.queues[name]
            n = min(len(queue), int(req.get("MaxNumberOfMessages", 1)))
            bodies = [queue.popleft() for _ in range(n)]
            self.entries["delivered"] += n
            return 200, {"Messages": [{"MessageId": f"m{h}", "ReceiptHandle": f"rh{h}", "MD5OfBody": _md5(b),
                                       "Body": b} for b, h in zip(bodies, self._handles, strict=False)]}
        if op == "DeleteMessageBatch":
            self.entries["deleted"] += len(req["Entries"])
            return 200, {"Successful": [{"Id": e["Id"]} for e in req["Entries"]]}
        return 400, {"__type": "com.amazonaws.sqs#InvalidAction", "message": f"unknown operation {op!r}"}

    def _query(self, form: dict[str, str]) -> tuple[int, bytes]:
        action = form.get("Action", "")
        self.calls[action] += 1
        if action == "CreateTopic":
            arn = f"arn:aws:sns:us-east-1:{ACCOUNT}:{form['Name']}"
            self.topics.setdefault(arn, [])
            return 200, f"<CreateTopicResponse><CreateTopicResult><TopicArn>{arn}</TopicArn></CreateTopicResult>" \
                        "</CreateTopicResponse>".encode()
        if action == "Subscribe":
            assert form["Attributes.entry.1.key"] == "RawMessageDelivery" and form["Protocol"] == "sqs"
            self.topics[form["TopicArn"]].append(form["Endpoint"].rsplit(":", 1)[-1])
            return 200, b"<SubscribeResponse><SubscribeResult><SubscriptionArn>x</SubscriptionArn></SubscribeResult>" \
                        b"</SubscribeResponse>"
        if action == "Publish":
            queues = self.topics.get(form.get("TopicArn", ""))
            if queues is None:
                return 400, b"<ErrorResponse><Error><Code>NotFound</Code><Message>no topic</Message></Error>" \
                            b"</ErrorResponse>"
            for queue in queues:
                self.queues[queue].append(form["Message"])
            self.entries["published"] += 1
            return 200, b"<PublishResponse><PublishResult><MessageId>m</MessageId></PublishResult></PublishResponse>"
        if action == "DeleteTopic":
            self.topics.pop(form["TopicArn"], None)
            return 200, b"<DeleteTopicResponse/>"
        return 400, f"<ErrorResponse><Error><Code>InvalidAction</Code><Message>{action}</Message></Error>" \
                    "</ErrorResponse>".encode()
