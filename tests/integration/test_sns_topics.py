"""SNS over boto3 (Query/XML) against a real server: topics, subscriptions, attributes, tags, fan-out to SQS."""

from __future__ import annotations

import base64
import json
import urllib.request
from typing import Any

import pytest
from botocore.exceptions import ClientError

from broker.model.sns_envelope import string_to_sign
from broker.sns.signing import verify
from tests.integration.conftest import make_client, unique_name
from tests.integration.helpers import error_code, http_status, receive_until
from tests.integration.server import RaftMQServer


@pytest.fixture(scope="module")
def sns(server: RaftMQServer) -> Any:
    return make_client("sns", server.endpoint)


@pytest.fixture(scope="module")
def sqs_client(server: RaftMQServer) -> Any:
    return make_client("sqs", server.endpoint)


def _queue(sqs_client: Any, fifo: bool = False) -> tuple[str, str]:
    name = unique_name("q") + (".fifo" if fifo else "")
    attributes = {"FifoQueue": "true"} if fifo else {}
    url = sqs_client.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    arn = sqs_client.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def _code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return error_code(exc.value)


def test_create_topic_is_idempotent_and_listed(sns: Any) -> None:
    name = unique_name("t")
    arn = sns.create_topic(Name=name)["TopicArn"]
    assert arn == f"arn:aws:sns:us-east-1:000000000000:{name}"
    assert sns.create_topic(Name=name)["TopicArn"] == arn
    assert {"TopicArn": arn} in sns.list_topics()["Topics"]
    with pytest.raises(ClientError) as exc:
        sns.create_topic(Name=name, Attributes={"DisplayName": "other"})
    assert _code(exc) == "InvalidParameter"
    sns.delete_topic(TopicArn=arn)
    assert {"TopicArn": arn} not in sns.list_topics()["Topics"]
    sns.delete_topic(TopicArn=arn)  # deleting a missing topic succeeds


def test_list_topics_pages(sns: Any) -> None:
    arns = {sns.create_topic(Name=unique_name("page"))["TopicArn"] for _ in range(105)}
    seen: set[str] = set()
    pages = 0
    kwargs: dict[str, str] = {}
    while True:
        out = sns.list_topics(**kwargs)
        pages += 1
        seen.update(t["TopicArn"] for t in out["Topics"])
        if "NextToken" not in out:
            break
        kwargs = {"NextToken": out["NextToken"]}
    assert arns <= seen and pages >= 2


def test_topic_name_errors(sns: Any) -> None:
    for kwargs in ({"Name": "bad name"}, {"Name": "x" * 257}, {"Name": "plain.fifo"},
                   {"Name": "nofifo", "Attributes": {"FifoTopic": "true"}}):
        with pytest.raises(ClientError) as exc:
            sns.create_topic(**kwargs)
        assert _code(exc) == "InvalidParameter", kwargs


def test_topic_attributes(sns: Any) -> None:
    arn = sns.create_topic(Name=unique_name("attrs"), Attributes={"DisplayName": "Hello"})["TopicArn"]
    attrs = sns.get_topic_attributes(TopicArn=arn)["Attributes"]
    assert attrs["DisplayName"] == "Hello"
    assert attrs["SubscriptionsConfirmed"] == "0" and attrs["SubscriptionsPending"] == "0"
    assert json.loads(attrs["EffectiveDeliveryPolicy"])["http"]["defaultHealthyRetryPolicy"]["numRetries"] == 3
    assert json.loads(attrs["Policy"])["Statement"][0]["Resource"] == arn
    sns.set_topic_attributes(TopicArn=arn, AttributeName="DisplayName", AttributeValue="Bye")
    assert sns.get_topic_attributes(TopicArn=arn)["Attributes"]["DisplayName"] == "Bye"
    with pytest.raises(ClientError) as exc:
        sns.set_topic_attributes(TopicArn=arn, AttributeName="Nope", AttributeValue="x")
    assert _code(exc) == "InvalidParameter"
    with pytest.raises(ClientError) as exc:
        sns.get_topic_attributes(TopicArn=arn + "missing")
    assert _code(exc) == "NotFound" and http_status(exc.value) == 404


