"""The client's one error type: the server's AWS error code, the gRPC status, and whether a retry may succeed."""

from __future__ import annotations

import grpc

from proto.broker.v1.errors_pb2 import ErrorDetail

DETAIL_KEY = "raftmq-error-bin"
RETRYABLE_STATUS = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED})


class RaftMQError(Exception):
    """A failed call; ``code`` is the AWS error code the server reported (``QueueDoesNotExist``, ...)."""

    def __init__(self, code: str, message: str, status: grpc.StatusCode | None = None,
                 retryable: bool = False) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.retryable = retryable

    @classmethod
    def from_detail(cls, detail: ErrorDetail) -> RaftMQError:
        return cls(detail.code, detail.message, retryable=detail.retryable)

    @classmethod
    def from_rpc(cls, exc: grpc.aio.AioRpcError) -> RaftMQError:
        """The structured detail when the server sent one; else the status (e.g. a node that is down)."""
        status = exc.code()
        for key, value in exc.trailing_metadata() or ():
            if key == DETAIL_KEY and isinstance(value, bytes):
                detail = ErrorDetail.FromString(value)
                return cls(detail.code, detail.message, status, detail.retryable)  # the server knows best
        code = "ServiceUnavailable" if status in RETRYABLE_STATUS else status.name
        return cls(code, exc.details() or "", status, status in RETRYABLE_STATUS)
