"""The SQS Query protocol byte for byte, as older SDKs send it and as AWS documents the answers.

botocore with the frozen Query model (see ``sqs_clients``) already runs the whole SQS suite over Query; these tests
go under it: SigV4-signed form bodies (``Action=...&Version=2012-11-05``) posted to the queue URL path the way the
Java v1 SDK does (no QueueUrl parameter), GET with a query string, and the XML checked element by element against
the examples in the SQS API reference: namespace ``http://queue.amazonaws.com/doc/2012-11-05/``,
``<XResponse><XResult>...</XResult><ResponseMetadata><RequestId>``, and ``<ErrorResponse><Error><Type><Code>
<Message></Error><RequestId>`` with the legacy ``AWS.SimpleQueueService.*`` codes.
"""

from __future__ import annotations

import base64
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.integration.conftest import DUMMY_KEY, DUMMY_SECRET, REGION, both_protocols, unique_name
from tests.integration.helpers import http_request, md5_of_attributes, md5_of_body
from tests.integration.server import RaftMQServer

NS = "http://queue.amazonaws.com/doc/2012-11-05/"
ACCOUNT = "000000000000"
FORM = "application/x-www-form-urlencoded; charset=utf-8"


def q(tag: str) -> str:
    """``tag`` in the SQS namespace, slash-separated paths included (for ElementTree's find)."""
    return "/".join(f"{{{NS}}}{part}" for part in tag.split("/"))


@dataclass(frozen=True, slots=True)
class XmlReply:
    status: int
    headers: dict[str, str]
    root: ET.Element

    def text(self, path: str) -> str:
        element = self.root.find(q(path))
        assert element is not None, f"no <{path}> in {ET.tostring(self.root)!r}"
        return element.text or ""

    def all(self, path: str) -> list[ET.Element]:
        return self.root.findall(q(path))


def signed_post(url: str, params: Mapping[str, str]) -> tuple[bytes, dict[str, str]]:
    """The body and headers an SDK sends: form-encoded, SigV4-signed for sqs in the test region."""
    body = urlencode(dict(params)).encode()
    request = AWSRequest(method="POST", url=url, data=body, headers={"Content-Type": FORM})
    SigV4Auth(Credentials(DUMMY_KEY, DUMMY_SECRET), "sqs", REGION).add_auth(request)
    return body, {k: str(v) for k, v in request.headers.items()}


def query(url: str, action: str, **params: str) -> XmlReply:
    """POST ``Action=<action>&Version=2012-11-05&...`` to ``url`` and parse the XML that comes back."""
    body, headers = signed_post(url, {"Action": action, "Version": "2012-11-05", **params})
    response = http_request(url, method="POST", body=body, headers=headers)
    return parse(response.status, response.headers, response.body)


def parse(status: int, headers: dict[str, str], body: bytes) -> XmlReply:
    assert headers.get("content-type", "").startswith("text/xml"), (headers, body[:300])
    return XmlReply(status, headers, ET.fromstring(body))


def assert_response(reply: XmlReply, action: str, *, result: bool = True) -> None:
    """AWS's success envelope, with the request id both in the XML and in ``x-amzn-RequestId``."""
    assert reply.status == 200, ET.tostring(reply.root)
    assert reply.root.tag == q(f"{action}Response")
    children = [child.tag for child in reply.root]
    expected = [q(f"{action}Result"), q("ResponseMetadata")] if result else [q("ResponseMetadata")]
    assert children == expected
    request_id = reply.text("ResponseMetadata/RequestId")
    assert request_id and request_id == reply.headers.get("x-amzn-requestid")


def assert_error(reply: XmlReply, status: int, code: str, kind: str = "Sender") -> str:
    """AWS's error envelope; returns the message."""
    assert reply.status == status, ET.tostring(reply.root)
    assert reply.root.tag == q("ErrorResponse")
    assert reply.text("Error/Type") == kind
    assert reply.text("Error/Code") == code
    request_id = reply.text("RequestId")
    assert request_id and request_id == reply.headers.get("x-amzn-requestid")
    message = reply.text("Error/Message")
    assert message
    return message


@pytest.fixture
def named_queue(server: RaftMQServer, request: pytest.FixtureRequest) -> tuple[str, str]:
    """(name, URL) of a fresh queue made over Query."""
    name = unique_name(request.node.name)
    reply = query(server.endpoint + "/", "CreateQueue", QueueName=name)
    assert_response(reply, "CreateQueue")
    return name, reply.text("CreateQueueResult/QueueUrl")


