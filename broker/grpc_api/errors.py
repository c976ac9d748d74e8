"""BrokerError -> gRPC status with a structured ErrorDetail, mapped once for every servicer.

The status code tells generic gRPC tooling what kind of failure it is; the detail (trailing metadata
``raftmq-error-bin``) carries the exact AWS error code, so a client can tell QueueDoesNotExist from
ReceiptHandleIsInvalid without parsing text.
"""

from __future__ import annotations

import logging
from typing import NoReturn

import grpc

from broker.model.errors import BrokerError
from proto.broker.v1.errors_pb2 import ErrorDetail

log = logging.getLogger(__name__)

DETAIL_KEY = "raftmq-error-bin"
_BY_CODE = {
    "QueueDoesNotExist": grpc.StatusCode.NOT_FOUND,
    "ResourceNotFoundException": grpc.StatusCode.NOT_FOUND,
    "NotFound": grpc.StatusCode.NOT_FOUND,
    "NotFoundException": grpc.StatusCode.NOT_FOUND,
    "QueueNameExists": grpc.StatusCode.ALREADY_EXISTS,
    "ResourceInUseException": grpc.StatusCode.ALREADY_EXISTS,
    "PurgeQueueInProgress": grpc.StatusCode.FAILED_PRECONDITION,
    "OverLimit": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "RequestThrottled": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "ProvisionedThroughputExceededException": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "LimitExceededException": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "AccessDenied": grpc.StatusCode.PERMISSION_DENIED,
    "ServiceUnavailable": grpc.StatusCode.UNAVAILABLE,
    "NotLeader": grpc.StatusCode.UNAVAILABLE,
    "ClusterAdminFailed": grpc.StatusCode.FAILED_PRECONDITION,
    # Authentication (broker.auth.grpc_auth): the HTTP APIs' codes, under gRPC's status for "who are you?".
    "MissingAuthenticationToken": grpc.StatusCode.UNAUTHENTICATED,
    "InvalidClientTokenId": grpc.StatusCode.UNAUTHENTICATED,
    "SignatureDoesNotMatch": grpc.StatusCode.UNAUTHENTICATED,
    "IncompleteSignature": grpc.StatusCode.UNAUTHENTICATED,
    "RequestExpired": grpc.StatusCode.UNAUTHENTICATED,
}
_RETRYABLE = frozenset({"ServiceUnavailable", "NotLeader", "RequestThrottled",
                        "ProvisionedThroughputExceededException"})


def detail_of(exc: BaseException) -> ErrorDetail:
    """The wire form of any failure; a non-BrokerError is an InternalFailure (logged, never shown raw)."""
    if isinstance(exc, BrokerError):
        return ErrorDetail(code=exc.code, message=exc.message, sender_fault=exc.sender_fault,
                           http_status=exc.status, retryable=exc.code in _RETRYABLE)
    log.error("event=grpc-internal-failure error=%r", exc, exc_info=exc)
    return ErrorDetail(code="InternalFailure", message="We encountered an internal error. Please try again.",
                       sender_fault=False, http_status=500)


def status_of(detail: ErrorDetail) -> grpc.StatusCode:
    code = _BY_CODE.get(detail.code)
    if code is not None:
        return code
    return grpc.StatusCode.INTERNAL if detail.http_status >= 500 else grpc.StatusCode.INVALID_ARGUMENT


async def abort(context: grpc.aio.ServicerContext[object, object], exc: BaseException) -> NoReturn:
    """End the call with the status and detail of ``exc``."""
    detail = detail_of(exc)
    await context.abort(status_of(detail), f"{detail.code}: {detail.message}",
                        trailing_metadata=((DETAIL_KEY, detail.SerializeToString()),))
    raise AssertionError("unreachable: context.abort raises")  # pragma: no cover
