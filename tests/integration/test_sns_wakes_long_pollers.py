"""A publish fans out inside one replicated command: a consumer long-polling a subscribed queue is woken by it at
once, not at the end of its wait (the SQS part's wake-ups are delivered whichever part applied the command)."""

from __future__ import annotations

import threading
import time
from typing import Any

from tests.integration.conftest import make_client, unique_name
from tests.integration.server import RaftMQServer

WAIT_SECONDS = 10


def test_publish_wakes_a_long_poll_on_a_subscribed_queue(server: RaftMQServer) -> None:
    sns: Any = make_client("sns", server.endpoint)
    sqs: Any = make_client("sqs", server.endpoint)
    url = sqs.create_queue(QueueName=unique_name("woken"))["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    topic = sns.create_topic(Name=unique_name("t"))["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"})

    result: dict[str, Any] = {}
    polling = threading.Event()

    def poll() -> None:
        polling.set()
        started = time.monotonic()
        result["reply"] = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=WAIT_SECONDS)
        result["seconds"] = time.monotonic() - started

    poller = threading.Thread(target=poll)
    poller.start()
    polling.wait()
    time.sleep(0.3)  # let the poll reach the server and start waiting (there is no event to observe from here)
    sns.publish(TopicArn=topic, Message="wake up")
    poller.join(WAIT_SECONDS + 5)

    assert [m["Body"] for m in result["reply"]["Messages"]] == ["wake up"]
    assert result["seconds"] < WAIT_SECONDS / 2, result["seconds"]
