"""A real server with a credentials file, driven by boto3: correct, wrong, unknown, rotated and expired credentials
over SQS (JSON and Query), STS, SNS and Kinesis; presigned URLs; accounts as namespaces; identity and queue
policies enforced with AWS's AccessDenied wording."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore import auth as botocore_auth
from botocore.exceptions import ClientError

from tests.integration.conftest import make_client, make_sqs_client
from tests.integration.helpers import error_code, http_request, http_status, sqs_json_headers
from tests.integration.server import RaftMQServer, serving
from tests.integration.sqs_clients import PROTOCOLS

A, B = "111111111111", "222222222222"
ROOT_A = ("AKIAROOTA00000000001", "root-a-secret")
ROOT_B = ("AKIAROOTB00000000001", "root-b-secret")
ALICE = ("AKIAALICE000000001", "alice-secret")
ALICE_OLD = ("AKIAALICE00000OLD1", "alice-old-secret")
BOB = ("AKIABOB00000000001", "bob-secret")
NOBODY = ("AKIANOBODY00000001", "nobody-secret")

ALLOW_ALL_BUT_DELETE = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": ["sqs:*", "sns:*", "kinesis:*"], "Resource": "*"},
    {"Effect": "Deny", "Action": "sqs:DeleteQueue", "Resource": "*"}]})
CREDENTIALS = {"accounts": [
    {"id": A, "root_keys": [{"id": ROOT_A[0], "secret": ROOT_A[1]}], "users": [
        {"name": "alice", "policies": [ALLOW_ALL_BUT_DELETE],
         "keys": [{"id": ALICE[0], "secret": ALICE[1]},
                  {"id": ALICE_OLD[0], "secret": ALICE_OLD[1], "active": False}]},
        {"name": "nobody", "keys": [{"id": NOBODY[0], "secret": NOBODY[1]}]}]},
    {"id": B, "root_keys": [{"id": ROOT_B[0], "secret": ROOT_B[1]}], "users": [
        {"name": "bob", "policies": [{"Statement": [{"Effect": "Allow", "Action": "sqs:*", "Resource": "*"}]}],
         "keys": [{"id": BOB[0], "secret": BOB[1]}]}]},
]}


class SecuredServer(RaftMQServer):
    """``raftmq serve --credentials FILE``."""

    def __init__(self, data_dir: Path, credentials: Path) -> None:
        super().__init__(data_dir, log_level="info")
        self.credentials = credentials

    def args(self) -> list[str]:
        return [*super().args(), "--credentials", str(self.credentials)]


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecuredServer]:
    base = tmp_path_factory.mktemp("raftmq-auth")
    credentials = base / "credentials.json"
    credentials.write_text(json.dumps(CREDENTIALS))
    with serving(SecuredServer(base / "data", credentials)) as srv:
        yield srv


def sqs(server: RaftMQServer, key: tuple[str, str], protocol: str = "json") -> Any:
    return make_sqs_client(server.endpoint, protocol, aws_access_key_id=key[0], aws_secret_access_key=key[1])


def client(server: RaftMQServer, service: str, key: tuple[str, str]) -> Any:
    return make_client(service, server.endpoint, aws_access_key_id=key[0], aws_secret_access_key=key[1])


def failure(call: Any, *args: Any, **kwargs: Any) -> ClientError:
    with pytest.raises(ClientError) as info:
        call(*args, **kwargs)
    return info.value


@pytest.fixture
def skewed_clock(monkeypatch: pytest.MonkeyPatch) -> list[timedelta]:
    """botocore signs at real time + skew[0]."""
    skew = [timedelta(0)]
    monkeypatch.setattr(botocore_auth, "get_current_datetime",
                        lambda: datetime.now(UTC).replace(tzinfo=None) + skew[0])
    return skew


def test_start_up_says_credentials_are_verified_and_prints_no_secret(secured: SecuredServer) -> None:
    text = secured.stderr_text()
    assert "mode=verified" in text and "accounts=2 access_keys=6" in text
    assert all(secret not in text for _, secret in (ROOT_A, ROOT_B, ALICE, ALICE_OLD, BOB, NOBODY))


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_correct_credentials_work(secured: SecuredServer, protocol: str) -> None:
    alice = sqs(secured, ALICE, protocol)
    url = alice.create_queue(QueueName=f"alice-{protocol}")["QueueUrl"]
    assert f"/{A}/alice-{protocol}" in url
    alice.send_message(QueueUrl=url, MessageBody="hello")
    assert [m["Body"] for m in alice.receive_message(QueueUrl=url).get("Messages", [])] == ["hello"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_wrong_secret_unknown_and_rotated_keys_are_refused(secured: SecuredServer, protocol: str) -> None:
    for key, code in (((ALICE[0], "not-the-secret"), "SignatureDoesNotMatch"),
                      (("AKIAUNKNOWN0000001", "x"), "InvalidClientTokenId"),
                      (ALICE_OLD, "InvalidClientTokenId")):
        exc = failure(sqs(secured, key, protocol).list_queues)
        assert (error_code(exc), http_status(exc)) == (code, 403)


def test_sts_answers_with_the_verified_caller(secured: SecuredServer) -> None:
    alice = client(secured, "sts", ALICE).get_caller_identity()
    assert (alice["Account"], alice["Arn"]) == (A, f"arn:aws:iam::{A}:user/alice")
    assert alice["UserId"].startswith("AIDA")
    root_b = client(secured, "sts", ROOT_B).get_caller_identity()
    assert (root_b["Account"], root_b["Arn"], root_b["UserId"]) == (B, f"arn:aws:iam::{B}:root", B)
    # a user with no policy may still ask who it is, as in AWS
    assert client(secured, "sts", NOBODY).get_caller_identity()["Arn"] == f"arn:aws:iam::{A}:user/nobody"
    exc = failure(client(secured, "sts", (BOB[0], "wrong")).get_caller_identity)
    assert (error_code(exc), http_status(exc)) == ("SignatureDoesNotMatch", 403)


@pytest.mark.parametrize(("skew_min", "ok"), [(-20, False), (-10, True), (10, True), (20, False)])
def test_clock_skew_beyond_15_minutes_is_request_expired(secured: SecuredServer, skewed_clock: list[timedelta],
                                                         skew_min: int, ok: bool) -> None:
    skewed_clock[0] = timedelta(minutes=skew_min)
    calls = [sqs(secured, ALICE, "json").list_queues, sqs(secured, ALICE, "query").list_queues,
             client(secured, "sts", ALICE).get_caller_identity]
    for call in calls:
        if ok:
            call()
        else:
            exc = failure(call)
            assert (error_code(exc), http_status(exc)) == ("RequestExpired", 400)
            assert "Signature expired" in str(exc) or "Signature not yet current" in str(exc)


def test_unsigned_requests_are_missing_authentication_token(secured: SecuredServer) -> None:
    response = http_request(secured.endpoint + "/", method="POST", body=b"{}", headers=sqs_json_headers("ListQueues"))
    assert response.status == 403
    assert response.headers["x-amzn-query-error"] == "MissingAuthenticationToken;Sender"
    query = http_request(secured.endpoint + "/", method="POST", body=b"Action=GetCallerIdentity&Version=2011-06-15",
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert query.status == 403 and b"<Code>MissingAuthenticationToken</Code>" in query.body


def test_presigned_urls_work_until_they_expire(secured: SecuredServer, skewed_clock: list[timedelta]) -> None:
    url = client(secured, "sts", ALICE).generate_presigned_url("get_caller_identity", ExpiresIn=60,
                                                                             HttpMethod="GET")
    response = http_request(url)
    assert response.status == 200 and f"arn:aws:iam::{A}:user/alice".encode() in response.body
    query_sqs = sqs(secured, BOB, "query")
    queue_url = query_sqs.create_queue(QueueName="presigned")["QueueUrl"]
    send = query_sqs.generate_presigned_url("send_message", Params={"QueueUrl": queue_url, "MessageBody": "via url"},
                                        HttpMethod="GET")
    assert http_request(send).status == 200
    assert [m["Body"] for m in query_sqs.receive_message(QueueUrl=queue_url)["Messages"]] == ["via url"]
    tampered = http_request(send.replace("via%20url", "evil"))
    assert tampered.status == 403 and b"SignatureDoesNotMatch" in tampered.body
    skewed_clock[0] = -timedelta(hours=2)
    expired = http_request(client(secured, "sts", ALICE).generate_presigned_url("get_caller_identity",
                                                                                 ExpiresIn=3600, HttpMethod="GET"))
    assert expired.status == 400 and b"<Code>RequestExpired</Code>" in expired.body


def test_two_accounts_each_own_a_queue_named_orders(secured: SecuredServer) -> None:
    root_a, root_b = sqs(secured, ROOT_A), sqs(secured, ROOT_B, "query")
    url_a = root_a.create_queue(QueueName="orders")["QueueUrl"]
    url_b = root_b.create_queue(QueueName="orders")["QueueUrl"]
    assert url_a.endswith(f"/{A}/orders") and url_b.endswith(f"/{B}/orders")
    root_a.send_message(QueueUrl=url_a, MessageBody="for a")
    root_b.send_message(QueueUrl=url_b, MessageBody="for b")
    assert [m["Body"] for m in root_a.receive_message(QueueUrl=url_a)["Messages"]] == ["for a"]
    assert [m["Body"] for m in root_b.receive_message(QueueUrl=url_b)["Messages"]] == ["for b"]
    assert root_a.get_queue_url(QueueName="orders")["QueueUrl"] == url_a
    assert all(f"/{A}/" in u for u in root_a.list_queues()["QueueUrls"])
    assert all(f"/{B}/" in u for u in root_b.list_queues()["QueueUrls"])


def test_cross_account_access_needs_the_queue_policy(secured: SecuredServer) -> None:
    owner, bob = sqs(secured, ROOT_A), sqs(secured, BOB)
    url = owner.create_queue(QueueName="shared")["QueueUrl"]
    arn = f"arn:aws:sqs:us-east-1:{A}:shared"
    exc = failure(bob.send_message, QueueUrl=url, MessageBody="too early")
    assert (error_code(exc), http_status(exc)) == ("AccessDenied", 403)
    assert (f"User: arn:aws:iam::{B}:user/bob is not authorized to perform: sqs:SendMessage on resource: {arn} "
            "because no resource-based policy allows the sqs:SendMessage action") in exc.response["Error"]["Message"]
    owner.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": B}, "Action": "sqs:SendMessage", "Resource": arn}]})})
    bob.send_message(QueueUrl=url, MessageBody="from bob")
    assert error_code(failure(bob.receive_message, QueueUrl=url)) == "AccessDenied"  # only SendMessage granted
    assert [m["Body"] for m in owner.receive_message(QueueUrl=url)["Messages"]] == ["from bob"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_identity_policies_are_enforced(secured: SecuredServer, protocol: str) -> None:
    alice = sqs(secured, ALICE, protocol)
    url = alice.create_queue(QueueName=f"keep-{protocol}")["QueueUrl"]
    exc = failure(alice.delete_queue, QueueUrl=url)
    assert (error_code(exc), http_status(exc)) == ("AccessDenied", 403)
    assert exc.response["Error"]["Message"] == (
        f"User: arn:aws:iam::{A}:user/alice is not authorized to perform: sqs:DeleteQueue on resource: "
        f"arn:aws:sqs:us-east-1:{A}:keep-{protocol} with an explicit deny in an identity-based policy")
    assert alice.get_queue_url(QueueName=f"keep-{protocol}")["QueueUrl"] == url  # still there
    exc = failure(sqs(secured, NOBODY, protocol).list_queues)
    assert error_code(exc) == "AccessDenied"
    assert "because no identity-based policy allows the sqs:ListQueues action" in exc.response["Error"]["Message"]


def test_sns_and_kinesis_speak_their_own_error_names(secured: SecuredServer) -> None:
    exc = failure(client(secured, "sns", NOBODY).create_topic, Name="t")
    assert (error_code(exc), http_status(exc)) == ("AuthorizationError", 403)
    assert client(secured, "sns", ALICE).create_topic(Name="t")["TopicArn"] == f"arn:aws:sns:us-east-1:{A}:t"
    exc = failure(client(secured, "kinesis", (ALICE[0], "wrong")).list_streams)
    assert (error_code(exc), http_status(exc)) == ("InvalidSignatureException", 400)
    exc = failure(client(secured, "kinesis", ("AKIAUNKNOWN0000001", "x")).list_streams)
    assert error_code(exc) == "UnrecognizedClientException"
    exc = failure(client(secured, "kinesis", NOBODY).list_streams)
    assert (error_code(exc), http_status(exc)) == ("AccessDeniedException", 400)
    assert "StreamNames" in client(secured, "kinesis", ALICE).list_streams()


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_add_permission_grants_another_account_and_remove_permission_revokes(secured: SecuredServer,
                                                                            protocol: str) -> None:
    owner, bob = sqs(secured, ROOT_A, protocol), sqs(secured, BOB, protocol)
    url = owner.create_queue(QueueName=f"granted-{protocol}")["QueueUrl"]
    owner.send_message(QueueUrl=url, MessageBody="for bob")
    assert error_code(failure(bob.receive_message, QueueUrl=url)) == "AccessDenied"
    owner.add_permission(QueueUrl=url, Label="bob-reads", AWSAccountIds=[B],
                         Actions=["ReceiveMessage", "DeleteMessage"])
    messages = bob.receive_message(QueueUrl=url)["Messages"]
    assert [m["Body"] for m in messages] == ["for bob"]
    bob.delete_message(QueueUrl=url, ReceiptHandle=messages[0]["ReceiptHandle"])
    owner.remove_permission(QueueUrl=url, Label="bob-reads")
    assert error_code(failure(bob.receive_message, QueueUrl=url)) == "AccessDenied"


def test_topic_policy_grants_another_account_publish(secured: SecuredServer) -> None:
    owner, other = client(secured, "sns", ROOT_A), client(secured, "sns", ROOT_B)
    arn = owner.create_topic(Name="shared-topic")["TopicArn"]
    exc = failure(other.publish, TopicArn=arn, Message="too early")
    assert (error_code(exc), http_status(exc)) == ("AuthorizationError", 403)
    assert f"User: arn:aws:iam::{B}:root is not authorized to perform: sns:Publish on resource: {arn}" in (
        exc.response["Error"]["Message"])
    owner.add_permission(TopicArn=arn, Label="b-publishes", AWSAccountId=[B], ActionName=["Publish"])
    assert other.publish(TopicArn=arn, Message="from b")["MessageId"]
    assert error_code(failure(other.delete_topic, TopicArn=arn)) == "AuthorizationError"


def test_a_topic_feeds_another_accounts_queue_only_with_the_queues_source_arn_grant(secured: SecuredServer) -> None:
    queues, sns_b = sqs(secured, ROOT_A), client(secured, "sns", ROOT_B)
    url = queues.create_queue(QueueName="inbox")["QueueUrl"]
    queue_arn = f"arn:aws:sqs:us-east-1:{A}:inbox"
    topic = sns_b.create_topic(Name="feed")["TopicArn"]
    other_topic = sns_b.create_topic(Name="spam")["TopicArn"]
    exc = failure(sns_b.subscribe, TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    assert (error_code(exc), http_status(exc)) == ("AuthorizationError", 403)
    queues.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps({"Statement": [
        {"Effect": "Allow", "Principal": {"Service": "sns.amazonaws.com"}, "Action": "sqs:SendMessage",
         "Resource": queue_arn, "Condition": {"ArnEquals": {"aws:SourceArn": topic}}}]})})
    assert error_code(failure(sns_b.subscribe, TopicArn=other_topic, Protocol="sqs", Endpoint=queue_arn)) == (
        "AuthorizationError")
    sns_b.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"})
    sns_b.publish(TopicArn=topic, Message="fed")
    assert [m["Body"] for m in queues.receive_message(QueueUrl=url, WaitTimeSeconds=5)["Messages"]] == ["fed"]
