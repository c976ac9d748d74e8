"""Stateless SQS input rules with AWS's error codes and wording.

The service layer calls these before proposing (bad input never reaches the log); rules that depend on queue state
(MaximumMessageSize, the queue's defaults) are checked in ``apply``.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal, InvalidOperation

from broker.model import errors
from broker.model.sqs_types import (
    MAX_BATCH_ENTRIES,
    MAX_DELAY_SECONDS,
    MAX_MESSAGE_ATTRIBUTES,
    MAX_RECEIVE,
    MAX_VISIBILITY_TIMEOUT,
    MAX_WAIT_SECONDS,
    MessageAttribute,
)

_QUEUE_NAME = re.compile(r"[A-Za-z0-9_-]{1,80}")
_BATCH_ID = re.compile(r"[A-Za-z0-9_-]{1,80}")
_ATTR_NAME = re.compile(r"[A-Za-z0-9_.-]{1,256}")
_DATA_TYPE = re.compile(r"(String|Number|Binary)(\.[A-Za-z0-9_.-]{1,250})?")
# Anything outside #x9 #xA #xD #x20-#xD7FF #xE000-#xFFFD #x10000-#x10FFFF (lone surrogates included).
_BAD_CHAR = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

# Settable attributes of a standard queue: name -> (min, max) for integers, None for free-form/validated strings.
INT_ATTRIBUTES: dict[str, tuple[int, int]] = {
    "DelaySeconds": (0, MAX_DELAY_SECONDS),
    "MaximumMessageSize": (1024, 1_048_576),
    "MessageRetentionPeriod": (60, 1_209_600),
    "ReceiveMessageWaitTimeSeconds": (0, MAX_WAIT_SECONDS),
    "VisibilityTimeout": (0, MAX_VISIBILITY_TIMEOUT),
    "KmsDataKeyReusePeriodSeconds": (60, 86_400),
}
JSON_ATTRIBUTES = frozenset({"Policy", "RedrivePolicy", "RedriveAllowPolicy"})
BOOL_ATTRIBUTES = frozenset({"SqsManagedSseEnabled"})
STRING_ATTRIBUTES = frozenset({"KmsMasterKeyId"})
DEFAULT_ATTRIBUTES: dict[str, str] = {
    "DelaySeconds": "0",
    "MaximumMessageSize": "1048576",
    "MessageRetentionPeriod": "345600",
    "ReceiveMessageWaitTimeSeconds": "0",
    "VisibilityTimeout": "30",
    "SqsManagedSseEnabled": "true",
}
READ_ONLY_ATTRIBUTES = frozenset({
    "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed",
    "CreatedTimestamp", "LastModifiedTimestamp", "QueueArn",
})
FIFO_ATTRIBUTES = frozenset({"FifoQueue", "ContentBasedDeduplication", "DeduplicationScope", "FifoThroughputLimit"})
FIFO_DEFAULT_ATTRIBUTES: dict[str, str] = {
    "FifoQueue": "true",
    "ContentBasedDeduplication": "false",
    "DeduplicationScope": "queue",
    "FifoThroughputLimit": "perQueue",
}
_FIFO_CHOICES: dict[str, tuple[str, ...]] = {
    "ContentBasedDeduplication": ("true", "false"),
    "DeduplicationScope": ("queue", "messageGroup"),
    "FifoThroughputLimit": ("perQueue", "perMessageGroupId"),
}
# MessageGroupId, MessageDeduplicationId, ReceiveRequestAttemptId: 1-128 alphanumeric or punctuation characters.
_FIFO_ID = re.compile(r"""[A-Za-z0-9!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~]{1,128}""")
_ARN = re.compile(r"arn:aws[A-Za-z-]*:sqs:([^:]*):([0-9]{12}|[^:]+):([^:]+)")
MAX_RECEIVE_COUNT = 1000
MAX_REDRIVE_SOURCES = 10
GETTABLE_ATTRIBUTES = (frozenset(INT_ATTRIBUTES) | JSON_ATTRIBUTES | BOOL_ATTRIBUTES | STRING_ATTRIBUTES
                       | READ_ONLY_ATTRIBUTES | FIFO_ATTRIBUTES | {"All"})
MESSAGE_SYSTEM_ATTRIBUTES = frozenset({
    "All", "SenderId", "SentTimestamp", "ApproximateReceiveCount", "ApproximateFirstReceiveTimestamp",
    "SequenceNumber", "MessageDeduplicationId", "MessageGroupId", "AWSTraceHeader", "DeadLetterQueueSourceArn",
})


def check_queue_name(name: object, attributes: dict[str, str] | None = None) -> str:
    """A queue name: 1-80 of alphanumerics, ``-`` and ``_``; a FIFO queue's (FifoQueue=true) ends in ``.fifo``."""
    if not isinstance(name, str) or not name:
        raise errors.MissingParameter("The request must contain the parameter QueueName.")
    fifo = str((attributes or {}).get("FifoQueue", "")).lower() == "true"
    if fifo:
        if name.endswith(".fifo") and len(name) <= 80 and _QUEUE_NAME.fullmatch(name[:-5]):
            return name
        raise errors.InvalidParameterValue("The name of a FIFO queue can only include alphanumeric characters, "
                                           "hyphens, or underscores, must end with .fifo suffix and be 1 to 80 "
                                           "in length.")
    if not _QUEUE_NAME.fullmatch(name):
        raise errors.InvalidParameterValue("Can only include alphanumeric characters, hyphens, or underscores. "
                                           "1 to 80 in length")
    return name


