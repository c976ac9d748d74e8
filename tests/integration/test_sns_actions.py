"""SNS actions and their errors over boto3 not covered elsewhere, the UnsubscribeURL, and pending HTTP deliveries
surviving kill -9."""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.integration.conftest import make_client, unique_name
from tests.integration.helpers import error_code, receive_until
from tests.integration.server import RaftMQServer

FAKE_QUEUE = "arn:aws:sqs:us-east-1:000000000000:"


@pytest.fixture(scope="module")
def sns(server: RaftMQServer) -> Any:
    return make_client("sns", server.endpoint)


def _fails(call: Any, code: str, **kwargs: Any) -> str:
    with pytest.raises(ClientError) as exc:
        call(**kwargs)
    assert error_code(exc.value) == code, exc.value.response
    return str(exc.value.response["Error"]["Message"])


def test_list_subscriptions_pages(sns: Any) -> None:
    topic = sns.create_topic(Name=unique_name("many"))["TopicArn"]
    arns = {sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=f"{FAKE_QUEUE}q{i}")["SubscriptionArn"]
            for i in range(105)}
    for call, kwargs in ((sns.list_subscriptions_by_topic, {"TopicArn": topic}), (sns.list_subscriptions, {})):
        seen: set[str] = set()
        token: dict[str, str] = {}
        pages = 0
        while True:
            out = call(**kwargs, **token)
            pages += 1
            seen.update(s["SubscriptionArn"] for s in out["Subscriptions"])
            if "NextToken" not in out:
                break
            token = {"NextToken": out["NextToken"]}
        assert arns <= seen and pages >= 2


def test_subscription_errors(sns: Any) -> None:
    topic = sns.create_topic(Name=unique_name("suberr"))["TopicArn"]
    _fails(sns.subscribe, "NotFound", TopicArn=topic + "x", Protocol="sqs", Endpoint=f"{FAKE_QUEUE}a")
    assert "FilterPolicy" in _fails(sns.subscribe, "InvalidParameter", TopicArn=topic, Protocol="sqs",
                                    Endpoint=f"{FAKE_QUEUE}a", Attributes={"FilterPolicy": '{"a": [{"x": 1}]}'})
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=f"{FAKE_QUEUE}a", Attributes={"RawMessageDelivery": "true"})
    assert "different attributes" in _fails(sns.subscribe, "InvalidParameter", TopicArn=topic, Protocol="sqs",
                                            Endpoint=f"{FAKE_QUEUE}a",
                                            Attributes={"RawMessageDelivery": "false"})
    _fails(sns.unsubscribe, "NotFound", SubscriptionArn=f"{topic}:00000000-0000-4000-8000-000000000000")
    _fails(sns.unsubscribe, "InvalidParameter", SubscriptionArn="garbage")
    assert _fails(sns.confirm_subscription, "InvalidParameter", TopicArn=topic, Token="nope") == \
        "Invalid token"
    _fails(sns.get_subscription_attributes, "InvalidParameter", SubscriptionArn="arn:aws:sns:nope")


def test_topic_attribute_errors(sns: Any) -> None:
    topic = sns.create_topic(Name=unique_name("taerr"))["TopicArn"]
    _fails(sns.set_topic_attributes, "InvalidParameter", TopicArn=topic, AttributeName="FifoTopic",
           AttributeValue="true")
    _fails(sns.set_topic_attributes, "InvalidParameter", TopicArn=topic, AttributeName="ContentBasedDeduplication",
           AttributeValue="true")
    _fails(sns.set_topic_attributes, "InvalidParameter", TopicArn=topic, AttributeName="DeliveryPolicy",
           AttributeValue=json.dumps({"http": {"defaultHealthyRetryPolicy": {"minDelayTarget": 30,
                                                                             "maxDelayTarget": 10}}}))
    _fails(sns.set_topic_attributes, "InvalidParameter", TopicArn=topic, AttributeName="DeliveryPolicy",
           AttributeValue=json.dumps({"http": {"defaultRequestPolicy": {"headerContentType": "image/png"}}}))
    _fails(sns.set_topic_attributes, "NotFound", TopicArn=topic + "x", AttributeName="DisplayName",
           AttributeValue="d")
    _fails(sns.publish, "InvalidParameter", PhoneNumber="+15555550100", Message="m")
    _fails(sns.add_permission, "InvalidParameter", TopicArn=topic, Label="l", AWSAccountId=["111122223333"],
           ActionName=["Fly"])
    sns.add_permission(TopicArn=topic, Label="l", AWSAccountId=["111122223333"], ActionName=["Subscribe"])
    _fails(sns.add_permission, "InvalidParameter", TopicArn=topic, Label="l", AWSAccountId=["111122223333"],
           ActionName=["Publish"])


