"""Stateless SNS request checks with AWS's wording: names, ARNs, attributes, messages (before anything is proposed)."""

from __future__ import annotations

import json
import re
from typing import Any

from broker.model import errors
from broker.model.sns_filter import SCOPE_ATTRIBUTES, SCOPE_BODY, parse_policy
from broker.model.sns_policy import check_delivery_policy
from broker.model.sqs_types import MessageAttribute
from broker.model.sqs_validation import arn_queue

MAX_MESSAGE_BYTES = 262_144
MAX_BATCH_ENTRIES = 10
_TOPIC_NAME = re.compile(r"[A-Za-z0-9_-]{1,256}")
_TOPIC_ARN = re.compile(r"arn:aws:sns:([a-z0-9-]+):(\d{12}):([A-Za-z0-9_.-]{1,256})")
_SUB_ARN = re.compile(r"arn:aws:sns:([a-z0-9-]+):(\d{12}):([A-Za-z0-9_.-]{1,256}):[0-9a-f-]{36}")
_BATCH_ID = re.compile(r"[A-Za-z0-9_-]{1,80}")
TOPIC_ATTRIBUTES = frozenset({
    "DeliveryPolicy", "DisplayName", "FifoTopic", "Policy", "KmsMasterKeyId", "SignatureVersion", "TracingConfig",
    "ContentBasedDeduplication", "ArchivePolicy", "FifoThroughputScope", "DataProtectionPolicy",
    "HTTPSuccessFeedbackRoleArn", "HTTPFailureFeedbackRoleArn", "HTTPSuccessFeedbackSampleRate",
    "SQSSuccessFeedbackRoleArn", "SQSFailureFeedbackRoleArn", "SQSSuccessFeedbackSampleRate",
})
SUBSCRIPTION_ATTRIBUTES = frozenset({"DeliveryPolicy", "FilterPolicy", "FilterPolicyScope", "RawMessageDelivery",
                                     "RedrivePolicy", "SubscriptionRoleArn", "ReplayPolicy"})
SUPPORTED_PROTOCOLS = ("sqs", "http", "https")
KNOWN_PROTOCOLS = frozenset({"email", "email-json", "sms", "lambda", "application", "firehose"})
PERMISSION_ACTIONS = frozenset({"AddPermission", "DeleteTopic", "GetTopicAttributes", "ListSubscriptionsByTopic",
                                "Publish", "Receive", "RemovePermission", "SetTopicAttributes", "Subscribe"})


def invalid(reason: str) -> errors.BrokerError:
    return errors.InvalidParameterException(f"Invalid parameter: {reason}")


def required(params: dict[str, Any], name: str) -> str:
    value = params.get(name)
    if not isinstance(value, str) or not value:
        raise invalid(name)
    return value


def check_topic_name(name: object, attributes: dict[str, str]) -> str:
    if not isinstance(name, str) or not name:
        raise invalid("Topic Name")
    fifo = attributes.get("FifoTopic", "false").lower() == "true"
    if fifo:
        if not name.endswith(".fifo") or not _TOPIC_NAME.fullmatch(name[:-5]) or len(name) > 256:
            raise invalid("Fifo Topic names must end with .fifo and must be made up of only uppercase and lowercase "
                          "ASCII letters, numbers, underscores, and hyphens, and must be between 1 and 256 "
                          "characters long.")
    elif not _TOPIC_NAME.fullmatch(name):
        raise invalid("Topic Name")
    return name


def topic_arn(region: str, account: str, name: str) -> str:
    return f"arn:aws:sns:{region}:{account}:{name}"


def check_topic_arn(value: object, param: str = "TopicArn") -> str:
    if not isinstance(value, str) or not value:
        raise invalid(param)
    if not _TOPIC_ARN.fullmatch(value):
        raise invalid(f"{param}")
    return value


def check_sub_arn(value: object) -> str:
    if not isinstance(value, str) or not _SUB_ARN.fullmatch(value):
        raise invalid("SubscriptionArn")
    return value


def check_topic_attributes(raw: dict[str, Any], *, creating: bool) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in raw.items():
        if name not in TOPIC_ATTRIBUTES or (not creating and name == "FifoTopic"):
            raise invalid("AttributeName")
        out[name] = check_topic_attribute(name, "" if value is None else str(value))
    if creating:
        if out.get("FifoTopic", "false").lower() == "true":
            out["FifoTopic"] = "true"
        else:
            out.pop("FifoTopic", None)
            if "ContentBasedDeduplication" in out:
                raise invalid("ContentBasedDeduplication Reason: Content based deduplication can only be set for "
                              "FIFO topics")
    return out