def check_queue_attributes(attributes: dict[str, str], *, creating: bool, fifo: bool = False) -> dict[str, str]:
    """Validate settable attributes; return them normalised (ints canonical, booleans lower-case, policies as
    canonical JSON). ``fifo``: the queue is (or is being created as) a FIFO queue."""
    result: dict[str, str] = {}
    for name, value in attributes.items():
        if name == "FifoQueue":
            text = str(value).lower()
            if not creating:
                raise errors.InvalidAttributeName(f"Unknown Attribute {name}.")
            if text not in ("true", "false"):
                raise errors.InvalidAttributeValue(f"Invalid value for the parameter {name}.")
            if text == "true":
                result[name] = text
            continue  # an explicit "not FIFO" on a standard queue changes nothing
        if name in _FIFO_CHOICES:
            if not fifo:
                raise errors.InvalidAttributeName(f"Unknown Attribute {name}.")
            text = str(value).lower() if name == "ContentBasedDeduplication" else str(value)
            if text not in _FIFO_CHOICES[name]:
                raise errors.InvalidAttributeValue(f"Invalid value for the parameter {name}.")
            result[name] = text
        elif name == "RedrivePolicy" and value != "":
            result[name] = check_redrive_policy(value)
        elif name == "RedriveAllowPolicy" and value != "":
            result[name] = check_redrive_allow_policy(value)
        elif name in INT_ATTRIBUTES:
            low, high = INT_ATTRIBUTES[name]
            text = str(value).strip()
            if not text.isdigit() or not low <= int(text) <= high:
                raise errors.InvalidAttributeValue(f"Invalid value for the parameter {name}.")
            result[name] = str(int(text))
        elif name in JSON_ATTRIBUTES:
            if value != "":
                try:
                    parsed = json.loads(value)
                except (TypeError, ValueError):
                    raise errors.InvalidAttributeValue(f"Invalid value for the parameter {name}.") from None
                if not isinstance(parsed, dict):
                    raise errors.InvalidAttributeValue(f"Invalid value for the parameter {name}.")
            result[name] = value
        elif name in BOOL_ATTRIBUTES:
            if str(value).lower() not in ("true", "false"):
                raise errors.InvalidAttributeValue(f"Invalid value for the parameter {name}.")
            result[name] = str(value).lower()
        elif name in STRING_ATTRIBUTES:
            result[name] = str(value)
        else:
            raise errors.InvalidAttributeName(f"Unknown Attribute {name}.")
    _reconcile_sse(result, creating)
    return result