def test_create_queue_with_attributes_and_read_them_back(server: RaftMQServer) -> None:
    name = unique_name("query-create")
    reply = query(server.endpoint + "/", "CreateQueue", QueueName=name,
                  **{"Attribute.1.Name": "VisibilityTimeout", "Attribute.1.Value": "45",
                     "Attribute.2.Name": "DelaySeconds", "Attribute.2.Value": "3"})
    assert_response(reply, "CreateQueue")
    url = reply.text("CreateQueueResult/QueueUrl")
    assert url == f"{server.endpoint}/{ACCOUNT}/{name}"

    reply = query(url, "GetQueueAttributes", **{"AttributeName.1": "VisibilityTimeout",
                                               "AttributeName.2": "DelaySeconds", "AttributeName.3": "QueueArn"})
    assert_response(reply, "GetQueueAttributes")
    attributes = {a.findtext(q("Name")): a.findtext(q("Value"))
                  for a in reply.all("GetQueueAttributesResult/Attribute")}
    assert attributes == {"VisibilityTimeout": "45", "DelaySeconds": "3",
                          "QueueArn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"}


def test_send_posted_to_the_queue_url_matches_the_documented_example(named_queue: tuple[str, str]) -> None:
    """The API reference's SendMessage example: body "This is a test message" -> MD5 fafb00f5...; the Java v1 SDK
    posts to the queue URL and leaves QueueUrl out of the form."""
    _, url = named_queue
    reply = query(url, "SendMessage", MessageBody="This is a test message")
    assert_response(reply, "SendMessage")
    assert reply.text("SendMessageResult/MD5OfMessageBody") == "fafb00f5732ab283681e124bf8747ed1"
    uuid.UUID(reply.text("SendMessageResult/MessageId"))
    assert reply.root.find(q("SendMessageResult/MD5OfMessageAttributes")) is None


def test_fifo_send_answers_a_sequence_number(server: RaftMQServer) -> None:
    name = unique_name("query-fifo")[:70] + ".fifo"
    created = query(server.endpoint + "/", "CreateQueue", QueueName=name,
                    **{"Attribute.1.Name": "FifoQueue", "Attribute.1.Value": "true"})
    url = created.text("CreateQueueResult/QueueUrl")
    reply = query(url, "SendMessage", MessageBody="first", MessageGroupId="g", MessageDeduplicationId="d1")
    assert_response(reply, "SendMessage")
    sequence = reply.text("SendMessageResult/SequenceNumber")
    assert sequence.isdigit()
    got = query(url, "ReceiveMessage", **{"AttributeName.1": "SequenceNumber", "AttributeName.2": "MessageGroupId"})
    system = {a.findtext(q("Name")): a.findtext(q("Value"))
              for a in got.all("ReceiveMessageResult/Message/Attribute")}
    assert system == {"SequenceNumber": sequence, "MessageGroupId": "g"}


def test_message_attributes_round_trip_in_form_and_xml(named_queue: tuple[str, str]) -> None:
    _, url = named_queue
    blob = bytes(range(200))
    body = "attributes <&> \"quoted\""
    sent = query(url, "SendMessage", MessageBody=body, **{
        "MessageAttribute.1.Name": "city", "MessageAttribute.1.Value.DataType": "String",
        "MessageAttribute.1.Value.StringValue": "Zürich",
        "MessageAttribute.2.Name": "blob", "MessageAttribute.2.Value.DataType": "Binary",
        "MessageAttribute.2.Value.BinaryValue": base64.b64encode(blob).decode(),
    })
    assert_response(sent, "SendMessage")
    expected: dict[str, dict[str, Any]] = {"city": {"DataType": "String", "StringValue": "Zürich"},
                "blob": {"DataType": "Binary", "BinaryValue": blob}}
    assert sent.text("SendMessageResult/MD5OfMessageAttributes") == md5_of_attributes(expected)
    assert sent.text("SendMessageResult/MD5OfMessageBody") == md5_of_body(body)

    got = query(url, "ReceiveMessage", **{"AttributeName.1": "All", "MessageAttributeName.1": "All",
                                         "MaxNumberOfMessages": "10"})
    assert_response(got, "ReceiveMessage")
    messages = got.all("ReceiveMessageResult/Message")
    assert len(messages) == 1
    message = messages[0]
    assert message.findtext(q("MessageId")) == sent.text("SendMessageResult/MessageId")
    assert message.findtext(q("Body")) == body
    assert message.findtext(q("MD5OfBody")) == md5_of_body(body)
    assert message.findtext(q("ReceiptHandle"))
    system = {a.findtext(q("Name")): a.findtext(q("Value")) for a in message.findall(q("Attribute"))}
    assert {"SenderId", "SentTimestamp", "ApproximateReceiveCount", "ApproximateFirstReceiveTimestamp"} <= set(system)
    assert system["ApproximateReceiveCount"] == "1"
    user = {a.findtext(q("Name")): a.find(q("Value")) for a in message.findall(q("MessageAttribute"))}
    assert set(user) == {"city", "blob"}
    city, raw = user["city"], user["blob"]
    assert city is not None and raw is not None
    assert (city.findtext(q("DataType")), city.findtext(q("StringValue"))) == ("String", "Zürich")
    assert raw.findtext(q("DataType")) == "Binary"
    assert base64.b64decode(raw.findtext(q("BinaryValue")) or "") == blob
    assert message.findtext(q("MD5OfMessageAttributes")) == md5_of_attributes(expected)


