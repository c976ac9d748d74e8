"""The SNS model without I/O: fan-out inside the publish entry, FIFO dedup, HTTP delivery bookkeeping, restore."""

from __future__ import annotations

import json

import pytest

from broker.model import commands, errors
from broker.model.commands import CreateQueue, ReceiveMessages
from broker.model.sns_commands import (
    ConfirmSubscription,
    CreateTopic,
    DeliveryOutcome,
    Publish,
    PublishEntry,
    SetSubscriptionAttribute,
    Subscribe,
    Unsubscribe,
)
from broker.model.sns_envelope import iso_timestamp
from broker.model.sns_model import SnsModel
from broker.model.sns_policy import retry_delay_ms
from broker.model.sqs_model import SqsModel
from broker.notify import Notifier
from broker.state_machine import BrokerStateMachine
from cluster.api import EntryMeta
from storage.changes import MemoryTables

ACCOUNT = "000000000000"
TOPIC = f"arn:aws:sns:us-east-1:{ACCOUNT}:t"
FIFO_TOPIC = f"arn:aws:sns:us-east-1:{ACCOUNT}:t.fifo"
ENDPOINT = "http://localhost:1"


class Node:
    """A state machine over memory tables; every command goes through encode/decode like the log."""

    def __init__(self) -> None:
        self.tables = MemoryTables()
        self.sqs = SqsModel()
        self.sns = SnsModel(self.sqs)
        self.notifier = Notifier()
        self.machine = BrokerStateMachine(self.sqs, self.notifier, self.sns)
        self.index = 0
        self.ts = 1_700_000_000_000

    def run(self, command: commands.Command, advance_ms: int = 1) -> object:
        self.index += 1
        self.ts += advance_ms
        reply = self.machine.apply(EntryMeta(self.index, 1, self.ts), commands.encode(command), self.tables)
        self.machine.flush_rows(self.tables)  # a checkpoint after every entry
        return reply

    def restored(self) -> Node:
        other = Node()
        other.tables = self.tables
        other.machine.restore(self.tables)
        other.index, other.ts = self.index, self.ts
        return other

    def receive(self, queue: str) -> list[str]:
        got = self.run(ReceiveMessages(ACCOUNT, queue, 10))
        assert isinstance(got, list)
        return [m.message.body for m in got]


def entry(message: str, message_id: str = "m1", **kwargs: object) -> PublishEntry:
    return PublishEntry(kwargs.pop("entry_id", "e"), message_id, message, None,  # type: ignore[arg-type]
                        kwargs.pop("attributes", ()), iso_timestamp(0), "sig", "1", (),  # type: ignore[arg-type]
                        kwargs.pop("group_id", None), kwargs.pop("dedup_id", None))  # type: ignore[arg-type]


def queue_arn(name: str) -> str:
    return f"arn:aws:sqs:us-east-1:{ACCOUNT}:{name}"


def subscribe_queue(node: Node, topic: str, queue: str, **attributes: str) -> str:
    node.run(CreateQueue(ACCOUNT, queue, (("FifoQueue", "true"),) if queue.endswith(".fifo") else ()))
    reply = node.run(Subscribe(topic, f"{topic}:{queue}-sub", "sqs", queue_arn(queue), ACCOUNT,
                               tuple(sorted(attributes.items()))))
    assert isinstance(reply, tuple)
    return str(reply[0])


def test_publish_fans_out_in_the_same_entry_with_filters() -> None:
    node = Node()
    node.run(CreateTopic(TOPIC))
    subscribe_queue(node, TOPIC, "all", RawMessageDelivery="true")
    subscribe_queue(node, TOPIC, "red", RawMessageDelivery="true", FilterPolicy='{"color": ["red"]}')
    subscribe_queue(node, TOPIC, "big", RawMessageDelivery="true", FilterPolicyScope="MessageBody",
                    FilterPolicy='{"size": [{"numeric": [">", 10]}]}')
    entries = (entry('{"size": 5}', "a", attributes=(("color", "String", "red", None),)),
               entry('{"size": 50}', "b", entry_id="2"))
    reply = node.run(Publish(TOPIC, ENDPOINT, entries))
    assert reply == [("a", None), ("b", None)]
    assert sorted(node.receive("all")) == ['{"size": 50}', '{"size": 5}']
    assert node.receive("red") == ['{"size": 5}']
    assert node.receive("big") == ['{"size": 50}']


def test_envelope_and_copies_are_identical_after_restore() -> None:
    node = Node()
    node.run(CreateTopic(TOPIC))
    subscribe_queue(node, TOPIC, "q")
    node.run(Publish(TOPIC, ENDPOINT, (entry("hello"),)))
    again = node.restored()
    [body] = again.receive("q")
    doc = json.loads(body)
    assert (doc["Type"], doc["Message"], doc["MessageId"], doc["Signature"]) == ("Notification", "hello", "m1", "sig")
    assert doc["SigningCertURL"] == ENDPOINT + "/SimpleNotificationService-raftmq.pem"


def test_unconfirmed_and_unsubscribed_endpoints_get_nothing() -> None:
    node = Node()
    node.run(CreateTopic(TOPIC))
    sub = subscribe_queue(node, TOPIC, "q", RawMessageDelivery="true")
    node.run(Subscribe(TOPIC, f"{TOPIC}:h", "http", ENDPOINT + "/h", ACCOUNT, (), "tok", ENDPOINT))
    assert [d.kind for d in node.sns.deliveries.values()] == ["SubscriptionConfirmation"]
    node.run(Publish(TOPIC, ENDPOINT, (entry("one"),)))
    assert len(node.sns.deliveries) == 1  # the pending http subscription receives no notification
    assert node.run(ConfirmSubscription(TOPIC, "wrong")) == errors.InvalidParameterException("Invalid token")
    assert node.run(ConfirmSubscription(TOPIC, "tok")) == f"{TOPIC}:h"
    node.run(Unsubscribe(sub))
    node.run(Publish(TOPIC, ENDPOINT, (entry("two", "m2"),)))
    assert node.receive("q") == ["one"]
    assert sorted(d.kind for d in node.sns.deliveries.values()) == ["Notification", "SubscriptionConfirmation"]


