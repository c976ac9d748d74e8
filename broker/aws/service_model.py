"""The pinned AWS service models (``proto/aws/*.json``), loaded once and resolved into linked shape objects.

The codecs never read the raw JSON: they compile per-operation encoders and decoders from these objects, so every
trait lookup (locationName, flattened, required, ...) happens once per process, not once per request.

A member reference can override traits of the shape it points to (``locationName``, ``flattened``,
``timestampFormat``, ``xmlNamespace``); ``Member`` carries the merged view, exactly as botocore's model does.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import proto

MODELS_DIR = Path(proto.__file__).resolve().parent / "aws"

# service name -> protocol -> model file. The frozen SQS Query model lands here as ("sqs", "query") when it exists.
MODEL_FILES: dict[str, dict[str, str]] = {
    "sqs": {"json": "sqs-2012-11-05.json", "query": "sqs-query-2012-11-05.json"},
    "sns": {"query": "sns-2010-03-31.json"},
    "kinesis": {"json": "kinesis-2013-12-02.json", "cbor": "kinesis-2013-12-02.json"},
    "sts": {"query": "sts-2011-06-15.json"},
}


class UnknownModel(LookupError):
    """No pinned model describes this service over this protocol."""


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """An error shape of the model: the shape name is the JSON code, ``query_code`` what Query clients see.

    ``None`` where the shape has no ``error`` trait (SQS's JSON model dropped them): the caller falls back to the
    ``BrokerError``'s own values.
    """

    code: str
    query_code: str | None
    status: int | None
    sender_fault: bool | None


@dataclass(eq=False, slots=True)
class Shape:
    """One named shape; ``members``/``member``/``key``/``value`` link to other shapes (cycles allowed)."""

    name: str
    type: str
    members: dict[str, Member] = field(default_factory=dict)
    required: frozenset[str] = frozenset()
    member: Member | None = None
    key: Member | None = None
    value: Member | None = None
    min: float | None = None
    max: float | None = None
    enum: frozenset[str] | None = None
    pattern: str | None = None
    flattened: bool = False
    location_name: str | None = None
    xml_namespace: str | None = None
    timestamp_format: str | None = None
    union: bool = False
    document: bool = False
    exception: bool = False
    error: ErrorInfo | None = None

    def __repr__(self) -> str:
        return f"Shape({self.name!r}, {self.type!r})"


@dataclass(frozen=True, slots=True)
class Member:
    """A reference to a shape from a structure member, list member or map key/value, with merged traits."""

    name: str
    shape: Shape
    location_name: str | None = None
    flattened: bool = False
    timestamp_format: str | None = None
    xml_namespace: str | None = None
    xml_attribute: bool = False
    jsonvalue: bool = False

    @property
    def serialized_name(self) -> str:
        return self.location_name or self.name


@dataclass(frozen=True, slots=True)
class OperationModel:
    name: str
    input: Shape | None
    output: Shape | None
    result_wrapper: str | None
    errors: tuple[str, ...]
    http_method: str = "POST"


@dataclass(eq=False, slots=True)
class ServiceModel:
    """One service over one protocol: metadata, operations, shapes and modelled errors."""

    service: str
    protocol: str
    api_version: str
    endpoint_prefix: str
    signing_name: str
    target_prefix: str | None
    json_version: str | None
    xml_namespace: str | None
    query_compatible: bool
    operations: dict[str, OperationModel]
    shapes: dict[str, Shape]
    errors: dict[str, ErrorInfo]
    _errors_by_query_code: dict[str, ErrorInfo] = field(default_factory=dict)

    def operation(self, name: str) -> OperationModel | None:
        return self.operations.get(name)

    def error_info(self, code: str) -> ErrorInfo | None:
        """The modelled error for a JSON code (shape name) or a legacy Query code, if the model has one."""
        info = self.errors.get(code)
        if info is None:
            info = self._errors_by_query_code.get(code)
        return info

    @classmethod
    def from_dict(cls, service: str, raw: dict[str, Any]) -> ServiceModel:
        meta = raw["metadata"]
        shapes = _build_shapes(raw["shapes"])
        errors = {s.name: s.error for s in shapes.values() if s.error is not None}
        operations: dict[str, OperationModel] = {}
        for name, op in raw["operations"].items():
            out = op.get("output") or {}
            operations[name] = OperationModel(
                name=name,
                input=shapes[op["input"]["shape"]] if "input" in op else None,
                output=shapes[out["shape"]] if "shape" in out else None,
                result_wrapper=out.get("resultWrapper"),
                errors=tuple(e["shape"] for e in op.get("errors", ())),
                http_method=op.get("http", {}).get("method", "POST"),
            )
        model = cls(
            service=service,
            protocol=meta["protocol"],
            api_version=meta["apiVersion"],
            endpoint_prefix=meta["endpointPrefix"],
            signing_name=meta.get("signingName", meta["endpointPrefix"]),
            target_prefix=meta.get("targetPrefix"),
            json_version=meta.get("jsonVersion"),
            xml_namespace=meta.get("xmlNamespace"),
            query_compatible="awsQueryCompatible" in meta,
            operations=operations,
            shapes=shapes,
            errors=errors,
        )
        model._errors_by_query_code = {e.query_code: e for e in errors.values() if e.query_code}
        return model


def _member(name: str, ref: dict[str, Any], shapes: dict[str, Shape]) -> Member:
    target = shapes[ref["shape"]]
    return Member(
        name=name,
        shape=target,
        location_name=ref.get("locationName", target.location_name),
        flattened=bool(ref.get("flattened", target.flattened)),
        timestamp_format=ref.get("timestampFormat", target.timestamp_format),
        xml_namespace=_ns(ref.get("xmlNamespace")) or target.xml_namespace,
        xml_attribute=bool(ref.get("xmlAttribute", False)),
        jsonvalue=bool(ref.get("jsonvalue", False)),
    )


def _ns(value: Any) -> str | None:
    if isinstance(value, dict):
        uri = value.get("uri")
        return uri if isinstance(uri, str) else None
    return value if isinstance(value, str) else None


def _build_shapes(raw: dict[str, dict[str, Any]]) -> dict[str, Shape]:
    # Two passes: create every shape, then link references, so recursive shapes resolve to the same object.
    shapes: dict[str, Shape] = {}
    for name, spec in raw.items():
        error = None
        if spec.get("exception"):
            err = spec.get("error")
            if err is None:
                error = ErrorInfo(code=name, query_code=None, status=None, sender_fault=None)
            else:
                error = ErrorInfo(code=name, query_code=err.get("code", name),
                                  status=int(err.get("httpStatusCode", 500 if spec.get("fault") else 400)),
                                  sender_fault=bool(err.get("senderFault", not spec.get("fault", False))))
        shapes[name] = Shape(
            name=name,
            type=spec["type"],
            required=frozenset(spec.get("required", ())),
            min=spec.get("min"),
            max=spec.get("max"),
            enum=frozenset(spec["enum"]) if "enum" in spec else None,
            pattern=spec.get("pattern"),
            flattened=bool(spec.get("flattened", False)),
            location_name=spec.get("locationName"),
            xml_namespace=_ns(spec.get("xmlNamespace")),
            timestamp_format=spec.get("timestampFormat"),
            union=bool(spec.get("union", False)),
            document=bool(spec.get("document", False)),
            exception=bool(spec.get("exception", False)),
            error=error,
        )
    for name, spec in raw.items():
        shape = shapes[name]
        if "members" in spec:
            shape.members = {m: _member(m, ref, shapes) for m, ref in spec["members"].items()}
        if "member" in spec:
            shape.member = _member("member", spec["member"], shapes)
        if "key" in spec:
            shape.key = _member("key", spec["key"], shapes)
        if "value" in spec:
            shape.value = _member("value", spec["value"], shapes)
    return shapes


@functools.cache
def load_file(path: Path) -> dict[str, Any]:
    with path.open("rb") as f:
        raw: dict[str, Any] = json.load(f)
    return raw


@functools.cache
def load_service_model(service: str, protocol: str) -> ServiceModel:
    """The model of ``service`` as spoken over ``protocol`` ("json", "query", "cbor"); loaded once per process.

    Raises ``UnknownModel`` when no pinned model describes that pair (e.g. SQS over Query until the frozen model
    is committed).
    """
    filename = MODEL_FILES.get(service, {}).get(protocol)
    if filename is None or not (MODELS_DIR / filename).exists():
        raise UnknownModel(f"no model for {service} over {protocol}")
    return ServiceModel.from_dict(service, load_file(MODELS_DIR / filename))


def has_model(service: str, protocol: str) -> bool:
    filename = MODEL_FILES.get(service, {}).get(protocol)
    return filename is not None and (MODELS_DIR / filename).exists()