def test_tags_permissions_and_data_protection(sns: Any) -> None:
    arn = sns.create_topic(Name=unique_name("tags"), Tags=[{"Key": "a", "Value": "1"}])["TopicArn"]
    sns.tag_resource(ResourceArn=arn, Tags=[{"Key": "b", "Value": "2"}])
    sns.untag_resource(ResourceArn=arn, TagKeys=["a"])
    assert sns.list_tags_for_resource(ResourceArn=arn)["Tags"] == [{"Key": "b", "Value": "2"}]
    with pytest.raises(ClientError) as exc:
        sns.list_tags_for_resource(ResourceArn=arn + "x")
    assert _code(exc) == "ResourceNotFound"
    with pytest.raises(ClientError) as exc:
        sns.tag_resource(ResourceArn=arn, Tags=[{"Key": f"k{i}", "Value": "v"} for i in range(51)])
    assert _code(exc) == "TagLimitExceeded"
    sns.add_permission(TopicArn=arn, Label="pub", AWSAccountId=["111122223333"], ActionName=["Publish"])
    policy = json.loads(sns.get_topic_attributes(TopicArn=arn)["Attributes"]["Policy"])
    assert [s["Sid"] for s in policy["Statement"]] == ["pub"]
    assert policy["Statement"][0]["Action"] == "SNS:Publish"
    sns.remove_permission(TopicArn=arn, Label="pub")
    assert json.loads(sns.get_topic_attributes(TopicArn=arn)["Attributes"]["Policy"])["Statement"] == []
    dpp = json.dumps({"Name": "p", "Description": "", "Version": "2021-06-01", "Statement": []})
    sns.put_data_protection_policy(ResourceArn=arn, DataProtectionPolicy=dpp)
    assert sns.get_data_protection_policy(ResourceArn=arn)["DataProtectionPolicy"] == dpp


def test_subscribe_sqs_lists_and_unsubscribes(sns: Any, sqs_client: Any) -> None:
    arn = sns.create_topic(Name=unique_name("subs"))["TopicArn"]
    _, queue_arn = _queue(sqs_client)
    sub = sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=queue_arn)["SubscriptionArn"]
    assert sub.startswith(arn + ":")
    assert sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=queue_arn)["SubscriptionArn"] == sub
    listed = sns.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"]
    assert listed == [{"SubscriptionArn": sub, "Owner": "000000000000", "Protocol": "sqs", "Endpoint": queue_arn,
                       "TopicArn": arn}]
    assert sub in [s["SubscriptionArn"] for s in sns.list_subscriptions()["Subscriptions"]]
    attrs = sns.get_subscription_attributes(SubscriptionArn=sub)["Attributes"]
    assert attrs["PendingConfirmation"] == "false" and attrs["RawMessageDelivery"] == "false"
    sns.set_subscription_attributes(SubscriptionArn=sub, AttributeName="RawMessageDelivery", AttributeValue="true")
    assert sns.get_subscription_attributes(SubscriptionArn=sub)["Attributes"]["RawMessageDelivery"] == "true"
    assert sns.get_topic_attributes(TopicArn=arn)["Attributes"]["SubscriptionsConfirmed"] == "1"
    sns.unsubscribe(SubscriptionArn=sub)
    assert sns.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"] == []
    assert sns.get_topic_attributes(TopicArn=arn)["Attributes"]["SubscriptionsDeleted"] == "1"
    with pytest.raises(ClientError) as exc:
        sns.get_subscription_attributes(SubscriptionArn=sub)
    assert _code(exc) == "NotFound"