def _reconcile_sse(result: dict[str, str], creating: bool) -> None:
    """SSE-KMS and SSE-SQS are one or the other, as on AWS: both in one call are refused; a KMS key turns
    SQS-managed SSE off, and on an existing queue removing the key (KmsMasterKeyId="") turns it back on while
    SqsManagedSseEnabled=true removes the key."""
    kms = result.get("KmsMasterKeyId")
    sse = result.get("SqsManagedSseEnabled")
    if kms and sse == "true":
        raise errors.InvalidAttributeValue("You can use one type of server-side encryption (SSE) at one time. You "
                                           "can either enable KMS SSE or SQS SSE.")
    if kms and sse is None:
        result["SqsManagedSseEnabled"] = "false"
    elif not creating and kms == "" and sse is None:
        result["SqsManagedSseEnabled"] = "true"
    elif not creating and sse == "true" and kms is None:
        result["KmsMasterKeyId"] = ""


def check_fifo_settings(attributes: dict[str, str]) -> None:
    """The cross-attribute FIFO rule, on a queue's effective attributes (checked in apply: it depends on both the
    stored and the new values)."""
    if (attributes.get("FifoThroughputLimit") == "perMessageGroupId"
            and attributes.get("DeduplicationScope") != "messageGroup"):
        raise errors.InvalidAttributeValue("The perMessageGroupId value is allowed only when the value for "
                                           "DeduplicationScope is messageGroup.")


def arn_queue(arn: str) -> tuple[str, str] | None:
    """(account, name) of an SQS queue ARN, or None when ``arn`` is not one."""
    match = _ARN.fullmatch(arn)
    return (match.group(2), match.group(3)) if match else None


def arn_region(arn: str) -> str:
    match = _ARN.fullmatch(arn)
    return match.group(1) if match else ""


def _redrive_error(value: str, reason: str) -> errors.BrokerError:
    return errors.InvalidParameterValue(f"Value {value} for parameter RedrivePolicy is invalid. Reason: {reason}")


def check_redrive_policy(value: str) -> str:
    """RedrivePolicy JSON as AWS accepts it (maxReceiveCount as string or number), with AWS's wording for each
    fault; returned canonical, with the count as a number, as GetQueueAttributes shows it."""
    try:
        policy = json.loads(value)
    except (TypeError, ValueError):
        policy = None
    if not isinstance(policy, dict):
        raise errors.InvalidParameterValue(
            "Invalid value for the parameter RedrivePolicy. Reason: Redrive policy is not a valid JSON map.")
    for key in ("maxReceiveCount", "deadLetterTargetArn"):
        if key not in policy:
            raise _redrive_error(value, f"Redrive policy does not contain mandatory attribute: {key}.")
    count = policy["maxReceiveCount"]
    text = str(count).strip() if isinstance(count, (str, int)) and not isinstance(count, bool) else ""
    if not text.lstrip("-").isdigit() or not 1 <= int(text) <= MAX_RECEIVE_COUNT:
        raise _redrive_error(value, f"Invalid value for maxReceiveCount: {count}, valid values are from 1 to "
                                    f"{MAX_RECEIVE_COUNT} both inclusive.")
    target = policy["deadLetterTargetArn"]
    if not isinstance(target, str) or arn_queue(target) is None:
        raise _redrive_error(value, "Dead-letter target ARN should be fully qualified ARN.")
    if len(policy) > 2:
        raise _redrive_error(value, "Only following attributes are supported: [maxReceiveCount, "
                                    "deadLetterTargetArn].")
    return json.dumps({"deadLetterTargetArn": target, "maxReceiveCount": int(text)}, separators=(",", ":"))


_ALLOW_POLICY_FORMAT = ("Invalid value for the parameter RedriveAllowPolicy. Reason: Amazon SQS can't create the "
                        "redrive allow policy, as it\u2019s in an unsupported format.")


