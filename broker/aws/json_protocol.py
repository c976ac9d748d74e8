"""AWS JSON 1.0 / 1.1: one codec for every JSON service, driven by its model.

Input errors are worded the way the service family does it:
- ``awsQueryCompatible`` services (SQS) keep their Query-era codes: a missing member is ``MissingParameter``
  ("The request must contain the parameter X."), a value of the wrong type ``InvalidParameterValue``; length,
  range and enum rules are left to the service, which owns the AWS wording for them (e.g. InvalidAttributeName).
- other JSON services (Kinesis) answer like every Coral service: ``ValidationException`` ("1 validation error
  detected: Value null at 'streamName' failed to satisfy constraint: Member must not be null") for missing members
  and min/max/enum/pattern violations, ``SerializationException`` for a value of the wrong type.
A body that is not a JSON object is ``SerializationException`` for both.

Errors go out as ``{"__type": "<namespace>#<Code>", "message": ...}``; query-compatible services add the header
``x-amzn-query-error: <legacy code>;Sender|Receiver`` from which SDKs take the code they report.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from broker.aws.protocol import InputError, wire_error
from broker.aws.service_model import OperationModel, ServiceModel
from broker.aws.shape_codec import Decoder, Encoder, ShapeCompiler
from broker.http.types import HttpResponse
from broker.model.errors import (
    BrokerError,
    InvalidParameterValue,
    MissingParameter,
    SerializationException,
)


class ValidationException(BrokerError):
    code = "ValidationException"


_NO_DECODER: Decoder = lambda v: {}  # noqa: E731 - operations without an input shape


def input_error_to_broker(error: InputError, *, query_style: bool) -> BrokerError:
    """Map a decoder failure to the error the service family returns for it."""
    path = list(reversed(error.path))
    if query_style:
        name = ".".join(path)
        if error.kind == "missing":
            return MissingParameter(f"The request must contain the parameter {name}.")
        return InvalidParameterValue(f"Value {_show(error.value)} for parameter {name} is invalid. "
                                     f"Reason: {error.detail}.")
    where = ".".join(p[:1].lower() + p[1:] for p in path)
    if error.kind == "missing":
        return ValidationException(f"1 validation error detected: Value null at '{where}' failed to satisfy "
                                   "constraint: Member must not be null")
    if error.kind == "constraint":
        return ValidationException(f"1 validation error detected: Value {_show(error.value)} at '{where}' failed to "
                                   f"satisfy constraint: {error.detail}")
    return SerializationException(f"Value {_show(error.value)} at '{where}' {error.detail}.")


def _show(value: Any) -> str:
    text = f"'{value}'" if isinstance(value, str) else str(value)
    return text if len(text) <= 200 else text[:197] + "..."


class JsonCodec:
    """AWS JSON codec of one service (1.0 or 1.1 as its model says)."""

    protocol = "json"

    def __init__(self, model: ServiceModel) -> None:
        self.model = model
        self.content_type = f"application/x-amz-json-{model.json_version or '1.0'}"
        self._query_style = model.query_compatible
        self._compiler = ShapeCompiler(check_constraints=not model.query_compatible)
        self._error_prefix = f"com.amazonaws.{model.endpoint_prefix}#" if model.query_compatible else ""
        self._decoders: dict[str, Decoder] = {}
        self._encoders: dict[str, Encoder | None] = {}

    # -- requests ---------------------------------------------------------------------------------------------

    def decoder_for(self, operation: OperationModel) -> Decoder:
        dec = self._decoders.get(operation.name)
        if dec is None:
            dec = _NO_DECODER if operation.input is None else self._compiler.decoder(operation.input)
            self._decoders[operation.name] = dec
        return dec

    def decode_body(self, operation: OperationModel, body: bytes) -> dict[str, Any]:
        """Parse and validate the request body of ``operation``; raises ``BrokerError`` on bad input."""
        dec = self.decoder_for(operation)
        if not body.strip():
            raw: Any = {}
        else:
            try:
                raw = orjson.loads(body)
            except orjson.JSONDecodeError:
                raise SerializationException("Malformed JSON: the request body could not be parsed.") from None
            if type(raw) is not dict:
                raise SerializationException("The request body must be a JSON object.")
        try:
            params: dict[str, Any] = dec(raw)
        except InputError as e:
            if self._query_style:
                # "Entries.1.member.Id" is Coral's spelling; Query-era services name it "Entries.1.Id".
                e.path = [p.removesuffix(".member") for p in e.path]
            raise input_error_to_broker(e, query_style=self._query_style) from None
        except RecursionError:
            raise SerializationException("The request body is nested too deeply.") from None
        return params

    # -- responses --------------------------------------------------------------------------------------------

    def encoder_for(self, operation: OperationModel) -> Encoder | None:
        try:
            return self._encoders[operation.name]
        except KeyError:
            enc = None if operation.output is None else self._compiler.encoder(operation.output)
            self._encoders[operation.name] = enc
            return enc

    def encode_output(self, operation: OperationModel, output: Mapping[str, Any], request_id: str) -> HttpResponse:
        enc = self.encoder_for(operation)
        body = b"{}" if operation.output is None else orjson.dumps(output if enc is None else enc(output))
        return HttpResponse(200, body, [("x-amzn-RequestId", request_id)], self.content_type)

    def encode_error(self, error: BrokerError, request_id: str) -> HttpResponse:
        w = wire_error(self.model, error)
        headers = [("x-amzn-RequestId", request_id)]
        if self._query_style:
            headers.append(("x-amzn-query-error", f"{w.query_code};{'Sender' if w.sender_fault else 'Receiver'}"))
        body = orjson.dumps({"__type": self._error_prefix + w.code, "message": w.message})
        return HttpResponse(w.status, body, headers, self.content_type)
