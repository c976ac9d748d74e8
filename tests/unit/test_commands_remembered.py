"""The proposing node applies the command it encoded instead of decoding its bytes again: that is only sound if
decoding yields an identical command (same types down to each tuple) for everything the services build."""

from __future__ import annotations

from broker.grpc_api.convert import send_entry_of
from broker.model.commands import (
    ChangeVisibility,
    Command,
    DeleteMessages,
    ReceiveMessages,
    SendMessages,
    decode,
    encode,
)
from broker.sqs.messages import build_send_entry, plain_send_entry
from proto.broker.v1 import queues_pb2 as pb

ACCOUNT = "000000000000"


def _attributes() -> dict[str, dict[str, object]]:
    return {"s": {"DataType": "String", "StringValue": "v"}, "n": {"DataType": "Number.int", "StringValue": "1"},
            "b": {"DataType": "Binary", "BinaryValue": b"\x00\xff"}}


def service_built_commands() -> list[Command]:
    """Commands as the SQS actions and the gRPC Queues API build them, in every shape they take."""
    plain = plain_send_entry("0", "body")
    full = build_send_entry("1", {"MessageBody": "x", "DelaySeconds": 5, "MessageAttributes": _attributes(),
                                  "MessageSystemAttributes": {"AWSTraceHeader": {"DataType": "String",
                                                                                  "StringValue": "Root=1"}}})
    fifo = build_send_entry("2", {"MessageBody": "f", "MessageGroupId": "g", "MessageDeduplicationId": "d"}, True)
    content = build_send_entry("3", {"MessageBody": "c", "MessageGroupId": "g"}, True)
    grpc_entry = send_entry_of("4", pb.SendEntry(body="y", attributes={"a": pb.AttributeValue(
        data_type="String", string_value="z")}), False)
    sealed = plain._replace(body="\x00RMK:AAAA")
    return [
        SendMessages(ACCOUNT, "q", ACCOUNT, (plain, full, grpc_entry, sealed)),
        SendMessages(ACCOUNT, "q.fifo", "AIDA", (fifo, content)),
        ReceiveMessages(ACCOUNT, "q", 10, None, None), ReceiveMessages(ACCOUNT, "q.fifo", 1000, 0, "attempt"),
        DeleteMessages(ACCOUNT, "q", (("0", "handle"), ("id", "other"))),
        ChangeVisibility(ACCOUNT, "q", (("0", "handle", 0), ("1", "h", 43200))),
    ]


def test_decoding_yields_the_command_that_was_encoded() -> None:
    for command in service_built_commands():
        assert repr(decode(encode(command), remembered=False)) == repr(command)


def test_the_proposer_gets_its_own_command_back_and_any_other_copy_is_decoded() -> None:
    command = service_built_commands()[0]
    data = encode(command)
    assert decode(data) is command
    copy = bytes(bytearray(data))  # equal bytes arriving from elsewhere (a follower's log)
    assert decode(copy) is not command and repr(decode(copy)) == repr(command)
    assert decode(data) is not command  # remembered once: the entry is applied once