def check_redrive_allow_policy(value: str) -> str:
    """RedriveAllowPolicy JSON: redrivePermission allowAll | denyAll | byQueue (with 1-10 sourceQueueArns)."""
    def bad(reason: str) -> errors.BrokerError:
        return errors.InvalidParameterValue(f"Value {value} for parameter RedriveAllowPolicy is invalid. Reason: "
                                            f"Amazon SQS can't create the redrive allow policy. {reason}")
    try:
        policy = json.loads(value)
    except (TypeError, ValueError):
        policy = None
    if (not isinstance(policy, dict) or policy.get("redrivePermission") not in ("allowAll", "denyAll", "byQueue")
            or set(policy) - {"redrivePermission", "sourceQueueArns"}):
        raise errors.InvalidParameterValue(_ALLOW_POLICY_FORMAT)
    permission = policy["redrivePermission"]
    sources = policy.get("sourceQueueArns")
    if sources is not None and (not isinstance(sources, list) or not all(isinstance(a, str) for a in sources)):
        raise errors.InvalidParameterValue(_ALLOW_POLICY_FORMAT)
    if sources and permission != "byQueue":
        raise bad("To specify one or more source queue ARNs, you must set redrivePermission to byQueue.")
    if permission != "byQueue":
        return json.dumps({"redrivePermission": permission}, separators=(",", ":"))
    if not sources:
        raise bad("When you specify the byQueue permission type, you must also specify one or more "
                  "sourceQueueArns values.")
    if len(sources) > MAX_REDRIVE_SOURCES:
        raise bad(f"The maximum number of source queue ARNs you can specify is {MAX_REDRIVE_SOURCES}.")
    return json.dumps({"redrivePermission": permission, "sourceQueueArns": sources}, separators=(",", ":"))


def check_fifo_id(name: str, value: object) -> str | None:
    """An optional MessageGroupId / MessageDeduplicationId / ReceiveRequestAttemptId."""
    if value is None:
        return None
    if not isinstance(value, str) or not _FIFO_ID.fullmatch(value):
        raise errors.InvalidParameterValue(
            f"Value {value} for parameter {name} is invalid. Reason: {name} can only include alphanumeric and "
            "punctuation characters. 1 to 128 in length.")
    return value


def check_attribute_names(names: list[str]) -> None:
    for name in names:
        if name not in GETTABLE_ATTRIBUTES:
            raise errors.InvalidAttributeName(f"Unknown Attribute {name}.")


def check_body(body: object) -> str:
    if not isinstance(body, str) or body == "":
        raise errors.MissingParameter("The request must contain the parameter MessageBody.")
    if body.isascii() and body.isprintable():
        return body  # the common case, ~20x cheaper than the regex
    bad = _BAD_CHAR.search(body)
    if bad is not None:
        raise errors.InvalidMessageContents(
            f"Invalid binary character '#x{ord(bad.group()):X}' was found in the message body, the set of allowed "
            "characters is #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF")
    return body


