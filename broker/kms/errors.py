"""KMS failures, raised by the sealer and answered with each service's AWS error code.

The sealer knows nothing of SQS or Kinesis: it raises ``KmsFailure`` with a KMS kind, and the service converts it
(``sqs_error``: KmsNotFound, KmsDisabled, KmsInvalidState as in the SQS model; ``kinesis_error``:
KMSNotFoundException, ... as in the Kinesis model).
"""

from __future__ import annotations

from broker.model.errors import BrokerError

NOT_FOUND = "NotFound"  # no such key (or version) in the key file
DISABLED = "Disabled"  # the key exists with enabled = false
INVALID_STATE = "InvalidState"  # the data cannot be opened: other key material, damaged ciphertext


class KmsFailure(Exception):
    """A key could not be used; ``kind`` is one of NOT_FOUND, DISABLED, INVALID_STATE."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


class RootMissing(KmsFailure):
    """An AWS-managed key's root secret is not replicated yet: the service creates it and seals again."""

    def __init__(self, name: str) -> None:
        super().__init__(INVALID_STATE, f"The AWS managed key {name} is not available yet.")
        self.name = name


def sqs_error(failure: KmsFailure) -> BrokerError:
    """The SQS error (code = the SQS model's shape name, 400, sender fault as AWS reports KMS errors)."""
    return BrokerError(failure.message, code=f"Kms{failure.kind}", status=400)


def kinesis_error(failure: KmsFailure) -> BrokerError:
    """The Kinesis error (KMSNotFoundException, KMSDisabledException, KMSInvalidStateException)."""
    return BrokerError(failure.message, code=f"KMS{failure.kind}Exception", status=400)