def test_fifo_topic_attributes_and_errors(sns: Any) -> None:
    topic = sns.create_topic(Name=unique_name("f") + ".fifo", Attributes={"FifoTopic": "true"})["TopicArn"]
    attrs = sns.get_topic_attributes(TopicArn=topic)["Attributes"]
    assert (attrs["FifoTopic"], attrs["ContentBasedDeduplication"]) == ("true", "false")
    assert "ContentBasedDeduplication" in _fails(sns.publish, "InvalidParameter", TopicArn=topic, Message="m",
                                                 MessageGroupId="g")
    sns.set_topic_attributes(TopicArn=topic, AttributeName="ContentBasedDeduplication", AttributeValue="true")
    first = sns.publish(TopicArn=topic, Message="m", MessageGroupId="g")
    assert sns.publish(TopicArn=topic, Message="m", MessageGroupId="g")["MessageId"] == first["MessageId"]
    assert len(first["SequenceNumber"]) == 20


def test_unsubscribe_url_unsubscribes(sns: Any, server: RaftMQServer) -> None:
    sqs = make_client("sqs", server.endpoint)
    url = sqs.create_queue(QueueName=unique_name("uq"))["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    topic = sns.create_topic(Name=unique_name("unsub"))["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    sns.publish(TopicArn=topic, Message="m")
    [msg] = receive_until(sqs, url, 1, timeout=5)
    with urllib.request.urlopen(json.loads(msg["Body"])["UnsubscribeURL"], timeout=5) as response:
        assert response.status == 200
    assert sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"] == []


class _Flaky(BaseHTTPRequestHandler):
    """Answers notifications with 503 until ``healthy`` is set; records tokens and what it accepted or refused."""

    url = ""
    healthy = threading.Event()
    tokens: list[str] = []
    accepted: list[str] = []
    refused: list[str] = []
    got = threading.Condition()

    def do_POST(self) -> None:
        doc = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        ok = self.healthy.is_set() or doc["Type"] != "Notification"
        with self.got:
            if doc["Type"] == "SubscriptionConfirmation":
                self.tokens.append(doc["Token"])
            else:
                (self.accepted if ok else self.refused).append(doc["Message"])
            self.got.notify_all()
        self.send_response(200 if ok else 503)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def flaky() -> Iterator[type[_Flaky]]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    _Flaky.url = f"http://127.0.0.1:{httpd.server_address[1]}/"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield _Flaky
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def test_pending_http_delivery_survives_kill_9(tmp_path: Path, flaky: type[_Flaky]) -> None:
    srv = RaftMQServer(tmp_path / "data")
    srv.start()
    try:
        client = make_client("sns", srv.endpoint)
        topic = client.create_topic(Name="durable")["TopicArn"]
        client.subscribe(TopicArn=topic, Protocol="http", Endpoint=flaky.url,
                         Attributes={"DeliveryPolicy": json.dumps({"healthyRetryPolicy": {
                             "minDelayTarget": 1, "maxDelayTarget": 1, "numRetries": 50}})})
        with flaky.got:
            assert flaky.got.wait_for(lambda: bool(flaky.tokens), 10)
        client.confirm_subscription(TopicArn=topic, Token=flaky.tokens[0])
        client.publish(TopicArn=topic, Message="before the crash")
        with flaky.got:
            assert flaky.got.wait_for(lambda: bool(flaky.refused), 10)  # one attempt failed
        srv.kill9()
        flaky.healthy.set()
        srv.restart()
        with flaky.got:
            assert flaky.got.wait_for(lambda: "before the crash" in flaky.accepted, 15)
    finally:
        if srv.running:
            srv.stop()
        srv.close()