@pytest.mark.parametrize(("protocol", "endpoint", "reason"), [
    ("email", "a@example.com", "email"), ("carrier-pigeon", "x", "does not support"),
    ("sqs", "https://not-an-arn", "SQS endpoint ARN"), ("http", "https://x", "match the specified protocol"),
])
def test_subscribe_errors(sns: Any, protocol: str, endpoint: str, reason: str) -> None:
    arn = sns.create_topic(Name=unique_name("suberr"))["TopicArn"]
    with pytest.raises(ClientError) as exc:
        sns.subscribe(TopicArn=arn, Protocol=protocol, Endpoint=endpoint)
    assert _code(exc) == "InvalidParameter" and reason in exc.value.response["Error"]["Message"]


def test_subscription_attribute_errors(sns: Any, sqs_client: Any) -> None:
    arn = sns.create_topic(Name=unique_name("saerr"))["TopicArn"]
    _, queue_arn = _queue(sqs_client)
    sub = sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=queue_arn)["SubscriptionArn"]
    cases = [("RawMessageDelivery", "maybe"), ("FilterPolicyScope", "Nowhere"), ("Bogus", "1"),
             ("FilterPolicy", '{"a": "not-a-list"}'), ("FilterPolicy", '{"a": [{"numeric": [">", "x"]}]}'),
             ("RedrivePolicy", '{"x": 1}'), ("DeliveryPolicy", '{"healthyRetryPolicy": {}}')]
    for name, value in cases:
        with pytest.raises(ClientError) as exc:
            sns.set_subscription_attributes(SubscriptionArn=sub, AttributeName=name, AttributeValue=value)
        assert _code(exc) == "InvalidParameter", (name, value)


def test_publish_to_sqs_envelope_is_signed(sns: Any, sqs_client: Any, server: RaftMQServer) -> None:
    arn = sns.create_topic(Name=unique_name("pub"))["TopicArn"]
    url, queue_arn = _queue(sqs_client)
    sub = sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=queue_arn)["SubscriptionArn"]
    out = sns.publish(TopicArn=arn, Message="hello", Subject="greeting",
                      MessageAttributes={"color": {"DataType": "String", "StringValue": "red"},
                                         "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"}})
    [msg] = receive_until(sqs_client, url, 1, timeout=5)
    doc = json.loads(msg["Body"])
    assert doc["Type"] == "Notification" and doc["MessageId"] == out["MessageId"]
    assert (doc["TopicArn"], doc["Subject"], doc["Message"]) == (arn, "greeting", "hello")
    assert doc["SignatureVersion"] == "1" and doc["UnsubscribeURL"].endswith(sub.replace(":", "%3A"))
    assert doc["MessageAttributes"] == {"blob": {"Type": "Binary", "Value": base64.b64encode(b"\0\1").decode()},
                                        "color": {"Type": "String", "Value": "red"}}
    with urllib.request.urlopen(doc["SigningCertURL"], timeout=5) as response:
        cert = response.read().decode()
    assert verify(cert, string_to_sign(doc), doc["Signature"])
    assert not verify(cert, string_to_sign({**doc, "Message": "forged"}), doc["Signature"])


def test_publish_raw_delivery_and_target_arn(sns: Any, sqs_client: Any) -> None:
    arn = sns.create_topic(Name=unique_name("raw"))["TopicArn"]
    url, queue_arn = _queue(sqs_client)
    sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"})
    sns.publish(TargetArn=arn, Message="raw body",
                MessageAttributes={"n": {"DataType": "Number", "StringValue": "42"}})
    [msg] = receive_until(sqs_client, url, 1, timeout=5, MessageAttributeNames=["All"])
    assert msg["Body"] == "raw body"
    assert msg["MessageAttributes"] == {"n": {"DataType": "Number", "StringValue": "42"}}


