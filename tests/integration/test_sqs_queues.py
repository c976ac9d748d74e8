"""Queue management over boto3 against a real server: create/get/list/delete/purge, attributes and tags."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.integration.conftest import both_protocols, unique_name
from tests.integration.helpers import error_code, http_status
from tests.integration.server import RaftMQServer

ACCOUNT = "000000000000"
DEFAULTS = {
    "VisibilityTimeout": "30",
    "MaximumMessageSize": "1048576",
    "MessageRetentionPeriod": "345600",
    "DelaySeconds": "0",
    "ReceiveMessageWaitTimeSeconds": "0",
}
COUNTERS = ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed")


def attributes(sqs: Any, url: str, *names: str) -> dict[str, str]:
    result: dict[str, str] = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=list(names) or ["All"])[
        "Attributes"]
    return result


def counters(sqs: Any, url: str) -> tuple[int, int, int]:
    attrs = attributes(sqs, url, *COUNTERS)
    visible, invisible, delayed = (int(attrs[name]) for name in COUNTERS)
    return visible, invisible, delayed


def list_all(sqs: Any, prefix: str) -> list[str]:
    urls: list[str] = sqs.list_queues(QueueNamePrefix=prefix).get("QueueUrls", [])
    return urls


# -- CreateQueue ----------------------------------------------------------------------------------------------------

@both_protocols
def test_create_queue_url_uses_the_host_the_client_used(sqs: Any, server: RaftMQServer, queue_name: str) -> None:
    url = sqs.create_queue(QueueName=queue_name)["QueueUrl"]
    assert url == f"{server.endpoint}/{ACCOUNT}/{queue_name}"


@both_protocols
def test_create_queue_is_idempotent_when_attributes_match(sqs: Any, queue_name: str) -> None:
    attrs = {"VisibilityTimeout": "45", "DelaySeconds": "2"}
    first = sqs.create_queue(QueueName=queue_name, Attributes=attrs)["QueueUrl"]
    second = sqs.create_queue(QueueName=queue_name, Attributes=attrs)["QueueUrl"]
    assert first == second
    assert list_all(sqs, queue_name) == [first]


@both_protocols
def test_create_queue_with_different_attributes_is_queue_already_exists(sqs: Any, queue_name: str) -> None:
    sqs.create_queue(QueueName=queue_name, Attributes={"VisibilityTimeout": "45"})
    with pytest.raises(sqs.exceptions.QueueNameExists) as info:
        sqs.create_queue(QueueName=queue_name, Attributes={"VisibilityTimeout": "46"})
    assert error_code(info.value) == "QueueAlreadyExists"
    assert http_status(info.value) == 400
    url = sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
    assert attributes(sqs, url, "VisibilityTimeout") == {"VisibilityTimeout": "45"}


@both_protocols
@pytest.mark.parametrize("name", ["has space", "dot.name", "x" * 81, "slash/name", "ünïcode"])
def test_create_queue_rejects_invalid_names(sqs: Any, name: str) -> None:
    with pytest.raises(ClientError) as info:
        sqs.create_queue(QueueName=name)
    assert error_code(info.value) == "InvalidParameterValue"
    assert http_status(info.value) == 400


def test_create_queue_accepts_the_longest_valid_name(sqs: Any) -> None:
    name = unique_name("A_b-9")
    name = name + "x" * (80 - len(name))
    assert sqs.create_queue(QueueName=name)["QueueUrl"].endswith(f"/{name}")


@both_protocols
def test_create_queue_with_invalid_attribute_creates_nothing(sqs: Any, queue_name: str) -> None:
    with pytest.raises(ClientError) as info:
        sqs.create_queue(QueueName=queue_name, Attributes={"VisibilityTimeout": "43201"})
    assert error_code(info.value) == "InvalidAttributeValue"
    with pytest.raises(sqs.exceptions.QueueDoesNotExist):
        sqs.get_queue_url(QueueName=queue_name)


@both_protocols
def test_create_queue_with_unknown_attribute_is_invalid_attribute_name(sqs: Any, queue_name: str) -> None:
    with pytest.raises(ClientError) as info:
        sqs.create_queue(QueueName=queue_name, Attributes={"NoSuchAttribute": "1"})
    assert error_code(info.value) == "InvalidAttributeName"


# -- GetQueueUrl / ListQueues / DeleteQueue -------------------------------------------------------------------------

@both_protocols
def test_get_queue_url_finds_the_queue(sqs: Any, queue_url: str) -> None:
    name = queue_url.rsplit("/", 1)[1]
    assert sqs.get_queue_url(QueueName=name)["QueueUrl"] == queue_url
    assert sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=ACCOUNT)["QueueUrl"] == queue_url


@both_protocols
def test_get_queue_url_of_unknown_queue_is_nonexistent_queue(sqs: Any, protocol: str, queue_name: str) -> None:
    with pytest.raises(sqs.exceptions.QueueDoesNotExist) as info:
        sqs.get_queue_url(QueueName=queue_name)
    assert error_code(info.value) == "AWS.SimpleQueueService.NonExistentQueue"
    if protocol == "json":  # botocore keeps the JSON shape name beside the legacy code from x-amzn-query-error
        assert info.value.response["Error"].get("QueryErrorCode") == "QueueDoesNotExist"
    assert http_status(info.value) == 400


@both_protocols
def test_list_queues_filters_by_prefix(sqs: Any, queue_name: str) -> None:
    wanted = {sqs.create_queue(QueueName=f"{queue_name}-a{i}")["QueueUrl"] for i in range(3)}
    other = sqs.create_queue(QueueName=f"{queue_name}-b0")["QueueUrl"]
    assert set(list_all(sqs, f"{queue_name}-a")) == wanted
    assert set(list_all(sqs, queue_name)) == wanted | {other}
    assert list_all(sqs, f"{queue_name}-zz") == []
    everything = sqs.list_queues().get("QueueUrls", [])
    assert wanted <= set(everything)


@both_protocols
def test_list_queues_paginates_with_max_results_and_next_token(sqs: Any, queue_name: str) -> None:
    created = {sqs.create_queue(QueueName=f"{queue_name}-{i}")["QueueUrl"] for i in range(5)}
    pages: list[list[str]] = []
    kwargs: dict[str, Any] = {"QueueNamePrefix": queue_name, "MaxResults": 2}
    while True:
        page = sqs.list_queues(**kwargs)
        pages.append(page.get("QueueUrls", []))
        token = page.get("NextToken")
        if not token:
            break
        kwargs["NextToken"] = token
        assert len(pages) < 10, "pagination does not terminate"
    assert [len(p) for p in pages] == [2, 2, 1]
    seen = [url for p in pages for url in p]
    assert sorted(seen) == sorted(created)


@both_protocols
@pytest.mark.parametrize("max_results", [0, 1001])
def test_list_queues_rejects_max_results_out_of_range(sqs: Any, max_results: int) -> None:
    with pytest.raises(ClientError) as info:
        sqs.list_queues(MaxResults=max_results)
    assert error_code(info.value) == "InvalidParameterValue"


@both_protocols
def test_delete_queue_removes_it(sqs: Any, queue_url: str) -> None:
    name = queue_url.rsplit("/", 1)[1]
    sqs.send_message(QueueUrl=queue_url, MessageBody="doomed")
    sqs.delete_queue(QueueUrl=queue_url)
    with pytest.raises(sqs.exceptions.QueueDoesNotExist):
        sqs.get_queue_url(QueueName=name)
    with pytest.raises(sqs.exceptions.QueueDoesNotExist):
        sqs.send_message(QueueUrl=queue_url, MessageBody="after delete")
    assert list_all(sqs, name) == []
    with pytest.raises(sqs.exceptions.QueueDoesNotExist) as info:
        sqs.delete_queue(QueueUrl=queue_url)
    assert error_code(info.value) == "AWS.SimpleQueueService.NonExistentQueue"


# -- PurgeQueue -----------------------------------------------------------------------------------------------------

@both_protocols
def test_purge_queue_removes_every_message_and_limits_to_one_purge_a_minute(sqs: Any, queue_url: str) -> None:
    sqs.send_message_batch(QueueUrl=queue_url,
                           Entries=[{"Id": str(i), "MessageBody": f"m{i}"} for i in range(5)])
    sqs.send_message(QueueUrl=queue_url, MessageBody="delayed", DelaySeconds=60)
    received = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=2)["Messages"]
    assert len(received) == 2
    assert counters(sqs, queue_url) == (3, 2, 1)
    sqs.purge_queue(QueueUrl=queue_url)
    assert counters(sqs, queue_url) == (0, 0, 0)
    assert "Messages" not in sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=0)
    with pytest.raises(sqs.exceptions.PurgeQueueInProgress) as info:
        sqs.purge_queue(QueueUrl=queue_url)
    assert error_code(info.value) == "AWS.SimpleQueueService.PurgeQueueInProgress"


def test_purge_of_unknown_queue_is_nonexistent_queue(sqs: Any, server: RaftMQServer, queue_name: str) -> None:
    with pytest.raises(sqs.exceptions.QueueDoesNotExist):
        sqs.purge_queue(QueueUrl=f"{server.endpoint}/{ACCOUNT}/{queue_name}")


# -- Get/SetQueueAttributes -----------------------------------------------------------------------------------------

@both_protocols
def test_get_all_attributes_of_a_new_queue(sqs: Any, queue_url: str) -> None:
    before = int(time.time())
    name = queue_url.rsplit("/", 1)[1]
    attrs = attributes(sqs, queue_url, "All")
    for key, value in DEFAULTS.items():
        assert attrs[key] == value, key
    for key in COUNTERS:
        assert attrs[key] == "0", key
    assert attrs["QueueArn"] == f"arn:aws:sqs:us-east-1:{ACCOUNT}:{name}"
    created, modified = int(attrs["CreatedTimestamp"]), int(attrs["LastModifiedTimestamp"])
    assert before - 60 <= created <= before + 2, "CreatedTimestamp is epoch seconds of the creation"
    assert created <= modified <= before + 2


def test_get_attributes_returns_only_the_names_asked_for(sqs: Any, make_queue: Callable[..., str]) -> None:
    url = make_queue({"DelaySeconds": "3", "VisibilityTimeout": "7"})
    assert attributes(sqs, url, "DelaySeconds", "VisibilityTimeout") == {"DelaySeconds": "3", "VisibilityTimeout": "7"}
    assert set(attributes(sqs, url, "QueueArn", "CreatedTimestamp")) == {"QueueArn", "CreatedTimestamp"}
    assert attributes(sqs, url, "ApproximateNumberOfMessages") == {"ApproximateNumberOfMessages": "0"}


EVERY_NAME = [*DEFAULTS, *COUNTERS, "CreatedTimestamp", "LastModifiedTimestamp", "QueueArn"]


@pytest.mark.parametrize("name", EVERY_NAME)
def test_each_attribute_can_be_asked_for_alone(sqs: Any, make_queue: Callable[..., str], name: str) -> None:
    url = make_queue({"DelaySeconds": "5", "VisibilityTimeout": "31"})
    sqs.send_message(QueueUrl=url, MessageBody="counted")
    everything = attributes(sqs, url, "All")
    alone = attributes(sqs, url, name)
    assert alone == {name: everything[name]}
    expected = {"DelaySeconds": "5", "VisibilityTimeout": "31", "ApproximateNumberOfMessagesDelayed": "1",
                "ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}
    if name in expected:
        assert alone[name] == expected[name]
    else:
        assert alone[name] == DEFAULTS.get(name, alone[name]) and alone[name]


@both_protocols
def test_get_attributes_with_unknown_name_is_invalid_attribute_name(sqs: Any, queue_url: str) -> None:
    with pytest.raises(ClientError) as info:
        sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["NoSuchAttribute"])
    assert error_code(info.value) == "InvalidAttributeName"


@both_protocols
def test_approximate_counters_follow_messages(sqs: Any, queue_url: str) -> None:
    sqs.send_message_batch(QueueUrl=queue_url,
                           Entries=[{"Id": str(i), "MessageBody": f"m{i}"} for i in range(4)])
    sqs.send_message(QueueUrl=queue_url, MessageBody="later", DelaySeconds=30)
    assert counters(sqs, queue_url) == (4, 0, 1)
    received = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=3, VisibilityTimeout=30)["Messages"]
    assert len(received) == 3
    assert counters(sqs, queue_url) == (1, 3, 1)
    sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=received[0]["ReceiptHandle"])
    assert counters(sqs, queue_url) == (1, 2, 1)
    sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=received[1]["ReceiptHandle"],
                                  VisibilityTimeout=0)
    assert counters(sqs, queue_url) == (2, 1, 1)


@both_protocols
def test_set_attributes_changes_values_and_last_modified(sqs: Any, queue_url: str) -> None:
    created = int(attributes(sqs, queue_url, "CreatedTimestamp")["CreatedTimestamp"])
    new = {"VisibilityTimeout": "120", "MaximumMessageSize": "2048", "MessageRetentionPeriod": "60",
           "DelaySeconds": "900", "ReceiveMessageWaitTimeSeconds": "20"}
    before = int(time.time())
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes=new)
    attrs = attributes(sqs, queue_url, "All")
    for key, value in new.items():
        assert attrs[key] == value, key
    modified = int(attrs["LastModifiedTimestamp"])
    assert max(created, before - 1) <= modified <= int(time.time()) + 1
    assert int(attrs["CreatedTimestamp"]) == created


@pytest.mark.parametrize(("name", "value"), [
    ("VisibilityTimeout", "43201"), ("VisibilityTimeout", "-1"), ("VisibilityTimeout", "abc"),
    ("MessageRetentionPeriod", "59"), ("MessageRetentionPeriod", "1209601"),
    ("DelaySeconds", "901"), ("MaximumMessageSize", "1023"), ("MaximumMessageSize", "1048577"),
    ("ReceiveMessageWaitTimeSeconds", "21"),
])
def test_set_attributes_rejects_out_of_range_values(sqs: Any, queue_url: str, name: str, value: str) -> None:
    before = attributes(sqs, queue_url, "All")
    with pytest.raises(ClientError) as info:
        sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={name: value})
    assert error_code(info.value) == "InvalidAttributeValue"
    assert http_status(info.value) == 400
    after = attributes(sqs, queue_url, "All")
    assert after[name] == before[name]


@pytest.mark.parametrize(("name", "value"), [
    ("VisibilityTimeout", "0"), ("VisibilityTimeout", "43200"), ("MessageRetentionPeriod", "1209600"),
    ("MaximumMessageSize", "1024"), ("DelaySeconds", "0"),
])
def test_set_attributes_accepts_boundary_values(sqs: Any, queue_url: str, name: str, value: str) -> None:
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={name: value})
    assert attributes(sqs, queue_url, name) == {name: value}


@both_protocols
def test_set_attributes_with_unknown_name_is_invalid_attribute_name(sqs: Any, queue_url: str) -> None:
    with pytest.raises(ClientError) as info:
        sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"NoSuchAttribute": "1"})
    assert error_code(info.value) == "InvalidAttributeName"


@both_protocols
def test_read_only_attributes_cannot_be_set(sqs: Any, queue_url: str) -> None:
    with pytest.raises(ClientError) as info:
        sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"ApproximateNumberOfMessages": "5"})
    assert error_code(info.value) == "InvalidAttributeName"


# -- Tags -----------------------------------------------------------------------------------------------------------

@both_protocols
def test_tags_on_create_tag_untag_and_list(sqs: Any, queue_name: str) -> None:
    url = sqs.create_queue(QueueName=queue_name, tags={"team": "mq", "env": "test"})["QueueUrl"]
    assert sqs.list_queue_tags(QueueUrl=url)["Tags"] == {"team": "mq", "env": "test"}
    sqs.tag_queue(QueueUrl=url, Tags={"env": "prod", "cost": "42"})
    assert sqs.list_queue_tags(QueueUrl=url)["Tags"] == {"team": "mq", "env": "prod", "cost": "42"}
    sqs.untag_queue(QueueUrl=url, TagKeys=["team", "cost", "absent"])
    assert sqs.list_queue_tags(QueueUrl=url)["Tags"] == {"env": "prod"}
    sqs.untag_queue(QueueUrl=url, TagKeys=["env"])
    assert sqs.list_queue_tags(QueueUrl=url).get("Tags", {}) == {}


@both_protocols
@pytest.mark.parametrize(("operation", "kwargs"), [
    ("tag_queue", {"Tags": {"a": "b"}}), ("untag_queue", {"TagKeys": ["a"]}), ("list_queue_tags", {}),
])
def test_tag_operations_on_unknown_queue_are_nonexistent_queue(sqs: Any, server: RaftMQServer, queue_name: str,
                                                               operation: str, kwargs: dict[str, Any]) -> None:
    with pytest.raises(sqs.exceptions.QueueDoesNotExist):
        getattr(sqs, operation)(QueueUrl=f"{server.endpoint}/{ACCOUNT}/{queue_name}", **kwargs)