def test_fifo_topic_dedups_and_keeps_group_order_into_a_fifo_queue() -> None:
    node = Node()
    node.run(CreateTopic(FIFO_TOPIC, (("FifoTopic", "true"),)))
    subscribe_queue(node, FIFO_TOPIC, "q.fifo", RawMessageDelivery="true")
    first = node.run(Publish(FIFO_TOPIC, ENDPOINT, tuple(
        entry(f"m{i}", f"id{i}", entry_id=str(i), group_id="g", dedup_id=f"d{i}") for i in range(3))))
    assert isinstance(first, list) and [r[0] for r in first] == ["id0", "id1", "id2"]
    assert [int(r[1]) for r in first] == sorted(int(r[1]) for r in first)
    duplicate = node.run(Publish(FIFO_TOPIC, ENDPOINT, (entry("m1 again", "x", group_id="g", dedup_id="d1"),)))
    assert duplicate == [first[1]]
    assert node.restored().run(Publish(FIFO_TOPIC, ENDPOINT, (
        entry("again", "y", group_id="g", dedup_id="d2"),))) == [first[2]]
    later = node.run(Publish(FIFO_TOPIC, ENDPOINT, (entry("late", "z", group_id="g", dedup_id="d1"),)),
                     advance_ms=300_001)
    assert isinstance(later, list) and later[0][0] == "z"  # the window is five minutes
    assert node.receive("q.fifo") == ["m0", "m1", "m2", "late"]


def test_http_delivery_retries_by_policy_then_goes_to_the_dead_letter_queue() -> None:
    node = Node()
    node.run(CreateTopic(TOPIC))
    node.run(CreateQueue(ACCOUNT, "dlq"))
    node.run(Subscribe(TOPIC, f"{TOPIC}:h", "http", ENDPOINT, ACCOUNT, (), None, ENDPOINT))
    policy = {"healthyRetryPolicy": {"minDelayTarget": 1, "maxDelayTarget": 4, "numRetries": 3,
                                     "backoffFunction": "linear"}}
    node.run(SetSubscriptionAttribute(f"{TOPIC}:h", "DeliveryPolicy", json.dumps(policy)))
    node.run(SetSubscriptionAttribute(f"{TOPIC}:h", "RedrivePolicy",
                                      json.dumps({"deadLetterTargetArn": queue_arn("dlq")})))
    node.run(Publish(TOPIC, ENDPOINT, (entry("payload"),)))
    [delivery] = node.sns.deliveries.values()
    published_at = node.ts
    delays = []
    for attempt in range(3):
        assert node.run(DeliveryOutcome(delivery.delivery_id, attempt + 5, False)) is None  # stale: ignored
        node.run(DeliveryOutcome(delivery.delivery_id, attempt, False))
        current = node.restored().sns.deliveries[delivery.delivery_id]
        assert current.attempt == attempt + 1
        delays.append(current.due - node.ts)
    assert delays == [2000, 3000, 4000]  # linear from min to max over the backoff phase
    assert node.receive("dlq") == []
    node.run(DeliveryOutcome(delivery.delivery_id, 3, False))
    assert node.sns.deliveries == {}
    [dead] = node.receive("dlq")
    assert json.loads(dead)["Message"] == "payload"
    assert node.ts > published_at


def test_a_delivered_message_is_settled() -> None:
    node = Node()
    node.run(CreateTopic(TOPIC))
    node.run(Subscribe(TOPIC, f"{TOPIC}:h", "http", ENDPOINT, ACCOUNT, (), None, ENDPOINT))
    node.run(Publish(TOPIC, ENDPOINT, (entry("payload"),)))
    [delivery] = node.sns.deliveries.values()
    node.run(DeliveryOutcome(delivery.delivery_id, 0, True))
    assert node.sns.deliveries == {} and node.restored().sns.deliveries == {}


@pytest.mark.parametrize(("retry", "expected"), [
    ({"numRetries": 3, "minDelayTarget": 20, "maxDelayTarget": 20}, [20_000, 20_000, 20_000, None]),
    ({"numRetries": 4, "numNoDelayRetries": 1, "numMinDelayRetries": 1, "numMaxDelayRetries": 1,
      "minDelayTarget": 1, "maxDelayTarget": 9}, [0, 1000, 9000, 9000, None]),
    ({"numRetries": 2, "minDelayTarget": 1, "maxDelayTarget": 4, "backoffFunction": "exponential"},
     [2000, 4000, None]),
])
def test_retry_phases(retry: dict[str, object], expected: list[int | None]) -> None:
    full = {"numNoDelayRetries": 0, "numMinDelayRetries": 0, "numMaxDelayRetries": 0, "backoffFunction": "linear",
            **retry}
    assert [retry_delay_ms(full, n) for n in range(1, len(expected) + 1)] == expected


def test_publish_to_a_missing_topic_is_not_found() -> None:
    node = Node()
    assert node.run(Publish(TOPIC, ENDPOINT, (entry("x"),))) == errors.NotFoundException("Topic does not exist")
