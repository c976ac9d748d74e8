"""The AWS Query protocol: form-encoded requests, XML responses; one codec for every Query service.

Requests: the flat form (``Attribute.1.Name=...``) is first folded into a tree on the dots, then decoded by closures
compiled from the input shape with botocore's naming rules:
- structure member ``Prefix.Name`` (``Name`` = the member's locationName, else its name);
- list ``Prefix.member.N`` (``member`` = the list member's locationName, if any); flattened lists ``Prefix.N``,
  where a named list member replaces the last segment (``Attribute.N`` instead of ``Attributes.N``);
- map ``Prefix.entry.N.key/value``; flattened ``Prefix.N.key/value``; key/value renamed by their locationName;
- an empty list is sent as ``Prefix=`` and decodes to ``[]``.
Missing required members are ``MissingParameter`` ("The request must contain the parameter X."), values that do
not parse as their type ``InvalidParameterValue``; unknown parameters (Action, Version, signatures) are ignored.

Responses: ``<OpResponse xmlns=NS><OpResult>...</OpResult><ResponseMetadata><RequestId>``, errors
``<ErrorResponse xmlns=NS><Error><Type>Sender|Receiver</Type><Code>legacy code</Code><Message>`` with the request
id, the code and status from the model when the error is modelled.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

from broker.aws.json_protocol import input_error_to_broker
from broker.aws.protocol import InputError, wire_error
from broker.aws.service_model import Member, OperationModel, ServiceModel, Shape
from broker.aws.shape_codec import encode_epoch, encode_http_date, encode_iso8601, parse_timestamp
from broker.http.types import HttpResponse
from broker.model.errors import BrokerError, MalformedQueryString

Node = Any  # str (a value) or dict[str, Node] (a dotted prefix); a prefix that also has a value keeps it under ""
QueryDecoder = Callable[[Node], Any]
XmlEncoder = Callable[[Any, str, list[str]], None]  # (value, element name, output parts)

CONTENT_TYPE = "text/xml"


def parse_form(body: bytes, query: str = "") -> dict[str, str]:
    """Form body and query string merged into one dict (the body wins); MalformedQueryString if undecodable."""
    params: dict[str, str] = {}
    try:
        if query:
            params.update(parse_qsl(query, keep_blank_values=True, errors="strict"))
        if body:
            params.update(parse_qsl(body.decode("utf-8"), keep_blank_values=True, errors="strict"))
    except (UnicodeDecodeError, ValueError) as e:
        raise MalformedQueryString(f"The request could not be parsed as a form: {e}.") from None
    return params


def form_tree(form: Mapping[str, str]) -> dict[str, Node]:
    """Fold ``{"A.1.B": "x"}`` into ``{"A": {"1": {"B": "x"}}}``."""
    root: dict[str, Node] = {}
    for key, value in form.items():
        parts = key.split(".")
        node = root
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif type(child) is str:
                child = node[part] = {"": child}
            node = child
        last = parts[-1]
        existing = node.get(last)
        if type(existing) is dict:
            existing[""] = value
        else:
            node[last] = value
    return root


def _scalar(shape: Shape, node: Node) -> str:
    if type(node) is str:
        return node
    if type(node) is dict and "" in node:
        value: str = node[""]
        return value
    raise InputError("type", f"must be {shape.type}", "(a structure)")


def _indexed(node: Node, what: str) -> list[Node]:
    """The children of a ``.N`` prefix in index order."""
    if type(node) is str:
        if node == "":
            return []
        raise InputError("type", f"must be {what}", node)
    items: list[tuple[int, Node]] = []
    for index, child in node.items():
        if index == "":
            continue
        if not index.isdigit() or int(index) < 1:
            err = InputError("type", "must be a positive index", index)
            raise err
        items.append((int(index), child))
    items.sort(key=lambda kv: kv[0])
    return [child for _, child in items]


def query_key(member: Member) -> str:
    """The name under which a structure member appears in the form (and in the XML)."""
    shape = member.shape
    if shape.type == "list" and member.flattened and shape.member is not None and shape.member.location_name:
        return shape.member.location_name
    return member.serialized_name


class QueryCodec:
    """Query/XML codec of one service model."""

    protocol = "query"
    content_type = CONTENT_TYPE

    def __init__(self, model: ServiceModel) -> None:
        self.model = model
        self._xmlns = f' xmlns="{model.xml_namespace}"' if model.xml_namespace else ""
        self._decoders: dict[str, QueryDecoder] = {}
        self._op_decoders: dict[str, QueryDecoder] = {}
        self._encoders: dict[str, XmlEncoder] = {}
        self._op_encoders: dict[str, Callable[[Mapping[str, Any], list[str]], None]] = {}

    # -- requests ---------------------------------------------------------------------------------------------

    def decode_form(self, operation: OperationModel, form: Mapping[str, str]) -> dict[str, Any]:
        dec = self._op_decoders.get(operation.name)
        if dec is None:
            dec = (lambda node: {}) if operation.input is None else self._decoder(operation.input)
            self._op_decoders[operation.name] = dec
        try:
            params: dict[str, Any] = dec(form_tree(form))
        except InputError as e:
            raise input_error_to_broker(e, query_style=True) from None
        return params

    def decode_body(self, operation: OperationModel, body: bytes) -> dict[str, Any]:
        return self.decode_form(operation, parse_form(body))

    def _decoder(self, shape: Shape) -> QueryDecoder:
        found = self._decoders.get(shape.name)
        if found is not None:
            return found
        slot: list[QueryDecoder] = []
        self._decoders[shape.name] = lambda node: slot[0](node)
        built = self._build_decoder(shape)
        slot.append(built)
        self._decoders[shape.name] = built
        return built

    def _build_decoder(self, shape: Shape) -> QueryDecoder:
        t = shape.type
        if t == "structure":
            # A renamed flattened list is sent empty under its member name (``Entries=``, as botocore's Query
            # serializer writes an empty list before renaming): that key is the fallback for an empty list.
            members = [(name, query_key(m), m.serialized_name if query_key(m) != m.serialized_name else None,
                        self._decoder(m.shape)) for name, m in shape.members.items()]
            required = shape.required

            def dec_struct(node: Node) -> dict[str, Any]:
                if type(node) is not dict:
                    if node == "":
                        node = {}
                    else:
                        raise InputError("type", "must be a structure", node)
                out: dict[str, Any] = {}
                for name, key, empty_key, dec in members:
                    child = node.get(key)
                    if child is None and empty_key is not None and node.get(empty_key) == "":
                        child = ""
                    if child is None:
                        if name in required:
                            err = InputError("missing", "is required")
                            err.path.append(key)
                            raise err
                        continue
                    try:
                        out[name] = dec(child)
                    except InputError as e:
                        e.path.append(key)
                        raise
                return out
            return dec_struct
        if t == "list":
            assert shape.member is not None
            item_dec = self._decoder(shape.member.shape)
            # A flattened list's items hang directly off its key; otherwise under ".member" (or its locationName).
            inner = None if shape.flattened else (shape.member.location_name or "member")

            def dec_list(node: Node) -> list[Any]:
                if inner is not None and type(node) is dict:
                    node = node.get(inner, "")
                out = []
                for i, item in enumerate(_indexed(node, "a list"), 1):
                    try:
                        out.append(item_dec(item))
                    except InputError as e:
                        e.path.append(str(i) if inner is None else f"{inner}.{i}")
                        raise
                return out
            return dec_list
        if t == "map":
            assert shape.key is not None and shape.value is not None
            key_dec = self._decoder(shape.key.shape)
            val_dec = self._decoder(shape.value.shape)
            key_name = shape.key.location_name or "key"
            value_name = shape.value.location_name or "value"
            entry = None if shape.flattened else "entry"

            def dec_map(node: Node) -> dict[Any, Any]:
                if entry is not None and type(node) is dict:
                    node = node.get(entry, "")
                out = {}
                for i, item in enumerate(_indexed(node, "a map"), 1):
                    where = str(i) if entry is None else f"{entry}.{i}"
                    if type(item) is not dict or key_name not in item:
                        err = InputError("missing", "is required")
                        err.path.extend([key_name, where])
                        raise err
                    if value_name not in item:
                        err = InputError("missing", "is required")
                        err.path.extend([value_name, where])
                        raise err
                    try:
                        out[key_dec(item[key_name])] = val_dec(item[value_name])
                    except InputError as e:
                        e.path.append(where)
                        raise
                return out
            return dec_map
        return self._scalar_decoder(shape)

    def _scalar_decoder(self, shape: Shape) -> QueryDecoder:
        t = shape.type
        if t in ("integer", "long"):
            def dec_int(node: Node) -> int:
                text = _scalar(shape, node).strip()
                try:
                    return int(text)
                except ValueError:
                    raise InputError("type", "must be an integer", text) from None
            return dec_int
        if t in ("float", "double"):
            def dec_float(node: Node) -> float:
                text = _scalar(shape, node).strip()
                try:
                    return float(text)
                except ValueError:
                    raise InputError("type", "must be a number", text) from None
            return dec_float
        if t == "boolean":
            def dec_bool(node: Node) -> bool:
                text = _scalar(shape, node).strip().lower()
                if text == "true":
                    return True
                if text == "false":
                    return False
                raise InputError("type", "must be true or false", text)
            return dec_bool
        if t == "blob":
            def dec_blob(node: Node) -> bytes:
                text = _scalar(shape, node)
                try:
                    return base64.b64decode(text, validate=True)
                except (binascii.Error, ValueError):
                    raise InputError("type", "must be base64", text) from None
            return dec_blob
        if t == "timestamp":
            def dec_ts(node: Node) -> datetime:
                text = _scalar(shape, node).strip()
                try:
                    return parse_timestamp(text)
                except (ValueError, OverflowError, OSError):
                    raise InputError("type", "must be an ISO 8601 timestamp", text) from None
            return dec_ts
        return lambda node: _scalar(shape, node)

    # -- responses --------------------------------------------------------------------------------------------

    def encode_output(self, operation: OperationModel, output: Mapping[str, Any], request_id: str) -> HttpResponse:
        enc = self._op_encoders.get(operation.name)
        if enc is None:
            enc = self._operation_encoder(operation)
            self._op_encoders[operation.name] = enc
        parts: list[str] = []
        enc(output, parts)
        name = operation.name
        body = (f"<{name}Response{self._xmlns}>{''.join(parts)}<ResponseMetadata><RequestId>{_esc(request_id)}"
                f"</RequestId></ResponseMetadata></{name}Response>")
        return HttpResponse(200, body.encode(), [("x-amzn-RequestId", request_id)], CONTENT_TYPE)

    def encode_error(self, error: BrokerError, request_id: str) -> HttpResponse:
        w = wire_error(self.model, error)
        kind = "Sender" if w.sender_fault else "Receiver"
        body = (f"<ErrorResponse{self._xmlns}><Error><Type>{kind}</Type><Code>{_esc(w.query_code)}</Code>"
                f"<Message>{_esc(w.message)}</Message></Error><RequestId>{_esc(request_id)}</RequestId>"
                "</ErrorResponse>")
        return HttpResponse(w.status, body.encode(), [("x-amzn-RequestId", request_id)], CONTENT_TYPE)

    def _operation_encoder(self, operation: OperationModel) -> Callable[[Mapping[str, Any], list[str]], None]:
        shape, wrapper = operation.output, operation.result_wrapper
        if shape is None:
            return lambda output, parts: None
        members = self._member_encoders(shape)
        if wrapper is None:
            return lambda output, parts: _encode_members(members, output, parts)

        def enc(output: Mapping[str, Any], parts: list[str]) -> None:
            parts.append(f"<{wrapper}>")
            _encode_members(members, output, parts)
            parts.append(f"</{wrapper}>")
        return enc

    def _member_encoders(self, shape: Shape) -> dict[str, tuple[str, XmlEncoder]]:
        return {name: (query_key(m), self._member_encoder(m)) for name, m in shape.members.items()}

    def _member_encoder(self, member: Member) -> XmlEncoder:
        """Like ``_encoder``, but honours a ``timestampFormat`` set on the reference (default: ISO 8601)."""
        if member.shape.type == "timestamp" and member.timestamp_format:
            text = _TIMESTAMP_TEXT.get(member.timestamp_format, _text_timestamp)

            def enc_timestamp(v: Any, name: str, parts: list[str]) -> None:
                parts.append(f"<{name}>{text(v)}</{name}>")
            return enc_timestamp
        return self._encoder(member.shape)

    def _encoder(self, shape: Shape) -> XmlEncoder:
        found = self._encoders.get(shape.name)
        if found is not None:
            return found
        slot: list[XmlEncoder] = []
        self._encoders[shape.name] = lambda v, name, parts: slot[0](v, name, parts)
        built = self._build_encoder(shape)
        slot.append(built)
        self._encoders[shape.name] = built
        return built

    def _build_encoder(self, shape: Shape) -> XmlEncoder:
        t = shape.type
        if t == "structure":
            members = self._member_encoders(shape)

            def enc_struct(v: Any, name: str, parts: list[str]) -> None:
                parts.append(f"<{name}>")
                _encode_members(members, v, parts)
                parts.append(f"</{name}>")
            return enc_struct
        if t == "list":
            assert shape.member is not None
            item_enc = self._member_encoder(shape.member)
            if shape.flattened:
                def enc_flat_list(v: Any, name: str, parts: list[str]) -> None:
                    for item in v:
                        item_enc(item, name, parts)
                return enc_flat_list
            inner = shape.member.location_name or "member"

            def enc_list(v: Any, name: str, parts: list[str]) -> None:
                parts.append(f"<{name}>")
                for item in v:
                    item_enc(item, inner, parts)
                parts.append(f"</{name}>")
            return enc_list
        if t == "map":
            assert shape.key is not None and shape.value is not None
            key_enc = self._encoder(shape.key.shape)
            val_enc = self._member_encoder(shape.value)
            key_name = shape.key.location_name or "key"
            value_name = shape.value.location_name or "value"
            if shape.flattened:
                def enc_flat_map(v: Any, name: str, parts: list[str]) -> None:
                    for k, item in v.items():
                        parts.append(f"<{name}>")
                        key_enc(k, key_name, parts)
                        val_enc(item, value_name, parts)
                        parts.append(f"</{name}>")
                return enc_flat_map

            def enc_map(v: Any, name: str, parts: list[str]) -> None:
                parts.append(f"<{name}>")
                for k, item in v.items():
                    parts.append("<entry>")
                    key_enc(k, key_name, parts)
                    val_enc(item, value_name, parts)
                    parts.append("</entry>")
                parts.append(f"</{name}>")
            return enc_map
        text = _TEXT.get(t, _text_str)

        def enc_scalar(v: Any, name: str, parts: list[str]) -> None:
            parts.append(f"<{name}>{text(v)}</{name}>")
        return enc_scalar


def _encode_members(members: dict[str, tuple[str, XmlEncoder]], value: Mapping[str, Any], parts: list[str]) -> None:
    for key, item in value.items():
        if item is None:
            continue
        spec = members.get(key)
        if spec is not None:
            spec[1](item, spec[0], parts)


# Characters XML 1.0 cannot carry at all, not even as character references (C0 controls but tab, CR and LF; lone
# surrogates; U+FFFE/U+FFFF): a client can put them in an error message (an action name) or an attribute.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _esc(text: str) -> str:
    if not text.isprintable():  # every character _NOT_XML matches is unprintable: one C-speed test on the hot path
        text = _NOT_XML.sub("\ufffd", text)
    if "&" in text:
        text = text.replace("&", "&amp;")
    if "<" in text:
        text = text.replace("<", "&lt;")
    if ">" in text:
        text = text.replace(">", "&gt;")
    if "\r" in text:
        text = text.replace("\r", "&#xD;")  # XML parsers turn a literal CR into LF
    return text


def _text_str(v: Any) -> str:
    return _esc(v if type(v) is str else str(v))


def _text_bool(v: Any) -> str:
    return "true" if v else "false"


def _text_blob(v: Any) -> str:
    return base64.b64encode(v.encode() if isinstance(v, str) else v).decode("ascii")


def _text_timestamp(v: Any) -> str:
    return encode_iso8601(v)


def _text_epoch(v: Any) -> str:
    return str(encode_epoch(v))


_TIMESTAMP_TEXT: dict[str, Callable[[Any], str]] = {"iso8601": _text_timestamp, "unixTimestamp": _text_epoch,
                                                    "rfc822": encode_http_date}


def _text_number(v: Any) -> str:
    return str(v)


_TEXT: dict[str, Callable[[Any], str]] = {
    "boolean": _text_bool, "blob": _text_blob, "timestamp": _text_timestamp,
    "integer": _text_number, "long": _text_number, "float": _text_number, "double": _text_number,
}