def check_topic_attribute(name: str, value: str) -> str:
    if name in ("FifoTopic", "ContentBasedDeduplication"):
        if value.lower() not in ("true", "false"):
            raise invalid(f"{name}: Invalid value [{value}]. Must be true or false.")
        return value.lower()
    if name == "SignatureVersion" and value not in ("1", "2"):
        raise invalid("SignatureVersion")
    if name == "DisplayName" and len(value) > 100:
        raise invalid("DisplayName")
    if name in ("Policy", "ArchivePolicy", "DataProtectionPolicy") and value:
        try:
            if not isinstance(json.loads(value), dict):
                raise ValueError
        except ValueError:
            raise invalid(f"{name}: failed to parse JSON.") from None
    if name == "DeliveryPolicy" and value:
        check_delivery_policy(value, topic=True)
    return value


def check_subscription_attributes(raw: dict[str, Any], protocol: str) -> dict[str, str]:
    out = {name: check_subscription_attribute(name, "" if value is None else str(value), protocol)
           for name, value in raw.items()}
    policy = out.get("FilterPolicy")
    if policy:
        parse_policy(policy, out.get("FilterPolicyScope", SCOPE_ATTRIBUTES))
    return out


def check_subscription_attribute(name: str, value: str, protocol: str) -> str:
    if name not in SUBSCRIPTION_ATTRIBUTES:
        raise invalid("AttributeName")
    if name == "RawMessageDelivery":
        if value.lower() not in ("true", "false"):
            raise invalid(f"RawMessageDelivery: Invalid value [{value}]. Must be true or false.")
        return value.lower()
    if name == "FilterPolicyScope" and value not in (SCOPE_ATTRIBUTES, SCOPE_BODY):
        raise invalid(f"FilterPolicyScope: Invalid value [{value}]. Please use either MessageBody or "
                      "MessageAttributes")
    if name == "RedrivePolicy" and value:
        try:
            policy = json.loads(value)
        except ValueError:
            raise invalid("RedrivePolicy: failed to parse JSON.") from None
        target = policy.get("deadLetterTargetArn") if isinstance(policy, dict) else None
        if target is None:
            raise invalid("RedrivePolicy: deadLetterTargetArn is missing")
        if not isinstance(target, str) or arn_queue(target) is None:
            raise invalid("RedrivePolicy: Invalid deadLetterTargetArn")
    if name == "DeliveryPolicy" and value:
        if protocol not in ("http", "https"):
            raise invalid("DeliveryPolicy: Delivery policy is only supported for HTTP/S subscriptions")
        check_delivery_policy(value, topic=False)
    return value


def check_endpoint(protocol: object, endpoint: object) -> tuple[str, str]:
    if not isinstance(protocol, str) or not protocol:
        raise invalid("Protocol")
    protocol = protocol.lower()
    if protocol not in SUPPORTED_PROTOCOLS:
        if protocol in KNOWN_PROTOCOLS:
            raise invalid(f"Protocol Reason: RaftMQ cannot deliver to {protocol} endpoints; supported protocols "
                          "are sqs, http and https")
        raise invalid("Amazon SNS does not support this protocol")
    if not isinstance(endpoint, str) or not endpoint:
        raise invalid("Endpoint")
    if protocol == "sqs" and arn_queue(endpoint) is None:
        raise invalid("SQS endpoint ARN")
    if protocol in ("http", "https") and not endpoint.lower().startswith(protocol + "://"):
        raise invalid("Endpoint must match the specified protocol")
    return protocol, endpoint


