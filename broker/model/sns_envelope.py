"""The JSON documents SNS delivers (Notification, SubscriptionConfirmation) and the text their signature covers.

Pure and deterministic: the same entry gives byte-identical envelopes on every node. Field order follows what AWS
sends. ``string_to_sign`` is AWS's canonical form: ``Name\\nValue\\n`` for each signed field in a fixed order.
"""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import quote

from broker.model.sqs_types import MessageAttribute

CERT_PATH = "/SimpleNotificationService-raftmq.pem"
_NOTIFICATION_FIELDS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
_CONFIRMATION_FIELDS = ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")


def cert_url(endpoint_url: str) -> str:
    return endpoint_url.rstrip("/") + CERT_PATH


def unsubscribe_url(endpoint_url: str, sub_arn: str) -> str:
    return (f"{endpoint_url.rstrip('/')}/?Action=Unsubscribe&Version=2010-03-31"
            f"&SubscriptionArn={quote(sub_arn, safe='')}")


def subscribe_url(endpoint_url: str, topic_arn: str, token: str) -> str:
    return (f"{endpoint_url.rstrip('/')}/?Action=ConfirmSubscription&Version=2010-03-31"
            f"&TopicArn={quote(topic_arn, safe='')}"
            f"&Token={quote(token, safe='')}")


def string_to_sign(doc: dict[str, Any]) -> str:
    """The canonical text signed for ``doc`` (a Notification or a (Un)SubscriptionConfirmation)."""
    fields = _NOTIFICATION_FIELDS if doc["Type"] == "Notification" else _CONFIRMATION_FIELDS
    return "".join(f"{name}\n{doc[name]}\n" for name in fields if doc.get(name) is not None)


def notification_fields(message_id: str, topic_arn: str, subject: str | None, message: str,
                        timestamp: str) -> dict[str, Any]:
    """The signed part of a Notification (what ``string_to_sign`` reads)."""
    doc: dict[str, Any] = {"Type": "Notification", "MessageId": message_id, "TopicArn": topic_arn}
    if subject is not None:
        doc["Subject"] = subject
    doc["Message"] = message
    doc["Timestamp"] = timestamp
    return doc


def attributes_json(attributes: tuple[MessageAttribute, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, data_type, string_value, binary_value in attributes:
        value = base64.b64encode(binary_value).decode() if binary_value is not None else string_value
        out[name] = {"Type": data_type, "Value": value}
    return out


def notification(fields: dict[str, Any], *, signature_version: str, signature: str, endpoint_url: str,
                 sub_arn: str, attributes: tuple[MessageAttribute, ...],
                 sequence_number: str | None = None) -> str:
    """The Notification JSON one subscription receives."""
    doc = dict(fields)
    if sequence_number is not None:
        doc["SequenceNumber"] = sequence_number
    doc["SignatureVersion"] = signature_version
    doc["Signature"] = signature
    doc["SigningCertURL"] = cert_url(endpoint_url)
    doc["UnsubscribeURL"] = unsubscribe_url(endpoint_url, sub_arn)
    if attributes:
        doc["MessageAttributes"] = attributes_json(attributes)
    return json.dumps(doc, ensure_ascii=False)


def confirmation_fields(message_id: str, topic_arn: str, token: str, endpoint_url: str,
                        timestamp: str) -> dict[str, Any]:
    """The signed part of a SubscriptionConfirmation."""
    return {"Type": "SubscriptionConfirmation", "MessageId": message_id, "Token": token, "TopicArn": topic_arn,
            "Message": (f"You have chosen to subscribe to the topic {topic_arn}.\n"
                        "To confirm the subscription, visit the SubscribeURL included in this message."),
            "SubscribeURL": subscribe_url(endpoint_url, topic_arn, token), "Timestamp": timestamp}


def iso_timestamp(ms: int) -> str:
    """Epoch milliseconds as AWS writes them in envelopes: ``2026-11-28T16:18:30.123Z`` (pure arithmetic: the
    model may not import clocks)."""
    days, rest = divmod(ms, 86_400_000)
    # civil date from days since 1970-01-01 (H. Hinnant's algorithm)
    z = days + 719_468
    era = z // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    year = yoe + era * 400 + (month <= 2)
    seconds, millis = divmod(rest, 1000)
    minutes, second = divmod(seconds, 60)
    hour, minute = divmod(minutes, 60)
    return f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}.{millis:03d}Z"
