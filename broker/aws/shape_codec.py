"""Compiles shapes into small decoder/encoder closures for the JSON-like protocols (AWS JSON now, CBOR later).

A decoder takes a value straight from ``orjson.loads`` and returns it validated and converted (blobs -> bytes,
timestamps -> aware ``datetime``); it raises ``InputError`` whose ``path`` is filled in only while the error
unwinds, so the success path builds no strings. An encoder turns a service output into plain JSON-able data
(bytes -> base64 text, datetime -> epoch seconds, ``None`` members omitted, unknown members dropped).

Compiled closures are cached per shape name by ``ShapeCompiler``; recursive shapes go through a trampoline.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any

from broker.aws.protocol import InputError
from broker.aws.service_model import Member, Shape

Decoder = Callable[[Any], Any]
Encoder = Callable[[Any], Any]

_TYPE_NAMES = {"string": "a string", "integer": "an integer", "long": "an integer", "boolean": "a boolean",
               "float": "a number", "double": "a number", "blob": "base64 text", "timestamp": "a timestamp",
               "list": "a list", "map": "an object", "structure": "an object"}


def _type_error(shape: Shape, value: Any) -> InputError:
    return InputError("type", f"must be {_TYPE_NAMES.get(shape.type, shape.type)}", value)


def _constraint_error(detail: str, value: Any) -> InputError:
    return InputError("constraint", detail, value)


def parse_timestamp(value: Any) -> datetime:
    """Epoch seconds (number or numeric text), ISO 8601 or RFC 822 text -> aware UTC datetime; ValueError if none.

    Accepting every format AWS uses, whatever the member's ``timestampFormat``, costs nothing and matches how
    lenient the real services are.
    """
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str):
        try:
            return datetime.fromtimestamp(float(value), UTC)
        except ValueError:
            pass
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            try:
                parsed = parsedate_to_datetime(value)
            except (TypeError, ValueError, IndexError):
                raise ValueError(value) from None
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    raise ValueError(value)


class ShapeCompiler:
    """Builds and caches decoders (with or without constraint checks) and encoders for one service model."""

    def __init__(self, *, check_constraints: bool) -> None:
        self.check_constraints = check_constraints
        self._decoders: dict[str, Decoder] = {}
        self._encoders: dict[str, Encoder | None] = {}

    # -- decoding ---------------------------------------------------------------------------------------------

    def decoder(self, shape: Shape) -> Decoder:
        found = self._decoders.get(shape.name)
        if found is not None:
            return found
        slot: list[Decoder] = []
        # Trampoline: a recursive reference to this shape calls through ``slot`` until it is filled.
        self._decoders[shape.name] = lambda v: slot[0](v)
        built = self._build_decoder(shape)
        slot.append(built)
        self._decoders[shape.name] = built
        return built

    def _build_decoder(self, shape: Shape) -> Decoder:
        t = shape.type
        if shape.document:
            return lambda v: v
        if t == "structure":
            return self._structure_decoder(shape)
        if t == "list":
            return self._list_decoder(shape)
        if t == "map":
            return self._map_decoder(shape)
        if t == "string":
            return self._string_decoder(shape)
        if t in ("integer", "long"):
            return self._int_decoder(shape)
        if t in ("float", "double"):
            return self._float_decoder(shape)
        if t == "boolean":
            def dec_bool(v: Any) -> Any:
                if type(v) is not bool:
                    raise _type_error(shape, v)
                return v
            return dec_bool
        if t == "blob":
            def dec_blob(v: Any) -> bytes:
                if type(v) is not str:
                    raise _type_error(shape, v)
                try:
                    return base64.b64decode(v, validate=True)
                except (binascii.Error, ValueError):
                    raise _type_error(shape, v) from None
            return dec_blob
        if t == "timestamp":
            def dec_ts(v: Any) -> datetime:
                try:
                    return parse_timestamp(v)
                except (ValueError, OverflowError, OSError):
                    raise _type_error(shape, v) from None
            return dec_ts
        return lambda v: v

    def _fast_type(self, shape: Shape) -> type | None:
        """The exact Python type a value of ``shape`` must have when a type check is its whole validation."""
        t = shape.type
        if t == "boolean":
            return bool
        if self.check_constraints and (shape.min is not None or shape.max is not None or shape.enum is not None
                                       or shape.pattern is not None):
            return None
        if t == "string" and not shape.document:
            return str
        if t in ("integer", "long"):
            return int
        return None

    def _structure_decoder(self, shape: Shape) -> Decoder:
        # Per member: (exact type, None) when a type check suffices (inlined below: most members are plain
        # strings, and a call per member would double the cost of a batch), else (None, decoder).
        members: dict[str, tuple[type | None, Decoder | None]] = {}
        for name, m in shape.members.items():
            fast = self._fast_type(m.shape)
            members[name] = (fast, None) if fast is not None else (None, self.decoder(m.shape))
        required = shape.required
        required_in_order = [name for name in shape.members if name in required]  # first missing is reported
        union = shape.union and self.check_constraints

        def dec_struct(v: Any) -> dict[str, Any]:
            if type(v) is not dict:
                raise _type_error(shape, v)
            out: dict[str, Any] = {}
            for key, item in v.items():
                spec = members.get(key)
                if spec is None or item is None:
                    continue  # unknown members are ignored, as AWS does; null means absent
                fast, dec = spec
                if dec is None:
                    if type(item) is not fast:
                        err = _type_error(shape.members[key].shape, item)
                        err.path.append(key)
                        raise err
                    out[key] = item
                    continue
                try:
                    out[key] = dec(item)
                except InputError as e:
                    e.path.append(key)
                    raise
            if required and not required.issubset(out):
                missing = next(name for name in required_in_order if name not in out)
                err = InputError("missing", "is required")
                err.path.append(missing)
                raise err
            if union and len(out) != 1:
                raise _constraint_error("Member must have exactly one member set", v)
            return out
        return dec_struct

    def _list_decoder(self, shape: Shape) -> Decoder:
        assert shape.member is not None
        item_dec = self.decoder(shape.member.shape)
        lo, hi = self._bounds(shape)

        def dec_list(v: Any) -> list[Any]:
            if type(v) is not list:
                raise _type_error(shape, v)
            out = []
            for i, item in enumerate(v, 1):
                try:
                    out.append(item_dec(item))
                except InputError as e:
                    e.path.append(f"{i}.member")
                    raise
            n = len(out)
            if lo is not None and n < lo:
                raise _constraint_error(f"Member must have length greater than or equal to {lo:g}", v)
            if hi is not None and n > hi:
                raise _constraint_error(f"Member must have length less than or equal to {hi:g}", v)
            return out
        return dec_list

    def _map_decoder(self, shape: Shape) -> Decoder:
        assert shape.key is not None and shape.value is not None
        key_dec = self.decoder(shape.key.shape)
        val_dec = self.decoder(shape.value.shape)
        lo, hi = self._bounds(shape)
        plain_keys = self._fast_type(shape.key.shape) is str

        def dec_map(v: Any) -> dict[Any, Any]:
            if type(v) is not dict:
                raise _type_error(shape, v)
            out = {}
            for key, item in v.items():
                try:
                    # orjson only produces string keys: a plain-string key shape needs no check.
                    out[key if plain_keys else key_dec(key)] = val_dec(item)
                except InputError as e:
                    e.path.append(str(key))
                    raise
            n = len(out)
            if lo is not None and n < lo:
                raise _constraint_error(f"Member must have length greater than or equal to {lo:g}", v)
            if hi is not None and n > hi:
                raise _constraint_error(f"Member must have length less than or equal to {hi:g}", v)
            return out
        return dec_map

    def _bounds(self, shape: Shape) -> tuple[float | None, float | None]:
        if not self.check_constraints:
            return None, None
        return shape.min, shape.max

    def _string_decoder(self, shape: Shape) -> Decoder:
        lo, hi = self._bounds(shape)
        enum = shape.enum if self.check_constraints else None
        pattern = _compile_pattern(shape.pattern) if self.check_constraints else None
        if lo is None and hi is None and enum is None and pattern is None:
            def dec_str(v: Any) -> str:
                if type(v) is not str:
                    raise _type_error(shape, v)
                return v
            return dec_str

        def dec_checked_str(v: Any) -> str:
            if type(v) is not str:
                raise _type_error(shape, v)
            n = len(v)
            if lo is not None and n < lo:
                raise _constraint_error(f"Member must have length greater than or equal to {lo:g}", v)
            if hi is not None and n > hi:
                raise _constraint_error(f"Member must have length less than or equal to {hi:g}", v)
            if enum is not None and v not in enum:
                raise _constraint_error(f"Member must satisfy enum value set: [{', '.join(sorted(enum))}]", v)
            if pattern is not None and pattern.fullmatch(v) is None:
                raise _constraint_error(f"Member must satisfy regular expression pattern: {shape.pattern}", v)
            return v
        return dec_checked_str

    def _int_decoder(self, shape: Shape) -> Decoder:
        lo, hi = self._bounds(shape)

        def dec_int(v: Any) -> int:
            if type(v) is not int:
                raise _type_error(shape, v)
            n: int = v
            if lo is not None and n < lo:
                raise _constraint_error(f"Member must have value greater than or equal to {lo:g}", n)
            if hi is not None and n > hi:
                raise _constraint_error(f"Member must have value less than or equal to {hi:g}", n)
            return n
        return dec_int

    def _float_decoder(self, shape: Shape) -> Decoder:
        lo, hi = self._bounds(shape)

        def dec_float(v: Any) -> float:
            if type(v) is float:
                x: float = v
            elif type(v) is int or (type(v) is str and v in ("NaN", "Infinity", "-Infinity")):
                x = float(v)
            else:
                raise _type_error(shape, v)
            if lo is not None and x < lo:
                raise _constraint_error(f"Member must have value greater than or equal to {lo:g}", x)
            if hi is not None and x > hi:
                raise _constraint_error(f"Member must have value less than or equal to {hi:g}", x)
            return x
        return dec_float

    # -- encoding ---------------------------------------------------------------------------------------------

    def encoder(self, shape: Shape) -> Encoder | None:
        """The output encoder of ``shape``; ``None`` when values of the shape are already JSON-able as they are."""
        if shape.name in self._encoders:
            return self._encoders[shape.name]
        slot: list[Encoder | None] = []

        def trampoline(v: Any) -> Any:
            enc = slot[0]
            return v if enc is None else enc(v)
        self._encoders[shape.name] = trampoline
        built = self._build_encoder(shape)
        slot.append(built)
        self._encoders[shape.name] = built
        return built

    def member_encoder(self, member: Member) -> Encoder | None:
        """Like ``encoder``, but honours a ``timestampFormat`` set on the reference (default: epoch seconds)."""
        if member.shape.type == "timestamp":
            enc: Encoder = TIMESTAMP_ENCODERS.get(member.timestamp_format or "unixTimestamp", encode_epoch)
            return enc
        return self.encoder(member.shape)

    def _build_encoder(self, shape: Shape) -> Encoder | None:
        t = shape.type
        if shape.document:
            return None
        if t == "structure":
            members = {name: self.member_encoder(m) for name, m in shape.members.items()}

            def enc_struct(v: Any) -> dict[str, Any]:
                out = {}
                for key, item in v.items():
                    if item is None or key not in members:
                        continue  # None means absent; a member the model does not know never leaks out
                    enc = members[key]
                    out[key] = item if enc is None else enc(item)
                return out
            return enc_struct
        if t == "list":
            assert shape.member is not None
            item_enc = self.member_encoder(shape.member)
            if item_enc is None:
                return None
            return lambda v: [item_enc(i) for i in v]
        if t == "map":
            assert shape.value is not None
            val_enc = self.member_encoder(shape.value)
            if val_enc is None:
                return None
            return lambda v: {k: val_enc(i) for k, i in v.items()}
        if t == "blob":
            return encode_blob
        if t == "timestamp":
            return encode_epoch
        return None


def encode_blob(v: Any) -> str:
    if isinstance(v, str):
        v = v.encode()
    return base64.b64encode(v).decode("ascii")


def encode_epoch(v: Any) -> float | int:
    if isinstance(v, datetime):
        return v.timestamp()
    if isinstance(v, (int, float)):
        return v
    raise TypeError(f"timestamp expected, got {type(v).__name__}")


def _as_datetime(v: Any) -> datetime:
    when: datetime = v if isinstance(v, datetime) else datetime.fromtimestamp(v, UTC)
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def encode_iso8601(v: Any) -> str:
    return _as_datetime(v).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def encode_http_date(v: Any) -> str:
    return format_datetime(_as_datetime(v), usegmt=True)


TIMESTAMP_ENCODERS: dict[str, Encoder] = {"unixTimestamp": encode_epoch, "iso8601": encode_iso8601,
                                          "rfc822": encode_http_date}


def _compile_pattern(pattern: str | None) -> re.Pattern[str] | None:
    if pattern is None:
        return None
    try:
        return re.compile(pattern)
    except re.error:
        return None  # a Java-only construct: leave the check to the service rather than reject valid input
