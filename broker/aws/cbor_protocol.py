"""AWS CBOR 1.1 (``application/x-amz-cbor-1.1``): the encoding the AWS SDK for Java and the KCL use for Kinesis.

The same service model and the same validation as AWS JSON 1.1 (errors are worded identically), with two
differences on the wire, both as the Java SDK (v1 ``SdkCborGenerator``, v2 ``AwsCborProtocolFactory``) does it:
- blobs are CBOR byte strings, not base64 text;
- timestamps are CBOR tag 1 around an integer of epoch MILLISECONDS (``writeTag(1); writeNumber(toEpochMilli())``).
  Tagged and untagged numbers are read as epoch milliseconds, floats too; text is read like the JSON codec does.
Errors are a CBOR map ``{"__type": code, "message": ...}`` with the code also in ``x-amzn-ErrorType``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import cbor2

from broker.aws.json_protocol import input_error_to_broker
from broker.aws.protocol import InputError, wire_error
from broker.aws.service_model import Member, OperationModel, ServiceModel, Shape
from broker.aws.shape_codec import Decoder, Encoder, ShapeCompiler, parse_timestamp
from broker.http.types import HttpResponse
from broker.model.errors import BrokerError, SerializationException

CBOR_CONTENT_TYPE = "application/x-amz-cbor-1.1"
TIMESTAMP_TAG = 1
_MAX_DEPTH = 64


class _EpochMillis(float):
    """A number that arrived inside CBOR tag 1 (kept apart so the timestamp decoder knows its unit)."""


def _tag1(value: Any, immutable: bool) -> _EpochMillis:
    """cbor2's semantic decoder for tag 1: gets the already decoded content."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise cbor2.CBORDecodeError("tag 1 must hold a number")
    return _EpochMillis(value)


def _datetime_from_millis(value: float) -> datetime:
    return datetime.fromtimestamp(value / 1000, UTC)


def _type_error(shape: Shape, value: Any) -> InputError:
    kind = "bytes" if shape.type == "blob" else "a timestamp"
    return InputError("type", f"must be {kind}", value)


class CborShapeCompiler(ShapeCompiler):
    """``ShapeCompiler`` with CBOR's blobs (byte strings) and timestamps (tag 1, epoch ms) in and out."""

    def _build_decoder(self, shape: Shape) -> Decoder:
        if shape.type == "blob" and not shape.document:
            def dec_blob(v: Any) -> bytes:
                if type(v) is bytes:
                    return v
                if isinstance(v, (bytearray, memoryview)):
                    return bytes(v)
                raise _type_error(shape, v)
            return dec_blob
        if shape.type == "timestamp":
            def dec_ts(v: Any) -> datetime:
                try:
                    if isinstance(v, (int, float)) and not isinstance(v, bool):
                        return _datetime_from_millis(v)
                    if isinstance(v, datetime):
                        return v if v.tzinfo is not None else v.replace(tzinfo=UTC)
                    return parse_timestamp(v)
                except (ValueError, OverflowError, OSError):
                    raise _type_error(shape, v) from None
            return dec_ts
        return super()._build_decoder(shape)

    def member_encoder(self, member: Member) -> Encoder | None:
        if member.shape.type == "timestamp":
            return encode_timestamp
        return self.encoder(member.shape)

    def _build_encoder(self, shape: Shape) -> Encoder | None:
        if shape.type == "blob":
            return _encode_blob
        if shape.type == "timestamp":
            return encode_timestamp
        return super()._build_encoder(shape)


def _encode_blob(v: Any) -> bytes:
    return v.encode() if isinstance(v, str) else bytes(v)


def encode_timestamp(v: Any) -> cbor2.CBORTag:
    """A timestamp as the Java SDK reads it: tag 1 around integer epoch milliseconds (service values are epoch
    seconds or datetimes)."""
    seconds = v.timestamp() if isinstance(v, datetime) else float(v)
    return cbor2.CBORTag(TIMESTAMP_TAG, round(seconds * 1000))


_NO_DECODER: Decoder = lambda v: {}  # noqa: E731 - operations without an input shape


class CborCodec:
    """AWS CBOR 1.1 codec of one JSON-protocol service (Kinesis)."""

    protocol = "cbor"

    def __init__(self, model: ServiceModel) -> None:
        self.model = model
        self.content_type = CBOR_CONTENT_TYPE
        self._compiler = CborShapeCompiler(check_constraints=True)
        self._decoders: dict[str, Decoder] = {}
        self._encoders: dict[str, Encoder | None] = {}

    def decode_body(self, operation: OperationModel, body: bytes) -> dict[str, Any]:
        dec = self._decoders.get(operation.name)
        if dec is None:
            dec = _NO_DECODER if operation.input is None else self._compiler.decoder(operation.input)
            self._decoders[operation.name] = dec
        if not body:
            raw: Any = {}
        else:
            try:
                raw = cbor2.loads(body, semantic_decoders={TIMESTAMP_TAG: _tag1}, max_depth=_MAX_DEPTH)
            except (cbor2.CBORDecodeError, ValueError, OverflowError, RecursionError):
                raise SerializationException("Malformed CBOR: the request body could not be parsed.") from None
            if type(raw) is not dict:
                raise SerializationException("The request body must be a CBOR map.")
        try:
            params: dict[str, Any] = dec(raw)
        except InputError as e:
            raise input_error_to_broker(e, query_style=False) from None
        except RecursionError:
            raise SerializationException("The request body is nested too deeply.") from None
        return params

    def encode_output(self, operation: OperationModel, output: Mapping[str, Any], request_id: str) -> HttpResponse:
        try:
            enc = self._encoders[operation.name]
        except KeyError:
            enc = None if operation.output is None else self._compiler.encoder(operation.output)
            self._encoders[operation.name] = enc
        value: Any = {} if operation.output is None else (output if enc is None else enc(output))
        return HttpResponse(200, cbor2.dumps(value), [("x-amzn-RequestId", request_id)], self.content_type)

    def encode_error(self, error: BrokerError, request_id: str) -> HttpResponse:
        w = wire_error(self.model, error)
        body = cbor2.dumps({"__type": w.code, "message": w.message})
        return HttpResponse(w.status, body, [("x-amzn-RequestId", request_id), ("x-amzn-ErrorType", w.code)],
                            self.content_type)
