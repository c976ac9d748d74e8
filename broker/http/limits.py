"""Abuse limits of the HTTP front door: what one request or connection may cost before the server refuses it.

The numbers are data (``HttpLimits``) and the checks live in ``broker.http.protocol``, so a test can give a server
tiny limits. Body caps are per service and sit above the largest request AWS accepts, worst-case encoding
included, so no legal request is refused:

- SQS: a message (or a whole batch) of 1 MiB; botocore's JSON escapes non-ASCII as ``\\uXXXX`` (up to 3x) and the
  Query protocol percent-encodes every byte (3x), plus attributes and the envelope: 4 MiB.
- Kinesis: records (``UpdateMaxRecordSize``) up to 10 MiB, base64 in JSON (4/3x) plus partition keys: 15 MiB.
- SNS: 256 KiB messages and batches, percent-encoded (3x), plus attributes: 1 MiB.
- STS: a few hundred bytes: 64 KiB.

A request names its service before its body: ``X-Amz-Target`` (JSON/CBOR) or the SigV4 credential scope
(``Authorization``). A Query request that names neither (unsigned, or presigned in the URL) gets the largest Query
cap (SQS's).

Refusals are answered in the client's protocol so SDKs surface a code, not a parse failure: JSON (AWS JSON
``__type``), CBOR, or Query XML (``ErrorResponse``) when the request is form-encoded or a ``GET`` with ``Action=``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from xml.sax.saxutils import escape

import cbor2
import orjson

from broker.http.types import HttpResponse
from broker.ids import random_uuid

KIB = 1024
MIB = 1024 * KIB

# X-Amz-Target prefix -> service, for picking a body cap from the headers alone.
TARGET_SERVICES: Mapping[str, str] = MappingProxyType({"AmazonSQS": "sqs", "Kinesis_20131202": "kinesis"})
DEFAULT_BODY_BYTES: Mapping[str, int] = MappingProxyType(
    {"sqs": 4 * MIB, "kinesis": 15 * MIB, "sns": 1 * MIB, "sts": 64 * KIB})
# The cap of a request whose service the headers do not name: the largest Query service's.
UNNAMED = "sqs"
MAX_CACHED_TARGETS = 512  # bounded against clients sending junk targets

JSON_1_0 = "application/x-amz-json-1.0"
CBOR = "application/x-amz-cbor-1.1"
XML = "text/xml"
FORM = "application/x-www-form-urlencoded"


@dataclass(frozen=True, slots=True)
class HttpLimits:
    """Every limit one HTTP server enforces; ``None`` turns a limit off.

    Timeouts apply only while the server waits for the client: never while a handler runs (an SQS long poll of
    20 s, a Kinesis SubscribeToShard stream of 5 min) or while answers are queued.
    """

    # Bytes of body per service (keys: sqs, sns, sts, kinesis); a request of any other service gets ``default``.
    body_bytes: Mapping[str, int] = field(default_factory=lambda: DEFAULT_BODY_BYTES)
    default_body_bytes: int | None = None  # cap when the service has no entry; None: the UNNAMED service's cap
    max_url_bytes: int = 64 * KIB  # 414 beyond
    max_header_bytes: int = 64 * KIB  # names + values of one request; 431 beyond
    max_headers: int | None = 100  # header lines of one request; 431 beyond
    max_connections: int | None = 10_000  # open connections; the next one gets 503 and is closed
    # A request's head must arrive within this many seconds (from the connection's start for its first request,
    # else from the request's first byte), or 408 and close. A connection that never sends a byte is closed too.
    header_timeout: float | None = 20.0
    # A body must arrive within body_timeout + received / min_body_rate seconds of the end of its head, so a client
    # trickling bytes is cut off after about body_timeout while a slow but steady upload of any size goes through.
    body_timeout: float | None = 20.0
    min_body_rate: float = 16 * KIB  # bytes per second
    idle_timeout: float | None = 75.0  # keep-alive: close a connection silent this long between requests
    # X-Amz-Target -> its cap, filled as targets are seen (SDKs send a few dozen): one dict lookup per request.
    _target_caps: dict[str, int] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("header_timeout", "body_timeout", "idle_timeout"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be positive or None, not {value}")
        if self.min_body_rate <= 0:
            raise ValueError("min_body_rate must be positive")
        if self.max_connections is not None and self.max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        if any(v < 0 for v in self.body_bytes.values()):
            raise ValueError("body caps must not be negative")

    @classmethod
    def legacy(cls, max_body_bytes: int) -> HttpLimits:
        """One body cap for everything and no timers: what ``HttpServer`` enforced before per-service limits."""
        return cls(body_bytes={}, default_body_bytes=max_body_bytes, max_headers=None, max_connections=None,
                   header_timeout=None, body_timeout=None, idle_timeout=None)

    @property
    def timed(self) -> bool:
        """Whether any timeout needs the periodic sweep."""
        return self.header_timeout is not None or self.body_timeout is not None or self.idle_timeout is not None

    @property
    def sweep_period(self) -> float:
        """How often connections are checked: a quarter of the shortest timeout, between 50 ms and 1 s."""
        timeouts = [t for t in (self.header_timeout, self.body_timeout, self.idle_timeout) if t is not None]
        return min(1.0, max(0.05, min(timeouts) / 4)) if timeouts else 1.0

    @property
    def largest_body(self) -> int:
        return max([*self.body_bytes.values(), self.fallback_body_bytes])

    @property
    def fallback_body_bytes(self) -> int:
        if self.default_body_bytes is not None:
            return self.default_body_bytes
        return self.body_bytes.get(UNNAMED, max(self.body_bytes.values(), default=0))

    def body_cap(self, headers: Mapping[str, str]) -> int:
        """The body cap of a request, from its headers alone."""
        target = headers.get("x-amz-target")
        if target is None:
            return self._service_cap(scope_service(headers.get("authorization")))
        cap = self._target_caps.get(target)
        if cap is None:
            cap = self._service_cap(TARGET_SERVICES.get(target.partition(".")[0]))
            if len(self._target_caps) < MAX_CACHED_TARGETS:
                self._target_caps[target] = cap
        return cap

    def _service_cap(self, service: str | None) -> int:
        cap = self.body_bytes.get(service) if service is not None else None
        return cap if cap is not None else self.fallback_body_bytes


def scope_service(authorization: str | None) -> str | None:
    """The service of a SigV4 ``Credential=AKID/DATE/REGION/SERVICE/aws4_request`` scope, if there is one."""
    if not authorization:
        return None
    start = authorization.find("Credential=")
    if start < 0:
        return None
    parts = authorization[start + 11:].split(",", 1)[0].split("/")
    return parts[3] if len(parts) >= 5 else None


def parse_body_caps(text: str) -> dict[str, int]:
    """``sqs=4194304,kinesis=15728640`` (a unit suffix K/M is allowed: ``sqs=4M``) -> caps by service."""
    caps: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"expected SERVICE=BYTES, not {item!r}")
        value = value.strip().upper()
        scale = {"K": KIB, "M": MIB}.get(value[-1:], 1)
        number = value[:-1] if scale != 1 else value
        try:
            caps[name.strip().lower()] = int(number) * scale
        except ValueError:
            raise ValueError(f"not a byte count: {item!r}") from None
    return caps


def limit_response(status: int, code: str, message: str, headers: Mapping[str, str], query: str = "",
                   method: str = "") -> HttpResponse:
    """An error the server answers itself (408, 413, 414, 431, 503), worded in the protocol the request used."""
    request_id = random_uuid()
    sender = "Sender" if status < 500 else "Receiver"
    content_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    response_headers = [("x-amzn-RequestId", request_id)]
    if "x-amz-target" not in headers and (content_type == FORM or (method == "GET" and "Action=" in query)):
        body = (f"<ErrorResponse><Error><Type>{sender}</Type><Code>{escape(code)}</Code>"
                f"<Message>{escape(message)}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>")
        return HttpResponse(status, body.encode(), response_headers, XML)
    doc = {"__type": code, "message": message}
    if content_type == CBOR:
        return HttpResponse(status, cbor2.dumps(doc), response_headers, CBOR)
    if content_type == JSON_1_0:  # SQS (awsQueryCompatible): SDKs read the code from this header
        response_headers.append(("x-amzn-query-error", f"{code};{sender}"))
    json_type = content_type if content_type.startswith("application/x-amz-json-") else JSON_1_0
    return HttpResponse(status, orjson.dumps(doc), response_headers, json_type)
