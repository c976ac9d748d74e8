"""Protobuf <-> the SQS service's shapes: send entries in, received messages out (no queue semantics here)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from broker.model.commands import SendEntry as ModelSendEntry
from broker.model.sqs_types import ReceivedMessage
from broker.sqs.messages import build_send_entry, plain_send_entry
from proto.broker.v1.queues_pb2 import AttributeValue, ReceiveResponse, SendEntry, SendRequest


def send_entry_of(entry_id: str, entry: SendEntry, fifo: bool) -> ModelSendEntry:
    """One SendEntry validated and hashed by the SQS service's rules (raises the BrokerError AWS would)."""
    if fifo or entry.attributes or entry.group_id or entry.deduplication_id or entry.HasField("delay_seconds"):
        return build_send_entry(entry_id, send_params(entry), fifo)
    return plain_send_entry(entry_id, entry.body)


SHORT_BODY = 125  # the longest body whose entry, and the entry's field, have one-byte lengths: 4 bytes around it


def plain_bodies(request: SendRequest) -> list[str] | None:
    """The bodies of ``request`` when every entry is a body of printable ASCII and nothing else, the message the
    gRPC API sends by the thousand, whose checks then come down to this; None otherwise (``send_entry_of`` one by
    one, which reports each entry's own error).

    "Nothing else" is read off the request's encoded size: an entry with only its body set encodes as a tag, a
    length and the body, and any other field set (even an explicit delay_seconds=0) adds bytes. One call into
    the protobuf runtime instead of five field reads per entry."""
    bodies = [entry.body for entry in request.entries]
    joined = "".join(bodies)
    if not (joined.isascii() and joined.isprintable()) or not all(bodies):
        return None
    plain = _field_size(len(request.queue.encode("utf-8"))) if request.queue else 0
    if max(map(len, bodies)) <= SHORT_BODY:
        plain += len(joined) + 4 * len(bodies)
    else:
        plain += sum(_field_size(_field_size(len(body))) for body in bodies)
    return bodies if request.ByteSize() == plain else None


def _field_size(length: int) -> int:
    """Encoded size of a length-delimited field numbered below 16 whose value is ``length`` bytes long."""
    return 1 + ((length.bit_length() + 6) // 7 or 1) + length


def send_params(entry: SendEntry) -> dict[str, Any]:
    """One SendEntry as the SQS service's SendMessage parameters (validated there, by the same rules)."""
    params: dict[str, Any] = {"MessageBody": entry.body}
    if entry.HasField("delay_seconds"):
        params["DelaySeconds"] = entry.delay_seconds
    if entry.group_id:
        params["MessageGroupId"] = entry.group_id
    if entry.deduplication_id:
        params["MessageDeduplicationId"] = entry.deduplication_id
    if entry.attributes:
        params["MessageAttributes"] = attribute_params(entry.attributes)
    return params


def attribute_params(attributes: Mapping[str, AttributeValue]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name, value in attributes.items():
        shape: dict[str, Any] = {"DataType": value.data_type}
        if value.data_type.startswith("Binary"):
            shape["BinaryValue"] = value.binary_value
        else:
            shape["StringValue"] = value.string_value
        out[name] = shape
    return out


def received_response(received: list[ReceivedMessage], bodies: list[str]) -> ReceiveResponse:
    """The response carrying ``received`` with ``bodies`` (opened), every field a consumer may need (the wire is
    cheap next to a second call). Each message is built in place (``messages.add``): building Messages and then
    passing the list copies each one again, which cost more than twice as much per message."""
    out = ReceiveResponse()
    add = out.messages.add
    for r, body in zip(received, bodies, strict=True):
        msg = r.message
        m = add(message_id=msg.message_id, receipt_handle=r.receipt_handle, body=body, md5_of_body=msg.md5_body,
                receive_count=r.receive_count, sent_timestamp_ms=msg.sent_ts,
                first_receive_timestamp_ms=r.first_receive_ts, sender_id=msg.sender_id)
        if msg.group_id is not None:  # FIFO (or a standard message sent with a group id)
            m.group_id = msg.group_id
            if msg.dedup_id is not None:
                m.deduplication_id = msg.dedup_id
            if msg.sequence_number is not None:
                m.sequence_number = msg.sequence_number
        for name, data_type, string_value, binary_value in msg.attributes:
            value = m.attributes[name]
            value.data_type = data_type
            if binary_value is not None:
                value.binary_value = binary_value
            else:
                value.string_value = string_value or ""
    return out
