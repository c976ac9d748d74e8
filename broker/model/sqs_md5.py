"""MD5 digests of SQS messages exactly as AWS computes them (SDKs such as the Java and .NET ones verify them).

The body digest is the hex MD5 of the UTF-8 body. The attribute digest covers the attributes sorted by name, each
encoded as: length-prefixed name, length-prefixed data type, one transport byte (1 = String/Number, 2 = Binary), and
the length-prefixed value (UTF-8 for strings, raw bytes for binaries); lengths are 4-byte big-endian.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable
from typing import Any

from broker.model.sqs_types import MessageAttribute


def _openssl_md5(data: bytes) -> Any:
    return hashlib.md5(data, usedforsecurity=False)


_md5: Callable[[bytes], Any] = _openssl_md5
try:  # CPython's own MD5: half the cost of OpenSSL's for a message-sized input (object set-up dominates)
    import _md5 as _builtin_md5
    _md5 = _builtin_md5.md5
except ImportError:  # another interpreter: OpenSSL's
    pass

_LEN = struct.Struct(">I").pack
_STRING = b"\x01"
_BINARY = b"\x02"


def md5_of_body(body: str | bytes) -> str:
    data = body.encode("utf-8") if isinstance(body, str) else body
    digest: str = _md5(data).hexdigest()
    return digest


def md5_of_attributes(attributes: tuple[MessageAttribute, ...]) -> str | None:
    """Digest of ``attributes`` (any order); ``None`` when there are none, as AWS then omits the field."""
    if not attributes:
        return None
    digest = hashlib.md5(usedforsecurity=False)
    for name, data_type, string_value, binary_value in sorted(attributes, key=lambda a: a[0]):
        name_b = name.encode("utf-8")
        type_b = data_type.encode("utf-8")
        digest.update(_LEN(len(name_b)) + name_b + _LEN(len(type_b)) + type_b)
        if binary_value is not None:
            digest.update(_BINARY + _LEN(len(binary_value)) + binary_value)
        else:
            value_b = (string_value or "").encode("utf-8")
            digest.update(_STRING + _LEN(len(value_b)) + value_b)
    return digest.hexdigest()
