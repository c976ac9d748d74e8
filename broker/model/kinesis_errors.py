"""Kinesis errors: codes are the shape names of kinesis-2013-12-02.json; all are 400 sender faults.

They live here rather than in ``errors.py`` (shared with other engineers) and subclass ``BrokerError`` the same
way. Kinesis's ResourceNotFoundException is a 400 (SQS's class of that name is a 404), so it is defined anew.
"""

from __future__ import annotations

from broker.model.errors import BrokerError


class ResourceNotFoundException(BrokerError):
    code = "ResourceNotFoundException"


class ResourceInUseException(BrokerError):
    code = "ResourceInUseException"


class LimitExceededException(BrokerError):
    code = "LimitExceededException"


class InvalidArgumentException(BrokerError):
    code = "InvalidArgumentException"


class ExpiredIteratorException(BrokerError):
    code = "ExpiredIteratorException"


class ExpiredNextTokenException(BrokerError):
    code = "ExpiredNextTokenException"


class ProvisionedThroughputExceededException(BrokerError):
    code = "ProvisionedThroughputExceededException"


class ValidationException(BrokerError):
    code = "ValidationException"


class AccessDeniedException(BrokerError):
    code = "AccessDeniedException"


def stream_not_found(name: str, account: str) -> ResourceNotFoundException:
    return ResourceNotFoundException(f"Stream {name} under account {account} not found.")


def stream_in_use(name: str, account: str, status: str) -> ResourceInUseException:
    return ResourceInUseException(f"Stream {name} under account {account} not ACTIVE, instead in state {status}")


def rate_exceeded(shard: str, name: str, account: str) -> ProvisionedThroughputExceededException:
    return ProvisionedThroughputExceededException(
        f"Rate exceeded for shard {shard} in stream {name} under account {account}.")
