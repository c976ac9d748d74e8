"""Wire shapes of SQS messages <-> model values: building send entries, rendering received messages."""

from __future__ import annotations

from typing import Any

from broker.ids import random_uuid
from broker.model import errors
from broker.model.commands import SendEntry
from broker.model.sqs_md5 import md5_of_attributes, md5_of_body
from broker.model.sqs_types import MessageAttribute, ReceivedMessage
from broker.model.sqs_validation import (
    attributes_size,
    check_body,
    check_delay,
    check_fifo_id,
    check_message_attributes,
)

SYSTEM_ATTRIBUTE_NAMES = ("SenderId", "SentTimestamp", "ApproximateReceiveCount", "ApproximateFirstReceiveTimestamp")


def build_send_entry(entry_id: str, params: dict[str, Any], fifo: bool = False) -> SendEntry:
    """Validate one message of a send call and hash it; raises the BrokerError AWS reports for it.

    FIFO queues need a MessageGroupId and refuse a per-message delay; standard queues refuse a
    MessageDeduplicationId and keep a MessageGroupId only to report it (fair queues).
    """
    body = check_body(params.get("MessageBody"))
    delay = check_delay(params.get("DelaySeconds"))
    group_id = check_fifo_id("MessageGroupId", params.get("MessageGroupId"))
    dedup_id: str | None = None
    if fifo:
        if delay:
            raise errors.InvalidParameterValue(f"Value {delay} for parameter DelaySeconds is invalid. Reason: The "
                                               "request include parameter that is not valid for this queue type.")
        delay = None
        if group_id is None:
            raise errors.MissingParameter("The request must contain the parameter MessageGroupId.")
        dedup_id = check_fifo_id("MessageDeduplicationId", params.get("MessageDeduplicationId"))
    elif params.get("MessageDeduplicationId") is not None:
        raise errors.InvalidParameterValue(
            "The request include parameter that is not valid for this queue type. Reason: MessageDeduplicationId")
    attributes = check_message_attributes(params.get("MessageAttributes"))
    system = check_message_attributes(params.get("MessageSystemAttributes"), system=True)
    body_bytes = body.encode("utf-8")
    return SendEntry(entry_id=entry_id, message_id=random_uuid(), body=body, md5_body=md5_of_body(body_bytes),
                     size=len(body_bytes) + attributes_size(attributes), delay_seconds=delay, attributes=attributes,
                     md5_attributes=md5_of_attributes(attributes), system_attributes=system,
                     md5_system_attributes=md5_of_attributes(system), group_id=group_id, dedup_id=dedup_id)


def plain_send_entry(entry_id: str, body: object) -> SendEntry:
    """``build_send_entry`` for the common message (standard queue, body only) without the general path's
    per-parameter checks: the gRPC API sends such messages by the thousand."""
    text = check_body(body)
    data = text.encode("utf-8")
    # tuple.__new__ with every field: ~2x cheaper than SendEntry(...), and this runs for every message sent
    return tuple.__new__(SendEntry, (entry_id, random_uuid(), text, md5_of_body(data), len(data), None, (), None,
                                     (), None, None, None))


def plain_send_entries(bodies: list[str], stored: list[str] | None = None) -> list[SendEntry]:
    """``plain_send_entry`` of each of ``bodies``, all non-empty printable ASCII (so valid and one byte a
    character: ``convert.plain_bodies`` found them so), with ids "0", "1", ...; an entry keeps its ``stored`` body
    (sealed) when given, its digest and size being the plaintext's."""
    new = tuple.__new__
    return [new(SendEntry, (str(i), random_uuid(), body, md5_of_body(text), len(text), None, (), None, (), None, None,
                            None))
            for i, (text, body) in enumerate(zip(bodies, stored or bodies, strict=True))]


def send_result(entry: SendEntry, outcome: object = None) -> dict[str, Any]:
    """The reply for a stored entry; ``outcome`` (FIFO) is (message id, sequence number) from the model, the
    original message's for a duplicate."""
    out: dict[str, Any] = {"MessageId": entry.message_id, "MD5OfMessageBody": entry.md5_body}
    if isinstance(outcome, tuple):
        out["MessageId"], out["SequenceNumber"] = outcome
    if entry.md5_attributes is not None:
        out["MD5OfMessageAttributes"] = entry.md5_attributes
    if entry.md5_system_attributes is not None:
        out["MD5OfMessageSystemAttributes"] = entry.md5_system_attributes
    return out


def attribute_selector(names: list[str] | None) -> tuple[bool, frozenset[str], tuple[str, ...]]:
    """(all, exact names, prefixes) from MessageAttributeNames: ``All``, ``.*``, ``prefix.*`` or names."""
    if not names:
        return False, frozenset(), ()
    if "All" in names or ".*" in names:
        return True, frozenset(), ()
    prefixes = tuple(n[:-1] for n in names if n.endswith(".*"))
    return False, frozenset(n for n in names if not n.endswith(".*")), prefixes


def render_message(received: ReceivedMessage, body: str, system_names: frozenset[str],
                   selector: tuple[bool, frozenset[str], tuple[str, ...]], region: str = "us-east-1") -> dict[str, Any]:
    """One received message as ReceiveMessage returns it; ``body`` as the consumer reads it (opened)."""
    msg = received.message
    out: dict[str, Any] = {"MessageId": msg.message_id, "ReceiptHandle": received.receipt_handle,
                           "MD5OfBody": msg.md5_body, "Body": body}
    if system_names:
        every = "All" in system_names
        values = {"SenderId": msg.sender_id, "SentTimestamp": str(msg.sent_ts),
                  "ApproximateReceiveCount": str(received.receive_count),
                  "ApproximateFirstReceiveTimestamp": str(received.first_receive_ts)}
        for name, _type, string_value, _binary in msg.system_attributes:
            values[name] = string_value or ""
        if msg.group_id is not None:
            values["MessageGroupId"] = msg.group_id
        if msg.dedup_id is not None:
            values["MessageDeduplicationId"] = msg.dedup_id
        if msg.sequence_number is not None:
            values["SequenceNumber"] = msg.sequence_number
        if msg.dlq_source is not None:
            account, _, name = msg.dlq_source.partition("/")
            values["DeadLetterQueueSourceArn"] = f"arn:aws:sqs:{region}:{account}:{name}"
        attrs = {k: v for k, v in values.items() if every or k in system_names}
        if attrs:
            out["Attributes"] = attrs
    take_all, exact, prefixes = selector
    if msg.attributes and (take_all or exact or prefixes):
        chosen: tuple[MessageAttribute, ...] = msg.attributes if take_all else tuple(
            a for a in msg.attributes if a[0] in exact or a[0].startswith(prefixes))
        if chosen:
            out["MessageAttributes"] = {name: _attribute_value(t, s, b) for name, t, s, b in chosen}
            out["MD5OfMessageAttributes"] = (msg.md5_attributes if len(chosen) == len(msg.attributes)
                                             else md5_of_attributes(chosen))
    return out


def _attribute_value(data_type: str, string_value: str | None, binary_value: bytes | None) -> dict[str, Any]:
    if binary_value is not None:
        return {"DataType": data_type, "BinaryValue": binary_value}
    return {"DataType": data_type, "StringValue": string_value}