def check_int_param(name: str, value: object, low: int, high: int, reason: str) -> int | None:
    """An optional integer request parameter in [low, high]; AWS's InvalidParameterValue wording otherwise."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise errors.InvalidParameterValue(f"Value {value} for parameter {name} is invalid. Reason: {reason}")
    return value


def check_delay(value: object) -> int | None:
    return check_int_param("DelaySeconds", value, 0, MAX_DELAY_SECONDS,
                           f"DelaySeconds must be >= 0 and <= {MAX_DELAY_SECONDS}")


def check_visibility_timeout(value: object) -> int | None:
    return check_int_param("VisibilityTimeout", value, 0, MAX_VISIBILITY_TIMEOUT,
                           f"Must be between 0 and {MAX_VISIBILITY_TIMEOUT}, if provided.")


def check_max_messages(value: object) -> int:
    checked = check_int_param("MaxNumberOfMessages", value, 1, MAX_RECEIVE,
                              f"Must be between 1 and {MAX_RECEIVE}, if provided.")
    return 1 if checked is None else checked


def check_wait_time(value: object) -> int | None:
    return check_int_param("WaitTimeSeconds", value, 0, MAX_WAIT_SECONDS,
                           f"Must be >= 0 and <= {MAX_WAIT_SECONDS}, if provided.")


def check_message_attributes(raw: dict[str, dict[str, object]] | None, *,
                             system: bool = False) -> tuple[MessageAttribute, ...]:
    """Validate user (or system) message attributes; return them sorted by name."""
    if not raw:
        return ()
    kind = "system" if system else "user"
    if len(raw) > MAX_MESSAGE_ATTRIBUTES:
        raise errors.InvalidParameterValue(
            f"Number of message attributes [{len(raw)}] exceeds the allowed maximum [{MAX_MESSAGE_ATTRIBUTES}].")
    result: list[MessageAttribute] = []
    for name in sorted(raw):
        value = raw[name] if isinstance(raw[name], dict) else {}
        if system:
            if name != "AWSTraceHeader":
                raise errors.InvalidParameterValue(f"Message system attribute name '{name}' is invalid.")
        else:
            _check_attribute_name(name)
        data_type = value.get("DataType")
        if not isinstance(data_type, str) or not data_type:
            raise errors.InvalidParameterValue(
                f"The message attribute '{name}' must contain non-empty message attribute type.")
        match = _DATA_TYPE.fullmatch(data_type)
        if match is None or len(data_type) > 256 or (system and data_type != "String"):
            raise errors.InvalidParameterValue(
                f"The message attribute '{name}' has an invalid message attribute type, the set of supported type "
                "prefixes is Binary, Number, and String.")
        base = match.group(1)
        if value.get("StringListValues") or value.get("BinaryListValues"):
            raise errors.InvalidParameterValue(f"Message ({kind}) attribute '{name}' uses list values, which are "
                                               "not implemented by SQS.")
        if base == "Binary":
            binary = value.get("BinaryValue")
            if not isinstance(binary, bytes) or not binary or value.get("StringValue") is not None:
                raise errors.InvalidParameterValue(
                    f"Message ({kind}) attribute '{name}' must contain a non-empty value of type 'Binary'.")
            result.append((name, data_type, None, binary))
            continue
        string = value.get("StringValue")
        if not isinstance(string, str) or not string or value.get("BinaryValue") is not None:
            raise errors.InvalidParameterValue(
                f"Message ({kind}) attribute '{name}' must contain a non-empty value of type '{base}'.")
        if base == "Number":
            _check_number(name, string)
        elif _BAD_CHAR.search(string):
            raise errors.InvalidParameterValue(
                f"Message ({kind}) attribute '{name}' contains invalid characters.")
        result.append((name, data_type, string, None))
    return tuple(result)


def _check_attribute_name(name: str) -> None:
    lowered = name.lower()
    if (not _ATTR_NAME.fullmatch(name) or name.startswith(".") or name.endswith(".") or ".." in name
            or lowered.startswith("aws.") or lowered.startswith("amazon.")):
        raise errors.InvalidParameterValue(
            f"Message (user) attribute name '{name}' is invalid. The name can contain alphanumeric characters, "
            "hyphens (-), underscores (_) and periods (.), must not start or end with a period or contain "
            "consecutive periods, and must not start with 'AWS.' or 'Amazon.'.")


def _check_number(name: str, text: str) -> None:
    try:
        number = Decimal(text.strip())
    except InvalidOperation:
        number = Decimal("NaN")
    if not number.is_finite() or (number != 0 and not Decimal("-1e128") <= number <= Decimal("1e126")):
        raise errors.InvalidParameterValue(f"Can't cast the value of message (user) attribute '{name}' to a number.")
    if len("".join(map(str, number.as_tuple().digits)).strip("0")) > 38:
        raise errors.InvalidParameterValue(
            f"Value of message (user) attribute '{name}' has more than 38 significant digits.")


def attributes_size(attributes: tuple[MessageAttribute, ...]) -> int:
    """Bytes that attributes add to the message size (name, type and value all count)."""
    size = 0
    for name, data_type, string_value, binary_value in attributes:
        value = binary_value if binary_value is not None else (string_value or "").encode("utf-8")
        size += len(name.encode("utf-8")) + len(data_type.encode("utf-8")) + len(value)
    return size


def check_batch_ids(entries: list[dict[str, object]], request_entry: str) -> None:
    """The batch-level rules shared by the three batch actions."""
    if not entries:
        raise errors.EmptyBatchRequest(f"There should be at least one {request_entry} in the request.")
    if len(entries) > MAX_BATCH_ENTRIES:
        raise errors.TooManyEntriesInBatchRequest(
            f"Maximum number of entries per request are {MAX_BATCH_ENTRIES}. You have sent {len(entries)}.")
    seen: set[str] = set()
    for entry in entries:
        entry_id = entry.get("Id")
        if not isinstance(entry_id, str) or not _BATCH_ID.fullmatch(entry_id):
            raise errors.InvalidBatchEntryId("A batch entry id can only contain alphanumeric characters, hyphens "
                                             "and underscores. It can be at most 80 letters long.")
        if entry_id in seen:
            raise errors.BatchEntryIdsNotDistinct(f"Id {entry_id} repeated.")
        seen.add(entry_id)
