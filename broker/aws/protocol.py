"""What every AWS wire codec offers the gateway, and the pieces they share.

Two families:
- target codecs (AWS JSON 1.0/1.1 now, CBOR for Kinesis later): the operation comes from ``X-Amz-Target``, the
  input is the whole body (``decode_body``);
- the Query codec: the operation comes from ``Action``, the input is a flat form (``decode_form``).

Both encode outputs and ``BrokerError``s into an ``HttpResponse``. A codec is built once per (service model) and
compiles its per-operation encoders/decoders lazily, on first use.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from broker.aws.service_model import OperationModel, ServiceModel
from broker.http.types import HttpResponse
from broker.ids import random_uuid
from broker.model.errors import BrokerError


class ResponseCodec(Protocol):
    protocol: str  # "json" | "query" | "cbor": the value of RequestContext.protocol
    model: ServiceModel

    def encode_output(self, operation: OperationModel, output: Mapping[str, Any], request_id: str) -> HttpResponse:
        ...

    def encode_error(self, error: BrokerError, request_id: str) -> HttpResponse: ...


class TargetCodec(ResponseCodec, Protocol):
    def decode_body(self, operation: OperationModel, body: bytes) -> dict[str, Any]: ...


class FormCodec(ResponseCodec, Protocol):
    def decode_form(self, operation: OperationModel, form: Mapping[str, str]) -> dict[str, Any]: ...


def new_request_id() -> str:
    """A UUID-shaped request id (for requests that did not come through the HTTP server)."""
    return random_uuid()


class InputError(Exception):
    """Raised inside decoders on bad input; carries the member path, built only while the error unwinds."""

    def __init__(self, kind: str, detail: str, value: Any = None) -> None:
        super().__init__(detail)
        self.kind = kind  # "missing" | "type" | "constraint"
        self.detail = detail
        self.value = value
        self.path: list[str] = []


@dataclass(frozen=True, slots=True)
class WireError:
    """How one ``BrokerError`` appears on the wire of one service."""

    code: str  # JSON code (the model's shape name when modelled)
    query_code: str  # legacy code for Query clients and the x-amzn-query-error header
    status: int
    sender_fault: bool
    message: str


def wire_error(model: ServiceModel, error: BrokerError) -> WireError:
    """The model's values for a modelled error, the ``BrokerError``'s own where the model is silent."""
    info = model.error_info(error.code)
    if info is None:
        return WireError(error.code, error.legacy_code, error.status, error.sender_fault, error.message)
    return WireError(
        code=info.code,
        query_code=info.query_code or error.legacy_code,
        status=info.status or error.status,
        sender_fault=error.sender_fault if info.sender_fault is None else info.sender_fault,
        message=error.message,
    )
