"""SNS deliveries end to end: filter policies over N queues, FIFO topics into FIFO queues, HTTP subscribers that
confirm, verify signatures and fail before succeeding, and the dead-letter queue after the last retry."""

from __future__ import annotations

import itertools
import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from broker.model.sns_envelope import string_to_sign
from broker.sns.signing import verify
from tests.integration.conftest import make_client, unique_name
from tests.integration.helpers import receive_until
from tests.integration.server import RaftMQServer


@pytest.fixture(scope="module")
def sns(server: RaftMQServer) -> Any:
    return make_client("sns", server.endpoint)


@pytest.fixture(scope="module")
def sqs_client(server: RaftMQServer) -> Any:
    return make_client("sqs", server.endpoint)


def _queue(sqs_client: Any, fifo: bool = False) -> tuple[str, str]:
    name = unique_name("q") + (".fifo" if fifo else "")
    url = sqs_client.create_queue(QueueName=name, Attributes={"FifoQueue": "true"} if fifo else {})["QueueUrl"]
    arn = sqs_client.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


FILTERS: list[tuple[str, dict[str, Any], set[str]]] = [
    ("MessageAttributes", {"store": ["example_corp"]}, {"m0", "m1"}),
    ("MessageAttributes", {"price_usd": [{"numeric": [">=", 100]}]}, {"m0"}),
    ("MessageAttributes", {"event": [{"anything-but": "order_placed"}]}, {"m1"}),
    ("MessageAttributes", {"interests": ["rugby"]}, {"m0", "m2"}),
    ("MessageAttributes", {"absent": [{"exists": False}], "event": [{"prefix": "order"}]}, {"m0", "m1"}),
    ("MessageBody", {"order": {"region": [{"equals-ignore-case": "EU"}]}}, {"m1"}),
    ("MessageBody", {"$or": [{"order": {"total": [{"numeric": ["<", 10]}]}}, {"ip": [{"cidr": "10.1.0.0/16"}]}]},
     {"m1", "m2"}),
]
MESSAGES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("m0", {"order": {"region": "us", "total": 250}, "ip": "10.0.0.1"},
     {"store": ("String", "example_corp"), "price_usd": ("Number", "210.75"), "event": ("String", "order_placed"),
      "interests": ("String.Array", '["rugby", "soccer"]')}),
    ("m1", {"order": {"region": "eu", "total": 5}, "ip": "10.0.0.2"},
     {"store": ("String", "example_corp"), "price_usd": ("Number", "5"), "event": ("String", "order_cancelled")}),
    ("m2", {"order": {"region": "ap", "total": 99}, "ip": "10.1.2.3"},
     {"store": ("String", "other"), "interests": ("String.Array", '["rugby"]')}),
]


def test_fan_out_to_queues_with_filter_policies(sns: Any, sqs_client: Any) -> None:
    topic = sns.create_topic(Name=unique_name("filters"))["TopicArn"]
    queues = []
    for scope, policy, expected in FILTERS:
        url, arn = _queue(sqs_client)
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={
            "RawMessageDelivery": "true", "FilterPolicyScope": scope, "FilterPolicy": json.dumps(policy)})
        queues.append((url, expected))
    everything, arn = _queue(sqs_client)
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"})
    for tag, body, attributes in MESSAGES:
        sns.publish(TopicArn=topic, Message=json.dumps({"tag": tag, **body}), MessageAttributes={
            name: {"DataType": kind, "StringValue": value} for name, (kind, value) in attributes.items()})
    assert len(receive_until(sqs_client, everything, 3, timeout=5)) == 3
    for (url, expected), (_, policy, _) in zip(queues, FILTERS, strict=True):
        got = {json.loads(m["Body"])["tag"] for m in receive_until(sqs_client, url, len(expected), timeout=5)}
        assert got == expected, policy
        # every matching message was enqueued by its publish: nothing more arrives later
        assert sqs_client.receive_message(QueueUrl=url, WaitTimeSeconds=0).get("Messages", []) == []


