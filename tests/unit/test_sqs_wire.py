"""FIFO, dead-letter, move-task and permission operations through the gateway, over AWS JSON and Query/XML.

botocore drives the real SqsService (over the in-memory replicator) in process: with its current model for JSON,
and with the frozen Query model pinned in ``proto/aws`` for Query, so each new operation's parameters and results
are checked to map through both codecs (flattened lists, renamed members, XML numbers and timestamps).
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import botocore.session
import pytest
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import ClientError

from broker.aws.gateway import AwsGateway
from broker.http.types import HttpRequest
from tests.unit.test_sqs_service import Env

ENDPOINT = "http://localhost:4566"
ACCOUNT = "000000000000"
QUERY_MODEL = Path(__file__).resolve().parents[2] / "proto" / "aws" / "sqs-query-2012-11-05.json"


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, *args: Any, **kwargs: Any) -> Iterator[bytes]:
        yield self._body


@pytest.fixture(scope="module")
def query_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("models")
    target = root / "sqs" / "2012-11-05" / "service-2.json"
    target.parent.mkdir(parents=True)
    shutil.copyfile(QUERY_MODEL, target)
    return root


@pytest.fixture(params=["json", "query"])
def sqs(request: pytest.FixtureRequest, query_models: Path) -> Iterator[BaseClient]:
    env = Env()
    gateway = AwsGateway({"sqs": env.service}, ACCOUNT, "us-east-1")
    session = botocore.session.get_session()
    if request.param == "query":
        session = botocore.session.Session()
        session.get_component("data_loader").search_paths.insert(0, str(query_models))
    client = session.create_client("sqs", region_name="us-east-1", endpoint_url=ENDPOINT,
                                   aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret",
                                   config=Config(retries={"max_attempts": 1}))
    assert client.meta.service_model.protocol == request.param
    loop = asyncio.new_event_loop()

    def send(request: AWSPreparedRequest, **kwargs: Any) -> AWSResponse:
        url = urlsplit(request.url)
        headers = {k.lower(): (v.decode() if isinstance(v, bytes) else str(v)) for k, v in request.headers.items()}
        headers.setdefault("host", url.netloc)
        body = request.body or b""
        if not isinstance(body, bytes):
            body = body.encode() if isinstance(body, str) else body.read()
        response = loop.run_until_complete(gateway(HttpRequest(request.method, url.path or "/", url.query, headers,
                                                               body, client_host="127.0.0.1")))
        out_headers = dict(response.headers)
        out_headers["Content-Type"] = response.content_type
        return AWSResponse(request.url, response.status, out_headers, _Raw(response.body))

    client.meta.events.register("before-send", send)
    yield client
    loop.close()


def arn(name: str) -> str:
    return f"arn:aws:sqs:us-east-1:{ACCOUNT}:{name}"


def code(error: ClientError) -> str:
    return str(error.response["Error"]["Code"])


def test_fifo_round_trip(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="w.fifo", Attributes={"FifoQueue": "true",
                                                           "ContentBasedDeduplication": "true"})["QueueUrl"]
    first = sqs.send_message(QueueUrl=url, MessageBody="a", MessageGroupId="g")
    dup = sqs.send_message(QueueUrl=url, MessageBody="a", MessageGroupId="g")
    assert (dup["MessageId"], dup["SequenceNumber"]) == (first["MessageId"], first["SequenceNumber"])
    batch = sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": "b", "MessageBody": "b", "MessageGroupId": "g"}])
    assert int(batch["Successful"][0]["SequenceNumber"]) > int(first["SequenceNumber"])
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"],
                              ReceiveRequestAttemptId="attempt-1")["Messages"]
    assert [m["Body"] for m in got] == ["a", "b"]
    assert got[0]["Attributes"]["MessageGroupId"] == "g"
    assert got[0]["Attributes"]["SequenceNumber"] == first["SequenceNumber"]
    retry = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, ReceiveRequestAttemptId="attempt-1")
    assert [m["ReceiptHandle"] for m in retry["Messages"]] == [m["ReceiptHandle"] for m in got]
    with pytest.raises(ClientError) as info:
        sqs.send_message(QueueUrl=url, MessageBody="c")
    assert code(info.value) == "MissingParameter"


def test_dead_letters_sources_and_move_tasks(sqs: Any) -> None:
    dlq = sqs.create_queue(QueueName="dlq")["QueueUrl"]
    src = sqs.create_queue(QueueName="src", Attributes={"RedrivePolicy": json.dumps(
        {"deadLetterTargetArn": arn("dlq"), "maxReceiveCount": "1"})})["QueueUrl"]
    policy = sqs.get_queue_attributes(QueueUrl=src, AttributeNames=["RedrivePolicy"])["Attributes"]
    assert json.loads(policy["RedrivePolicy"])["maxReceiveCount"] == 1
    page = sqs.list_dead_letter_source_queues(QueueUrl=dlq, MaxResults=1)
    assert page["queueUrls"] == [src] and "NextToken" not in page
    sqs.send_message(QueueUrl=src, MessageBody="poison")
    sqs.receive_message(QueueUrl=src, VisibilityTimeout=0)
    assert "Messages" not in sqs.receive_message(QueueUrl=src)
    (moved,) = sqs.receive_message(QueueUrl=dlq, VisibilityTimeout=0, AttributeNames=["All"])["Messages"]
    assert moved["Attributes"]["DeadLetterQueueSourceArn"] == arn("src")
    handle = sqs.start_message_move_task(SourceArn=arn("dlq"), MaxNumberOfMessagesPerSecond=3)["TaskHandle"]
    (task,) = sqs.list_message_move_tasks(SourceArn=arn("dlq"), MaxResults=10)["Results"]
    assert (task["Status"], task["TaskHandle"], task["MaxNumberOfMessagesPerSecond"]) == ("RUNNING", handle, 3)
    assert task["ApproximateNumberOfMessagesToMove"] == 1 and task["StartedTimestamp"] > 0
    assert sqs.cancel_message_move_task(TaskHandle=handle)["ApproximateNumberOfMessagesMoved"] == 0
    with pytest.raises(ClientError) as info:
        sqs.cancel_message_move_task(TaskHandle=handle)
    assert code(info.value) == "ResourceNotFoundException"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    with pytest.raises(ClientError) as info:
        sqs.start_message_move_task(SourceArn=arn("src"))
    assert code(info.value) == "InvalidParameterValue"


def test_permissions(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="p")["QueueUrl"]
    sqs.add_permission(QueueUrl=url, Label="l", AWSAccountIds=["111111111111", "222222222222"],
                       Actions=["SendMessage", "ReceiveMessage"])
    document = json.loads(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])["Attributes"]["Policy"])
    (statement,) = document["Statement"]
    assert statement["Principal"]["AWS"] == ["arn:aws:iam::111111111111:root", "arn:aws:iam::222222222222:root"]
    assert statement["Action"] == ["SQS:SendMessage", "SQS:ReceiveMessage"]
    with pytest.raises(ClientError) as info:
        sqs.add_permission(QueueUrl=url, Label="l", AWSAccountIds=["111111111111"], Actions=["SendMessage"])
    assert code(info.value) == "InvalidParameterValue"
    sqs.remove_permission(QueueUrl=url, Label="l")
    assert "Attributes" not in sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])
