"""A Hypothesis state machine drives a real FIFO queue through boto3 and checks every answer against a small
reference model of SQS FIFO semantics.

The model: each group is a list of messages in send order; a message is pending or in flight; a group with any
message in flight delivers nothing; a receive returns, per group it touches, a prefix of that group's pending
messages in order; a released message (visibility 0) goes back to its place in its group; a send whose
deduplication id was seen (in this 5-minute window: the test never waits that long) answers the original
MessageId and enqueues nothing. Which groups a receive serves is the server's choice; the model checks that the
choice is legal and that a receive returns something whenever some group can deliver (RaftMQ is one state machine,
so unlike AWS's sampled short polls it never returns empty while a message is available). Visibility timeouts are
600 s, so nothing returns by time. The unit tests run the same kind of machine on the pure model; this one proves
the wire, the service and the replicated log keep those semantics.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

GROUPS = ("a", "b", "c")


@dataclass(slots=True)
class Sent:
    message_id: str
    body: str
    group: str
    order: int  # position in the send order (the model's sequence number)
    handle: str | None = None  # receipt handle while in flight


@dataclass(slots=True)
class Model:
    messages: dict[str, Sent] = field(default_factory=dict)  # by MessageId, live messages only
    dedup: dict[str, str] = field(default_factory=dict)  # deduplication id -> MessageId
    sent: int = 0

    def group(self, group: str) -> list[Sent]:
        return sorted((m for m in self.messages.values() if m.group == group), key=lambda m: m.order)

    def blocked(self, group: str) -> bool:
        return any(m.handle is not None for m in self.group(group))

    def pending(self, group: str) -> list[Sent]:
        return [m for m in self.group(group) if m.handle is None]

    def deliverable(self) -> bool:
        return any(self.pending(g) and not self.blocked(g) for g in GROUPS)


class FifoMachine(RuleBasedStateMachine):
    def __init__(self, sqs: Any) -> None:
        super().__init__()
        self.sqs = sqs
        name = f"stateful-{uuid.uuid4().hex[:16]}.fifo"
        self.url: str = sqs.create_queue(QueueName=name, Attributes={"FifoQueue": "true"})["QueueUrl"]
        self.model = Model()

    @rule(group=st.sampled_from(GROUPS), dedup=st.integers(0, 7))
    def send(self, group: str, dedup: int) -> None:
        dedup_id = f"d{dedup}"
        body = f"{group}-{self.model.sent}"
        response = self.sqs.send_message(QueueUrl=self.url, MessageBody=body, MessageGroupId=group,
                                         MessageDeduplicationId=dedup_id)
        if dedup_id in self.model.dedup:
            assert response["MessageId"] == self.model.dedup[dedup_id], "a duplicate must answer the original id"
            return
        self.model.dedup[dedup_id] = response["MessageId"]
        self.model.messages[response["MessageId"]] = Sent(response["MessageId"], body, group, self.model.sent)
        self.model.sent += 1

    @rule(max_messages=st.integers(1, 10))
    def receive(self, max_messages: int) -> None:
        got = self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=max_messages, WaitTimeSeconds=0,
                                       VisibilityTimeout=600).get("Messages", [])
        assert len(got) <= max_messages
        if self.model.deliverable():
            assert got, "a group could deliver, yet the receive came back empty"
        per_group: dict[str, list[str]] = {}
        for message in got:
            known = self.model.messages.get(message["MessageId"])
            assert known is not None, f"unknown or deleted message delivered: {message['Body']}"
            assert known.body == message["Body"]
            per_group.setdefault(known.group, []).append(message["MessageId"])
        for group, ids in per_group.items():
            assert not self.model.blocked(group), f"group {group} delivered while a message of it was in flight"
            expected = [m.message_id for m in self.model.pending(group)][:len(ids)]
            assert ids == expected, f"group {group} out of order"
        for message in got:
            self.model.messages[message["MessageId"]].handle = message["ReceiptHandle"]

    def _in_flight(self) -> list[Sent]:
        return sorted((m for m in self.model.messages.values() if m.handle is not None), key=lambda m: m.order)

    @precondition(lambda self: any(m.handle is not None for m in self.model.messages.values()))
    @rule(pick=st.integers(0, 1_000))
    def delete(self, pick: int) -> None:
        in_flight = self._in_flight()
        victim = in_flight[pick % len(in_flight)]
        self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=victim.handle)
        del self.model.messages[victim.message_id]

    @precondition(lambda self: any(m.handle is not None for m in self.model.messages.values()))
    @rule(pick=st.integers(0, 1_000))
    def release(self, pick: int) -> None:
        in_flight = self._in_flight()
        victim = in_flight[pick % len(in_flight)]
        self.sqs.change_message_visibility(QueueUrl=self.url, ReceiptHandle=victim.handle, VisibilityTimeout=0)
        victim.handle = None

    @invariant()
    def counters_match(self) -> None:
        attrs = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        in_flight = sum(1 for m in self.model.messages.values() if m.handle is not None)
        assert (int(attrs["ApproximateNumberOfMessages"]), int(attrs["ApproximateNumberOfMessagesNotVisible"])) == (
            len(self.model.messages) - in_flight, in_flight)

    def teardown(self) -> None:
        self.sqs.delete_queue(QueueUrl=self.url)


def test_fifo_queue_matches_the_reference_model(sqs: Any) -> None:
    run_state_machine_as_test(  # type: ignore[no-untyped-call]
        lambda: FifoMachine(sqs),
        settings=settings(max_examples=25, stateful_step_count=30, deadline=None, derandomize=True,
                          suppress_health_check=list(HealthCheck), database=None))
