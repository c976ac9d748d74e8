"""BrokerError <-> gRPC status and ErrorDetail, on the server and on the client side."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from broker.client.errors import DETAIL_KEY, RaftMQError
from broker.grpc_api.errors import detail_of, status_of
from broker.model import errors


@pytest.mark.parametrize(("error", "status"), [
    (errors.QueueDoesNotExist(), grpc.StatusCode.NOT_FOUND),
    (errors.QueueNameExists("x"), grpc.StatusCode.ALREADY_EXISTS),
    (errors.InvalidParameterValue("bad"), grpc.StatusCode.INVALID_ARGUMENT),
    (errors.ReceiptHandleIsInvalid("bad"), grpc.StatusCode.INVALID_ARGUMENT),
    (errors.PurgeQueueInProgress("busy"), grpc.StatusCode.FAILED_PRECONDITION),
    (errors.ServiceUnavailable(), grpc.StatusCode.UNAVAILABLE),
    (errors.InternalFailure(), grpc.StatusCode.INTERNAL),
])
def test_status_by_error(error: errors.BrokerError, status: grpc.StatusCode) -> None:
    detail = detail_of(error)
    assert (detail.code, detail.message, detail.http_status) == (error.code, error.message, error.status)
    assert status_of(detail) == status


def test_only_unavailable_is_retryable() -> None:
    assert detail_of(errors.ServiceUnavailable()).retryable
    assert not detail_of(errors.QueueDoesNotExist()).retryable


def test_unexpected_exception_is_internal_failure_without_its_text() -> None:
    detail = detail_of(KeyError("secret internals"))
    assert (detail.code, detail.sender_fault, detail.http_status) == ("InternalFailure", False, 500)
    assert "secret" not in detail.message


class _FakeRpcError(grpc.aio.AioRpcError):
    def __init__(self, code: grpc.StatusCode, details: str, trailing: Any) -> None:
        super().__init__(code, grpc.aio.Metadata(), grpc.aio.Metadata(*trailing), details)


def test_client_reads_the_structured_detail() -> None:
    detail = detail_of(errors.QueueDoesNotExist())
    error = RaftMQError.from_rpc(_FakeRpcError(grpc.StatusCode.NOT_FOUND, "x",
                                               [(DETAIL_KEY, detail.SerializeToString())]))
    assert (error.code, error.status, error.retryable) == ("QueueDoesNotExist", grpc.StatusCode.NOT_FOUND, False)


def test_client_treats_a_node_without_detail_that_is_unavailable_as_retryable() -> None:
    error = RaftMQError.from_rpc(_FakeRpcError(grpc.StatusCode.UNAVAILABLE, "connection refused", []))
    assert (error.code, error.retryable) == ("ServiceUnavailable", True)
    error = RaftMQError.from_rpc(_FakeRpcError(grpc.StatusCode.UNIMPLEMENTED, "no", []))
    assert (error.code, error.retryable) == ("UNIMPLEMENTED", False)