def test_message_structure_json_picks_the_sqs_body(sns: Any, sqs_client: Any) -> None:
    arn = sns.create_topic(Name=unique_name("struct"))["TopicArn"]
    url, queue_arn = _queue(sqs_client)
    sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=queue_arn)
    sns.publish(TopicArn=arn, MessageStructure="json", Message=json.dumps({"default": "d", "sqs": "for sqs"}))
    [msg] = receive_until(sqs_client, url, 1, timeout=5)
    assert json.loads(msg["Body"])["Message"] == "for sqs"
    for message in ("not json", json.dumps({"sqs": "no default"})):
        with pytest.raises(ClientError) as exc:
            sns.publish(TopicArn=arn, MessageStructure="json", Message=message)
        assert _code(exc) == "InvalidParameter"


def test_publish_errors(sns: Any) -> None:
    arn = sns.create_topic(Name=unique_name("puberr"))["TopicArn"]
    cases: list[tuple[dict[str, Any], str]] = [
        ({"TopicArn": arn, "Message": "x" * (256 * 1024 + 1)}, "InvalidParameter"),
        ({"TopicArn": arn, "Message": "x" * (256 * 1024 - 10),
          "MessageAttributes": {"attr": {"DataType": "String", "StringValue": "0123456789"}}}, "InvalidParameter"),
        ({"TopicArn": arn, "Message": "m", "Subject": "a\nb"}, "InvalidParameter"),
        ({"TopicArn": arn + "nope", "Message": "m"}, "NotFound"),
        ({"TopicArn": arn, "Message": "m", "MessageGroupId": "g"}, "InvalidParameter"),
        ({"TopicArn": arn, "Message": "m", "MessageAttributes": {"a": {"DataType": "Weird", "StringValue": "v"}}},
         "ParameterValueInvalid"),
        ({"TopicArn": arn, "Message": "m", "MessageAttributes": {"a": {"DataType": "Number", "StringValue": "x"}}},
         "ParameterValueInvalid"),
    ]
    for kwargs, code in cases:
        with pytest.raises(ClientError) as exc:
            sns.publish(**kwargs)
        assert _code(exc) == code, kwargs


def test_publish_batch_fans_out_every_entry(sns: Any, sqs_client: Any) -> None:
    arn = sns.create_topic(Name=unique_name("batch"))["TopicArn"]
    urls = []
    for _ in range(3):
        url, queue_arn = _queue(sqs_client)
        sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"})
        urls.append(url)
    out = sns.publish_batch(TopicArn=arn, PublishBatchRequestEntries=[
        {"Id": f"e{i}", "Message": f"m{i}"} for i in range(10)] + [])
    assert [s["Id"] for s in out["Successful"]] == [f"e{i}" for i in range(10)] and out["Failed"] == []
    for url in urls:
        bodies = sorted(m["Body"] for m in receive_until(sqs_client, url, 10, timeout=5))
        assert bodies == sorted(f"m{i}" for i in range(10))
    mixed = sns.publish_batch(TopicArn=arn, PublishBatchRequestEntries=[
        {"Id": "ok", "Message": "fine"}, {"Id": "bad", "Message": "m", "Subject": "x\ny"}])
    assert [s["Id"] for s in mixed["Successful"]] == ["ok"]
    assert mixed["Failed"][0]["Id"] == "bad" and mixed["Failed"][0]["Code"] == "InvalidParameter"
    for entries, code in (([], "EmptyBatchRequest"),
                          ([{"Id": f"e{i}", "Message": "m"} for i in range(11)], "TooManyEntriesInBatchRequest"),
                          ([{"Id": "a", "Message": "m"}, {"Id": "a", "Message": "m"}], "BatchEntryIdsNotDistinct"),
                          ([{"Id": "bad id!", "Message": "m"}], "InvalidBatchEntryId"),
                          ([{"Id": f"e{i}", "Message": "x" * 30_000} for i in range(10)], "BatchRequestTooLong")):
        with pytest.raises(ClientError) as exc:
            sns.publish_batch(TopicArn=arn, PublishBatchRequestEntries=entries)
        assert _code(exc) == code