def test_fifo_topic_into_fifo_queues_keeps_order_and_dedups(sns: Any, sqs_client: Any) -> None:
    topic = sns.create_topic(Name=unique_name("ft") + ".fifo",
                             Attributes={"FifoTopic": "true", "ContentBasedDeduplication": "true"})["TopicArn"]
    urls = []
    for _ in range(2):
        url, arn = _queue(sqs_client, fifo=True)
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"})
        urls.append(url)
    sequence = []
    for i in range(12):
        out = sns.publish(TopicArn=topic, Message=f"g{i % 2}-{i}", MessageGroupId=f"g{i % 2}")
        sequence.append(int(out["SequenceNumber"]))
    assert sequence == sorted(sequence)
    dup = sns.publish(TopicArn=topic, Message="g0-0", MessageGroupId="g0")  # content-based duplicate
    assert int(dup["SequenceNumber"]) == sequence[0]
    batch = sns.publish_batch(TopicArn=topic, PublishBatchRequestEntries=[
        {"Id": "a", "Message": "g0-12", "MessageGroupId": "g0", "MessageDeduplicationId": "x12"},
        {"Id": "b", "Message": "g0-13", "MessageGroupId": "g0", "MessageDeduplicationId": "x13"}])
    assert [s["Id"] for s in batch["Successful"]] == ["a", "b"]
    expected = {g: [f"g{g}-{i}" for i in range(12) if i % 2 == g] for g in (0, 1)}
    expected[0] += ["g0-12", "g0-13"]
    for url in urls:
        got: dict[int, list[str]] = {0: [], 1: []}
        for _ in range(20):
            messages = sqs_client.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                                  AttributeNames=["MessageGroupId"]).get("Messages", [])
            for m in messages:
                got[int(m["Attributes"]["MessageGroupId"][1:])].append(m["Body"])
                sqs_client.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
            if sum(map(len, got.values())) == 14:
                break
        assert got == expected
    with pytest.raises(Exception, match="MessageGroupId"):
        sns.publish(TopicArn=topic, Message="no group")
    std = sns.create_topic(Name=unique_name("std"))["TopicArn"]
    _, fifo_arn = _queue(sqs_client, fifo=True)
    with pytest.raises(Exception, match="FIFO SQS Queues can not be subscribed"):
        sns.subscribe(TopicArn=std, Protocol="sqs", Endpoint=fifo_arn)
    with pytest.raises(Exception, match="Invalid protocol type: http"):
        sns.subscribe(TopicArn=topic, Protocol="http", Endpoint="http://127.0.0.1:1/")


@dataclass
class Received:
    at: float
    headers: dict[str, str]
    body: str


@dataclass
class Subscriber:
    """A test HTTP endpoint: confirms subscriptions, answers 500 to the first ``fail`` notifications."""

    fail: int = 0
    confirm: bool = True
    requests: list[Received] = field(default_factory=list)
    notifications: list[Received] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)

    def handle(self, headers: dict[str, str], body: str) -> int:
        got = Received(time.monotonic(), headers, body)
        with self.changed:
            self.requests.append(got)
            self.changed.notify_all()
        if headers.get("x-amz-sns-message-type") == "SubscriptionConfirmation":
            if self.confirm:
                with urllib.request.urlopen(json.loads(body)["SubscribeURL"], timeout=5) as response:
                    assert response.status == 200
            return 200
        with self.changed:
            self.notifications.append(got)
            failing = len(self.notifications) <= self.fail
            self.changed.notify_all()
        return 500 if failing else 200

    def wait(self, count: int, timeout: float) -> list[Received]:
        with self.changed:
            assert self.changed.wait_for(lambda: len(self.notifications) >= count, timeout), self.notifications
            return list(self.notifications)


@pytest.fixture
def subscriber() -> Iterator[tuple[Subscriber, str]]:
    state = Subscriber()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"])).decode()
            status = state.handle({k.lower(): v for k, v in self.headers.items()}, body)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{httpd.server_address[1]}/hook"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def _confirmed(sns: Any, topic: str) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 10
    while True:
        subs = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
        if (subs and subs[0]["SubscriptionArn"] != "PendingConfirmation") or time.monotonic() > deadline:
            return list(subs)
        time.sleep(0.05)  # polling the API the way a client would; the server offers no event for it


def test_http_subscriber_confirms_verifies_and_sees_retries(sns: Any, subscriber: tuple[Subscriber, str]) -> None:
    state, url = subscriber
    state.fail = 2
    topic = sns.create_topic(Name=unique_name("http"), Attributes={"DeliveryPolicy": json.dumps({"http": {
        "defaultHealthyRetryPolicy": {"minDelayTarget": 1, "maxDelayTarget": 2, "numRetries": 3}}})})["TopicArn"]
    assert sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=url)["SubscriptionArn"] == "pending confirmation"
    [sub] = _confirmed(sns, topic)
    assert sub["SubscriptionArn"].startswith(topic + ":")
    confirmation = json.loads(state.requests[0].body)
    assert confirmation["Type"] == "SubscriptionConfirmation" and confirmation["TopicArn"] == topic
    with urllib.request.urlopen(confirmation["SigningCertURL"], timeout=5) as response:
        cert = response.read().decode()
    assert verify(cert, string_to_sign(confirmation), confirmation["Signature"])

    out = sns.publish(TopicArn=topic, Message="over http", Subject="s",
                      MessageAttributes={"k": {"DataType": "String", "StringValue": "v"}})
    attempts = state.wait(3, timeout=15)
    for got in attempts:
        doc = json.loads(got.body)
        assert got.headers["x-amz-sns-message-type"] == "Notification"
        assert got.headers["x-amz-sns-message-id"] == out["MessageId"] == doc["MessageId"]
        assert got.headers["x-amz-sns-topic-arn"] == topic
        assert got.headers["x-amz-sns-subscription-arn"] == sub["SubscriptionArn"]
        assert doc["Message"] == "over http" and doc["MessageAttributes"] == {"k": {"Type": "String", "Value": "v"}}
        assert verify(cert, string_to_sign(doc), doc["Signature"])
    gaps = [b.at - a.at for a, b in itertools.pairwise(attempts)]
    assert gaps[0] >= 0.9 and gaps[1] >= 1.4, gaps  # linear backoff 1 s .. 2 s over three retries: 1.33, 1.67


