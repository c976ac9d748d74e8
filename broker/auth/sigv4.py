"""AWS Signature Version 4, verified: pure functions over the request's parts, the secret and the time.

Both forms are accepted: the ``Authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...``
header and presigned query strings (``X-Amz-Algorithm``, ``X-Amz-Credential``, ``X-Amz-Date``, ``X-Amz-Expires``,
``X-Amz-SignedHeaders``, ``X-Amz-Signature``). The payload hash is ``x-amz-content-sha256`` when the client sent it
(``UNSIGNED-PAYLOAD`` taken literally, any other value must equal the body's SHA-256) and the body's SHA-256
otherwise. ``x-amz-date`` (or ``Date``) must lie within 15 minutes of the broker's clock; a presigned URL also expires
``X-Amz-Expires`` seconds after its date. Failures are AWS's codes and messages (see ``broker.auth.errors``).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import quote, unquote

from broker.auth import errors

ALGORITHM = "AWS4-HMAC-SHA256"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
MAX_SKEW = timedelta(minutes=15)
MAX_PRESIGN_EXPIRES_S = 604_800  # a week, as AWS allows
_AMZ_DATE = "%Y%m%dT%H%M%SZ"
_REGION = re.compile(r"^[a-z0-9-]{1,64}$")
_SIGNATURE = re.compile(r"^[0-9a-f]{64}$")
_AMZ_DATE_RE = re.compile(r"^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$")  # strptime is 10x slower


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """What the client claims: its key, scope, the headers it signed, the signature and when it signed."""

    access_key_id: str
    scope_date: str  # YYYYMMDD
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str
    presigned: bool
    expires_s: int | None = None  # presigned only


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


@functools.lru_cache(maxsize=1024)
def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    """The derived key of ``AWS4<secret>`` for one day, region and service (four HMACs, so kept per key and day)."""
    return _hmac(_hmac(_hmac(_hmac(("AWS4" + secret).encode("utf-8"), date), region), service), "aws4_request")


def has_signature(headers: Mapping[str, str], query_params: Mapping[str, str]) -> bool:
    return "authorization" in headers or "X-Amz-Signature" in query_params or "X-Amz-Credential" in query_params


def parse_signed_request(headers: Mapping[str, str], query_params: Mapping[str, str]) -> SignedRequest | None:
    """The claim of a request, or None when it carries no SigV4 signature at all; malformed -> IncompleteSignature."""
    auth = headers.get("authorization")
    if auth is not None:
        return _parse_header(auth)
    if "X-Amz-Signature" in query_params or "X-Amz-Credential" in query_params or "X-Amz-Algorithm" in query_params:
        return _parse_presigned(query_params)
    return None


def _parse_header(auth: str) -> SignedRequest:
    algorithm, _, rest = auth.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise errors.incomplete_signature(f"Unsupported AWS 'algorithm': '{algorithm[:40]}'.")
    fields: dict[str, str] = {}
    for raw_part in rest.split(","):
        part = raw_part.strip()
        name, sep, value = part.partition("=")
        if not sep and part:  # as AWS: a part that is not key=value spoils the header (it is not skipped)
            raise errors.incomplete_signature(
                f"'{part[:100]}' not a valid key=value pair (missing equal-sign) in Authorization header: "
                f"'{auth[:200]}'.")
        if sep:
            fields[name] = value
    missing = [name for name in ("Credential", "Signature", "SignedHeaders") if not fields.get(name)]
    if missing:
        needs = " ".join(f"Authorization header requires '{name}' parameter." for name in missing)
        raise errors.incomplete_signature(f"{needs} Authorization={auth[:200]}")
    return _claim(fields["Credential"], fields["SignedHeaders"], fields["Signature"], presigned=False, expires=None)


def _parse_presigned(params: Mapping[str, str]) -> SignedRequest:
    missing = [name for name in ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature", "X-Amz-SignedHeaders",
                                 "X-Amz-Date") if not params.get(name)]
    if missing:
        needs = " ".join(f"AWS query-string parameters must include '{name}'." for name in missing)
        raise errors.incomplete_signature(f"{needs} Re-examine the query-string parameters.")
    if params["X-Amz-Algorithm"] != ALGORITHM:
        raise errors.incomplete_signature(f"Unsupported AWS 'algorithm': '{params['X-Amz-Algorithm'][:40]}'.")
    raw_expires = params.get("X-Amz-Expires", str(MAX_PRESIGN_EXPIRES_S))
    if not raw_expires.isdigit():
        raise errors.incomplete_signature("X-Amz-Expires should be a number")
    expires = int(raw_expires)
    if expires > MAX_PRESIGN_EXPIRES_S:
        raise errors.incomplete_signature(
            f"X-Amz-Expires must be less than a week (in seconds) that is {MAX_PRESIGN_EXPIRES_S}")
    return _claim(params["X-Amz-Credential"], params["X-Amz-SignedHeaders"], params["X-Amz-Signature"],
                  presigned=True, expires=expires)


def credential_scope(credential: str) -> tuple[str, str, str, str]:
    """(key id, date, region, service) of a ``keyid/date/region/service/aws4_request`` credential, or the error
    AWS answers for a malformed one (SigV4 headers, presigned URLs and gRPC tokens alike)."""
    parts = credential.split("/")
    if len(parts) != 5 or not all(parts):
        raise errors.incomplete_signature(
            "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, "
            f"got '{credential[:200]}'")
    key_id, date, region, service, terminator = parts
    if terminator != "aws4_request":
        raise errors.signature_does_not_match(
            f"Credential should be scoped with a valid terminator: 'aws4_request', not '{terminator[:40]}'.")
    return key_id, date, region, service


def _claim(credential: str, signed_headers: str, signature: str, *, presigned: bool,
           expires: int | None) -> SignedRequest:
    key_id, date, region, service = credential_scope(credential)
    if not _REGION.match(region):
        raise errors.signature_does_not_match("Credential should be scoped to a valid region. ")
    headers = tuple(signed_headers.split(";"))
    return SignedRequest(key_id, date, region, service, headers, signature.strip().lower(), presigned, expires)


def request_time(headers: Mapping[str, str], query_params: Mapping[str, str], presigned: bool) -> tuple[datetime, str]:
    """When the client signed (UTC) and the ISO-8601 basic string used in the string to sign."""
    raw = query_params.get("X-Amz-Date") if presigned else headers.get("x-amz-date")
    if raw:
        match = _AMZ_DATE_RE.match(raw)
        try:
            if match is None:
                raise ValueError(raw)
            y, mo, d, h, mi, sec = (int(g) for g in match.groups())
            return datetime(y, mo, d, h, mi, sec, tzinfo=UTC), raw
        except ValueError:
            raise errors.incomplete_signature(
                f"Date must be in ISO-8601 'basic format'. Got '{raw[:40]}'. See "
                "http://en.wikipedia.org/wiki/ISO_8601") from None
    date = headers.get("date")
    if date and not presigned:
        try:
            when = parsedate_to_datetime(date).astimezone(UTC)
        except (TypeError, ValueError):
            raise errors.incomplete_signature(f"Date header is not a valid HTTP date: '{date[:40]}'.") from None
        return when, when.strftime(_AMZ_DATE)
    raise errors.incomplete_signature(
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")


def check_time(signed_at: datetime, signed: SignedRequest, now: datetime) -> None:
    """Within 15 minutes of ``now``; a presigned URL also no later than its expiry."""
    if signed_at < now - MAX_SKEW and not signed.presigned:
        raise errors.request_expired(
            f"Signature expired: {signed_at.strftime(_AMZ_DATE)} is now earlier than "
            f"{(now - MAX_SKEW).strftime(_AMZ_DATE)} "
            f"({now.strftime(_AMZ_DATE)} - 15 min.)")
    if signed_at > now + MAX_SKEW:
        raise errors.request_expired(
            f"Signature not yet current: {signed_at.strftime(_AMZ_DATE)} is still later than "
            f"{(now + MAX_SKEW).strftime(_AMZ_DATE)} "
            f"({now.strftime(_AMZ_DATE)} + 15 min.)")
    if signed.presigned and signed.expires_s is not None and now > signed_at + timedelta(seconds=signed.expires_s):
        raise errors.request_expired("Request has expired")


def canonical_uri(raw_path: str) -> str:
    """The path as the client sent it (still percent-encoded), dot segments removed, encoded once more."""
    path = raw_path or "/"
    if "/." in path:
        normalized = posixpath.normpath(path)
        path = normalized + "/" if path.endswith("/") and normalized != "/" else normalized
    return quote(path, safe="/~")


def canonical_query(raw_query: str) -> str:
    """Every parameter but X-Amz-Signature, decoded then URI-encoded, sorted by key then value."""
    pairs: list[tuple[str, str]] = []
    for item in raw_query.split("&") if raw_query else ():
        key, _, value = item.partition("=")
        key = quote(unquote(key), safe="-_.~")
        if key == "X-Amz-Signature":
            continue
        pairs.append((key, quote(unquote(value), safe="-_.~")))
    return "&".join(f"{k}={v}" for k, v in sorted(pairs))


def canonical_request(method: str, raw_path: str, raw_query: str, headers: Mapping[str, str],
                      signed_headers: tuple[str, ...], payload_hash: str) -> str:
    lines = "".join(f"{name}:{' '.join(headers.get(name, '').split())}\n" for name in signed_headers)
    return "\n".join([method.upper(), canonical_uri(raw_path), canonical_query(raw_query), lines,
                      ";".join(signed_headers), payload_hash])


def payload_hash(headers: Mapping[str, str], body: bytes) -> str:
    actual = hashlib.sha256(body).hexdigest()
    claimed = headers.get("x-amz-content-sha256")
    if claimed is None or claimed == actual:
        return actual
    if claimed == UNSIGNED_PAYLOAD:
        return claimed
    raise errors.signature_does_not_match("The provided 'x-amz-content-sha256' header does not match what was "
                                          "computed.")


def expected_signature(secret: str, signed: SignedRequest, amz_date: str, request_canonical: str) -> str:
    scope = f"{signed.scope_date}/{signed.region}/{signed.service}/aws4_request"
    to_sign = "\n".join([ALGORITHM, amz_date, scope, hashlib.sha256(request_canonical.encode("utf-8")).hexdigest()])
    key = signing_key(secret, signed.scope_date, signed.region, signed.service)
    return hmac.new(key, to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def verify(signed: SignedRequest, secret: str, *, method: str, raw_path: str, raw_query: str,
           headers: Mapping[str, str], query_params: Mapping[str, str], body: bytes, now: datetime) -> None:
    """Raise the AWS error for the first thing wrong with the signature; return when it is good."""
    if "host" not in signed.signed_headers:
        raise errors.signature_does_not_match("'Host' or ':authority' must be a 'SignedHeader' in the AWS "
                                              "Authorization.")
    signed_at, amz_date = request_time(headers, query_params, signed.presigned)
    if signed.scope_date != amz_date[:8]:
        raise errors.signature_does_not_match(
            f"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
            f"'{signed.scope_date[:8]}' != '{amz_date[:8]}', from '{amz_date}'.")
    check_time(signed_at, signed, now)
    if not _SIGNATURE.match(signed.signature):
        raise errors.signature_does_not_match()
    hashed = payload_hash(headers, body)
    request_canonical = canonical_request(method, raw_path, raw_query, headers, signed.signed_headers, hashed)
    if not hmac.compare_digest(expected_signature(secret, signed, amz_date, request_canonical), signed.signature):
        raise errors.signature_does_not_match()


def check_service(signed: SignedRequest, service: str) -> None:
    """The scope must name the service that serves the request."""
    if signed.service != service:
        raise errors.signature_does_not_match(f"Credential should be scoped to correct service: '{service}'. ")