def test_batch_send_reports_result_and_error_entries(named_queue: tuple[str, str]) -> None:
    _, url = named_queue
    reply = query(url, "SendMessageBatch", **{
        "SendMessageBatchRequestEntry.1.Id": "good", "SendMessageBatchRequestEntry.1.MessageBody": "fine",
        "SendMessageBatchRequestEntry.2.Id": "bad", "SendMessageBatchRequestEntry.2.MessageBody": "nul\x00",
    })
    assert_response(reply, "SendMessageBatch")
    ok = reply.all("SendMessageBatchResult/SendMessageBatchResultEntry")
    assert [e.findtext(q("Id")) for e in ok] == ["good"]
    assert ok[0].findtext(q("MD5OfMessageBody")) == md5_of_body("fine")
    uuid.UUID(ok[0].findtext(q("MessageId")) or "")
    failed = reply.all("SendMessageBatchResult/BatchResultErrorEntry")
    assert [(e.findtext(q("Id")), e.findtext(q("Code")), e.findtext(q("SenderFault"))) for e in failed] == [
        ("bad", "InvalidMessageContents", "true")]
    assert failed[0].findtext(q("Message"))


def test_receive_then_delete_has_an_empty_result(named_queue: tuple[str, str]) -> None:
    _, url = named_queue
    assert_response(query(url, "SendMessage", MessageBody="delete me"), "SendMessage")
    got = query(url, "ReceiveMessage", VisibilityTimeout="0")
    handle = got.text("ReceiveMessageResult/Message/ReceiptHandle")
    deleted = query(url, "DeleteMessage", ReceiptHandle=handle)
    assert_response(deleted, "DeleteMessage", result=False)
    empty = query(url, "ReceiveMessage", WaitTimeSeconds="0")
    assert_response(empty, "ReceiveMessage")
    assert empty.all("ReceiveMessageResult/Message") == []


def test_list_queues_lists_queue_url_elements(server: RaftMQServer) -> None:
    prefix = unique_name("query-list")
    urls = [query(server.endpoint + "/", "CreateQueue", QueueName=f"{prefix}-{i}").text("CreateQueueResult/QueueUrl")
            for i in range(3)]
    reply = query(server.endpoint + "/", "ListQueues", QueueNamePrefix=prefix)
    assert_response(reply, "ListQueues")
    assert sorted(e.text or "" for e in reply.all("ListQueuesResult/QueueUrl")) == sorted(urls)


def test_get_with_a_query_string_is_served(server: RaftMQServer, named_queue: tuple[str, str]) -> None:
    """Query requests may come as GET with the parameters in the URL (presigned URLs, hand-written tools)."""
    name, url = named_queue
    params = urlencode({"Action": "GetQueueUrl", "Version": "2012-11-05", "QueueName": name})
    response = http_request(f"{server.endpoint}/?{params}")
    reply = parse(response.status, response.headers, response.body)
    assert_response(reply, "GetQueueUrl")
    assert reply.text("GetQueueUrlResult/QueueUrl") == url


def test_queue_url_in_the_form_wins_in_any_client_form(server: RaftMQServer, named_queue: tuple[str, str]) -> None:
    """Clients that send QueueUrl use AWS's public host forms; the server serves its own queue by account/name."""
    name, url = named_queue
    for form in (f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{name}",
                 f"https://{REGION}.queue.amazonaws.com/{ACCOUNT}/{name}", url):
        assert_response(query(server.endpoint + "/", "SendMessage", QueueUrl=form, MessageBody=form),
                        "SendMessage")
    reply = query(url, "GetQueueAttributes", **{"AttributeName.1": "ApproximateNumberOfMessages"})
    assert reply.text("GetQueueAttributesResult/Attribute/Value") == "3"


