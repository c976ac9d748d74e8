"""Stream and consumer ARNs as Kinesis writes them, and the (account, name) they name."""

from __future__ import annotations

import re

from broker.model.kinesis_errors import InvalidArgumentException

_STREAM_ARN = re.compile(r"^arn:aws[\w-]*:kinesis:([\w-]*):(\d{12}):stream/([A-Za-z0-9_.-]+)$")
_CONSUMER_ARN = re.compile(
    r"^arn:aws[\w-]*:kinesis:([\w-]*):(\d{12}):stream/([A-Za-z0-9_.-]+)/consumer/([A-Za-z0-9_.-]+):(\d+)$")


def parse_stream_arn(arn: str) -> tuple[str, str]:
    """(account, stream name) of a stream ARN."""
    match = _STREAM_ARN.match(arn)
    if match is None:
        raise InvalidArgumentException(f"StreamARN {arn} is invalid.")
    return match[2], match[3]


def parse_consumer_arn(arn: str) -> tuple[str, str, str, int]:
    """(account, stream name, consumer name, creation epoch seconds) of a consumer ARN."""
    match = _CONSUMER_ARN.match(arn)
    if match is None:
        raise InvalidArgumentException(f"ConsumerARN {arn} is invalid.")
    return match[2], match[3], match[4], int(match[5])


def is_consumer_arn(arn: str) -> bool:
    return _CONSUMER_ARN.match(arn) is not None