def test_signature_version_2_and_raw_http_delivery(sns: Any, subscriber: tuple[Subscriber, str]) -> None:
    state, url = subscriber
    topic = sns.create_topic(Name=unique_name("v2"), Attributes={"SignatureVersion": "2"})["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=url)
    [sub] = _confirmed(sns, topic)
    sns.publish(TopicArn=topic, Message="signed with sha256")
    [got] = state.wait(1, timeout=10)
    doc = json.loads(got.body)
    with urllib.request.urlopen(doc["SigningCertURL"], timeout=5) as response:
        cert = response.read().decode()
    assert doc["SignatureVersion"] == "2" and verify(cert, string_to_sign(doc), doc["Signature"], "2")
    sns.set_subscription_attributes(SubscriptionArn=sub["SubscriptionArn"], AttributeName="RawMessageDelivery",
                                    AttributeValue="true")
    sns.publish(TopicArn=topic, Message="raw over http")
    raw = state.wait(2, timeout=10)[1]
    assert raw.body == "raw over http" and raw.headers["x-amz-sns-rawdelivery"] == "true"
    assert got.headers["content-type"] == "text/plain; charset=UTF-8"
    sns.set_subscription_attributes(SubscriptionArn=sub["SubscriptionArn"], AttributeName="DeliveryPolicy",
                                    AttributeValue=json.dumps({"requestPolicy": {
                                        "headerContentType": "application/json"}}))
    sns.publish(TopicArn=topic, Message="typed")
    assert state.wait(3, timeout=10)[2].headers["content-type"] == "application/json"


def test_exhausted_retries_go_to_the_dead_letter_queue(sns: Any, sqs_client: Any,
                                                       subscriber: tuple[Subscriber, str]) -> None:
    state, url = subscriber
    state.fail = 100
    topic = sns.create_topic(Name=unique_name("dlq"))["TopicArn"]
    dlq_url, dlq_arn = _queue(sqs_client)
    sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=url, Attributes={
        "DeliveryPolicy": json.dumps({"healthyRetryPolicy": {"minDelayTarget": 1, "maxDelayTarget": 1,
                                                             "numRetries": 1}}),
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn})})
    _confirmed(sns, topic)
    out = sns.publish(TopicArn=topic, Message="doomed")
    [dead] = receive_until(sqs_client, dlq_url, 1, timeout=10)
    doc = json.loads(dead["Body"])
    assert (doc["MessageId"], doc["Message"]) == (out["MessageId"], "doomed")
    assert len(state.notifications) == 2  # the first attempt and one retry


def test_unconfirmed_http_subscription_stays_pending(sns: Any, subscriber: tuple[Subscriber, str]) -> None:
    state, url = subscriber
    state.confirm = False
    topic = sns.create_topic(Name=unique_name("pending"))["TopicArn"]
    out = sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=url, ReturnSubscriptionArn=True)
    assert out["SubscriptionArn"].startswith(topic + ":")
    with state.changed:
        assert state.changed.wait_for(lambda: len(state.requests) == 1, 10)
    token = json.loads(state.requests[0].body)["Token"]
    assert sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"][0]["SubscriptionArn"] == \
        "PendingConfirmation"
    attrs = sns.get_topic_attributes(TopicArn=topic)["Attributes"]
    assert (attrs["SubscriptionsPending"], attrs["SubscriptionsConfirmed"]) == ("1", "0")
    assert sns.confirm_subscription(TopicArn=topic, Token=token)["SubscriptionArn"] == out["SubscriptionArn"]
    assert sns.get_topic_attributes(TopicArn=topic)["Attributes"]["SubscriptionsConfirmed"] == "1"
