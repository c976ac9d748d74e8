"""Error behaviour end to end: nonexistent queues for every action, garbage sent raw over HTTP, queue URL forms,
and that the server keeps serving after each of them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.integration.conftest import ClientFactory, both_protocols
from tests.integration.helpers import RawResponse, error_code, http_request, http_status, sqs_json_headers
from tests.integration.server import RaftMQServer

ACCOUNT = "000000000000"

OPERATIONS_ON_A_QUEUE: list[tuple[str, dict[str, Any]]] = [
    ("send_message", {"MessageBody": "x"}),
    ("send_message_batch", {"Entries": [{"Id": "a", "MessageBody": "x"}]}),
    ("receive_message", {"WaitTimeSeconds": 0}),
    ("delete_message", {"ReceiptHandle": "handle"}),
    ("delete_message_batch", {"Entries": [{"Id": "a", "ReceiptHandle": "handle"}]}),
    ("change_message_visibility", {"ReceiptHandle": "handle", "VisibilityTimeout": 1}),
    ("change_message_visibility_batch", {"Entries": [{"Id": "a", "ReceiptHandle": "h", "VisibilityTimeout": 1}]}),
    ("get_queue_attributes", {"AttributeNames": ["All"]}),
    ("set_queue_attributes", {"Attributes": {"VisibilityTimeout": "1"}}),
    ("purge_queue", {}),
    ("delete_queue", {}),
    ("list_queue_tags", {}),
]


@both_protocols
@pytest.mark.parametrize(("operation", "kwargs"), OPERATIONS_ON_A_QUEUE, ids=[op for op, _ in OPERATIONS_ON_A_QUEUE])
def test_every_action_on_a_missing_queue_is_nonexistent_queue(sqs: Any, server: RaftMQServer, queue_name: str,
                                                              operation: str, kwargs: dict[str, Any]) -> None:
    with pytest.raises(sqs.exceptions.QueueDoesNotExist) as info:
        getattr(sqs, operation)(QueueUrl=f"{server.endpoint}/{ACCOUNT}/{queue_name}", **kwargs)
    assert error_code(info.value) == "AWS.SimpleQueueService.NonExistentQueue"
    assert http_status(info.value) == 400
    assert info.value.response["Error"]["Message"]
    assert info.value.response["ResponseMetadata"].get("RequestId")


@both_protocols
def test_queue_url_forms_clients_send_are_all_accepted(sqs: Any, server: RaftMQServer, queue_name: str) -> None:
    url = sqs.create_queue(QueueName=queue_name)["QueueUrl"]
    forms = [
        url,
        url + "/",
        f"https://sqs.us-east-1.amazonaws.com/{ACCOUNT}/{queue_name}",
        f"https://us-east-1.queue.amazonaws.com/{ACCOUNT}/{queue_name}",
        f"http://localhost:{server.ready.port if server.ready else 0}/{ACCOUNT}/{queue_name}",
    ]
    for i, form in enumerate(forms):
        sqs.send_message(QueueUrl=form, MessageBody=f"via form {i}")
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
    assert attrs["ApproximateNumberOfMessages"] == str(len(forms))


@both_protocols
def test_any_credentials_are_accepted_for_now(sqs_factory: ClientFactory) -> None:
    other = sqs_factory(aws_access_key_id="AKIDOTHER", aws_secret_access_key="other-secret")
    assert "ResponseMetadata" in other.list_queues()


def post_sqs(server: RaftMQServer, operation: str, body: bytes) -> RawResponse:
    return http_request(server.endpoint + "/", method="POST", body=body, headers=sqs_json_headers(operation))


def assert_aws_error(response: RawResponse) -> dict[str, Any]:
    """A 4xx with the AWS JSON error body botocore understands, and a request id."""
    assert 400 <= response.status < 500, (response.status, response.body[:500])
    payload: dict[str, Any] = json.loads(response.body)
    assert isinstance(payload.get("__type"), str) and payload["__type"], payload
    assert isinstance(payload.get("message", payload.get("Message")), str), payload
    assert response.headers.get("x-amzn-requestid"), response.headers
    return payload


def assert_still_serving(sqs: Any) -> None:
    assert sqs.list_queues()["ResponseMetadata"]["HTTPStatusCode"] == 200


@pytest.mark.parametrize("body", [b"{not json", b"\xff\xfe\x00garbage", b"[1, 2, 3]", b'"a string"',
                                  b'{"QueueName": '])
def test_malformed_json_is_a_client_error(sqs: Any, server: RaftMQServer, body: bytes) -> None:
    assert_aws_error(post_sqs(server, "CreateQueue", body))
    assert_still_serving(sqs)


def test_empty_body_for_an_operation_without_required_members_is_accepted(sqs: Any, server: RaftMQServer) -> None:
    """AWS JSON treats ``{}`` as 'no parameters'; ListQueues needs none."""
    response = post_sqs(server, "ListQueues", b"{}")
    assert response.status == 200, response.body[:500]
    assert isinstance(json.loads(response.body), dict)


def test_unknown_target_is_unknown_operation(sqs: Any, server: RaftMQServer) -> None:
    payload = assert_aws_error(post_sqs(server, "FlyToTheMoon", b"{}"))
    assert payload["__type"].endswith("UnknownOperationException"), payload
    assert_still_serving(sqs)


def test_missing_required_parameter_is_a_client_error(sqs: Any, server: RaftMQServer) -> None:
    assert_aws_error(post_sqs(server, "CreateQueue", b"{}"))
    assert_aws_error(post_sqs(server, "SendMessage", b'{"MessageBody": "no queue url"}'))
    assert_still_serving(sqs)


def test_wrongly_typed_parameter_is_a_client_error(sqs: Any, server: RaftMQServer, queue_name: str) -> None:
    url = sqs.create_queue(QueueName=queue_name)["QueueUrl"]
    body = json.dumps({"QueueUrl": url, "MaxNumberOfMessages": "ten"}).encode()
    assert_aws_error(post_sqs(server, "ReceiveMessage", body))
    body = json.dumps({"QueueUrl": url, "MessageBody": ["not", "a", "string"]}).encode()
    assert_aws_error(post_sqs(server, "SendMessage", body))
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
    assert attrs["ApproximateNumberOfMessages"] == "0"


def test_nonexistent_queue_over_raw_json_carries_the_query_error_header(server: RaftMQServer,
                                                                       queue_name: str) -> None:
    body = json.dumps({"QueueName": queue_name}).encode()
    response = post_sqs(server, "GetQueueUrl", body)
    payload = assert_aws_error(response)
    assert payload["__type"].endswith("QueueDoesNotExist"), payload
    assert response.headers.get("x-amzn-query-error") == "AWS.SimpleQueueService.NonExistentQueue;Sender"


def test_unknown_path_and_method_do_not_break_the_server(sqs: Any, server: RaftMQServer) -> None:
    response = http_request(server.endpoint + "/no/such/thing", method="GET")
    assert 400 <= response.status < 500
    response = http_request(server.endpoint + "/", method="POST", body=b"{}",
                            headers={"Content-Type": "application/x-amz-json-1.0"})
    assert 400 <= response.status < 500
    assert_still_serving(sqs)