def check_message_attributes(raw: object) -> tuple[MessageAttribute, ...]:
    """SNS message attributes (String, String.Array, Number, Binary), sorted by name."""
    if not raw:
        return ()
    if not isinstance(raw, dict):
        raise invalid("MessageAttributes")
    out: list[MessageAttribute] = []
    for name in sorted(raw):
        value = raw[name] if isinstance(raw[name], dict) else {}
        data_type = value.get("DataType")
        if not isinstance(data_type, str) or not data_type:
            raise errors.SnsInvalidParameterValue(
                f"The message attribute '{name}' must contain non-empty message attribute type.")
        base = data_type.split(".", 1)[0]
        if base not in ("String", "Number", "Binary"):
            raise errors.SnsInvalidParameterValue(
                f"The message attribute '{name}' has an invalid message attribute type, the set of supported type "
                "prefixes is Binary, Number, and String.")
        if base == "Binary":
            binary = value.get("BinaryValue")
            if not isinstance(binary, bytes) or not binary:
                raise errors.SnsInvalidParameterValue(
                    f"The message attribute '{name}' must contain non-empty message attribute value for message "
                    "attribute type 'Binary'.")
            out.append((name, data_type, None, binary))
            continue
        string = value.get("StringValue")
        if not isinstance(string, str) or not string:
            raise errors.SnsInvalidParameterValue(
                f"The message attribute '{name}' must contain non-empty message attribute value for message "
                f"attribute type '{base}'.")
        if base == "Number":
            try:
                float(string)
            except ValueError:
                raise errors.SnsInvalidParameterValue(
                    f"Could not cast message attribute '{name}' value to number.") from None
        if data_type == "String.Array":
            try:
                if not isinstance(json.loads(string), list):
                    raise ValueError
            except ValueError:
                raise errors.SnsInvalidParameterValue(
                    f"The message attribute '{name}' with type 'String.Array' must be a JSON array.") from None
        out.append((name, data_type, string, None))
    return tuple(out)


def check_message(params: dict[str, Any]) -> tuple[str, tuple[tuple[str, str], ...]]:
    """(message, per-protocol bodies) after the size, emptiness and MessageStructure checks."""
    message = params.get("Message")
    if not isinstance(message, str) or not message:
        raise invalid("Empty message")
    if len(message.encode("utf-8")) > MAX_MESSAGE_BYTES:
        raise invalid("Message too long")
    structure = params.get("MessageStructure")
    if structure is None:
        return message, ()
    if structure != "json":
        raise invalid("MessageStructure")
    try:
        doc = json.loads(message)
    except ValueError:
        raise invalid("Message Structure - JSON message body failed to parse") from None
    if not isinstance(doc, dict):
        raise invalid("Message Structure - JSON message body failed to parse")
    if not isinstance(doc.get("default"), str):
        raise invalid("Message Structure - No default entry in JSON message body")
    bodies = [("default", doc["default"])]
    bodies += [(k, v) for k, v in doc.items() if k != "default" and isinstance(v, str)]
    return doc["default"], tuple(bodies)


def check_subject(subject: object) -> str | None:
    if subject is None:
        return None
    if not isinstance(subject, str) or not subject or len(subject) > 100 or "\n" in subject or not all(
            32 <= ord(c) < 127 for c in subject):
        raise invalid("Subject")
    return subject


def check_batch_ids(entries: object) -> list[dict[str, Any]]:
    if not isinstance(entries, list) or not entries:
        raise errors.SnsEmptyBatchRequest("The batch request doesn't contain any entries")
    if len(entries) > MAX_BATCH_ENTRIES:
        raise errors.SnsTooManyEntriesInBatchRequest("The batch request contains more entries than permissible")
    seen: set[str] = set()
    for entry in entries:
        entry_id = entry.get("Id") if isinstance(entry, dict) else None
        if not isinstance(entry_id, str) or not _BATCH_ID.fullmatch(entry_id):
            raise errors.SnsInvalidBatchEntryId(
                "The Id of a batch entry in a batch request doesn't abide by the specification.")
        if entry_id in seen:
            raise errors.SnsBatchEntryIdsNotDistinct("Two or more batch entries in the request have the same Id.")
        seen.add(entry_id)
    return entries


def check_tags(raw: object) -> tuple[tuple[str, str], ...]:
    if not isinstance(raw, list):
        raise invalid("Tags")
    out: dict[str, str] = {}
    for tag in raw:
        key, value = (tag.get("Key"), tag.get("Value", "")) if isinstance(tag, dict) else (None, None)
        if not isinstance(key, str) or not 1 <= len(key) <= 128 or not isinstance(value, str) or len(value) > 256:
            raise invalid("Tags")
        out[key] = value
    if len(out) > 50:
        raise errors.TagLimitExceededException("Could not complete request: tag quota of per resource exceeded")
    return tuple(sorted(out.items()))