# -- errors ----------------------------------------------------------------------------------------------------------

def test_nonexistent_queue_is_the_legacy_code_in_an_error_response(server: RaftMQServer) -> None:
    missing = f"{server.endpoint}/{ACCOUNT}/{unique_name('query-missing')}"
    message = assert_error(query(missing, "SendMessage", MessageBody="x"), 400,
                           "AWS.SimpleQueueService.NonExistentQueue")
    assert "does not exist" in message


def test_queue_already_exists_is_the_legacy_code(named_queue: tuple[str, str], server: RaftMQServer) -> None:
    name, _ = named_queue
    reply = query(server.endpoint + "/", "CreateQueue", QueueName=name,
                  **{"Attribute.1.Name": "VisibilityTimeout", "Attribute.1.Value": "99"})
    assert_error(reply, 400, "QueueAlreadyExists")


def test_missing_required_parameter_is_missing_parameter(named_queue: tuple[str, str]) -> None:
    _, url = named_queue
    message = assert_error(query(url, "SendMessage"), 400, "MissingParameter")
    assert "MessageBody" in message


def test_unknown_action_is_invalid_action(server: RaftMQServer) -> None:
    message = assert_error(query(server.endpoint + "/", "FlyToTheMoon"), 400, "InvalidAction")
    assert "FlyToTheMoon" in message


def test_value_of_the_wrong_type_is_a_client_error(named_queue: tuple[str, str]) -> None:
    _, url = named_queue
    reply = query(url, "ReceiveMessage", MaxNumberOfMessages="ten")
    assert 400 <= reply.status < 500 and reply.root.tag == q("ErrorResponse")
    assert reply.text("Error/Type") == "Sender"


def test_request_without_an_action_is_a_client_error(server: RaftMQServer) -> None:
    body, headers = signed_post(server.endpoint + "/", {"Version": "2012-11-05", "QueueName": "x"})
    response = http_request(server.endpoint + "/", method="POST", body=body, headers=headers)
    reply = parse(response.status, response.headers, response.body)
    # Before the action is known the service (and so its XML namespace) is not: only the element names are fixed.
    assert 400 <= reply.status < 500 and reply.root.tag.rpartition("}")[2] == "ErrorResponse"
    assert [e.text for e in reply.root.iter() if e.tag.rpartition("}")[2] == "Code"] == ["MissingAction"]


def test_the_host_part_of_the_url_does_not_matter(server: RaftMQServer, named_queue: tuple[str, str]) -> None:
    """Posting to the queue path on the server, whatever host name the client used, reaches the queue."""
    name, _ = named_queue
    port = urlsplit(server.endpoint).port
    reply = query(f"http://localhost:{port}/{ACCOUNT}/{name}", "SendMessage", MessageBody="via localhost")
    assert_response(reply, "SendMessage")


# -- the parametrised suite's clients --------------------------------------------------------------------------------

@both_protocols
def test_each_protocol_fixture_puts_its_own_protocol_on_the_wire(sqs: Any, protocol: str, queue_url: str) -> None:
    """Guards the whole ``@both_protocols`` suite: the query client must really send forms and get XML back."""
    seen: list[tuple[str, bytes, str]] = []

    def text(value: str | bytes | None) -> str:
        return value.decode() if isinstance(value, bytes) else value or ""

    def capture(request: Any, **_: Any) -> None:
        body = request.body if isinstance(request.body, bytes) else text(request.body).encode()
        seen.append((text(request.headers.get("Content-Type")), body, text(request.headers.get("X-Amz-Target"))))

    def capture_response(http_response: Any, **_: Any) -> None:
        seen.append(("response", b"", text(http_response.headers.get("content-type"))))

    sqs.meta.events.register("before-send.sqs.SendMessage", capture)
    sqs.meta.events.register("after-call.sqs.SendMessage", capture_response)
    try:
        sqs.send_message(QueueUrl=queue_url, MessageBody="which wire?")
    finally:
        sqs.meta.events.unregister("before-send.sqs.SendMessage", capture)
        sqs.meta.events.unregister("after-call.sqs.SendMessage", capture_response)
    (content_type, body, target), (_, _, response_type) = seen
    if protocol == "query":
        assert content_type.startswith("application/x-www-form-urlencoded")
        assert body.startswith(b"Action=SendMessage&Version=2012-11-05&")
        assert target == "" and response_type.startswith("text/xml")
    else:
        assert content_type == "application/x-amz-json-1.0"
        assert target == "AmazonSQS.SendMessage" and body.startswith(b"{")
        assert response_type.startswith("application/x-amz-json-1.0")
