"""AWS Signature Version 4 for JSON POSTs to ``/``, computed the way botocore does, at a few microseconds each.

The server does not verify signatures yet, but it will: signing for real keeps the benchmark valid then, and lets
a test compare us byte for byte with botocore. The derived signing key is cached per day, so each request costs one
SHA-256 of the body, one of the canonical request and one HMAC.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Sequence

_ALGORITHM = "AWS4-HMAC-SHA256"


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


class SigV4Signer:
    """Signs requests for one service/region/credential; not thread-safe (one per connection or process)."""

    def __init__(self, access_key: str, secret_key: str, region: str, service: str) -> None:
        self._access_key = access_key
        self._secret = secret_key
        self._region = region
        self._service = service
        self._key_day = ""
        self._key = b""
        self._prepared: dict[tuple[str, str, str, tuple[tuple[str, str], ...]], tuple[str, str, str]] = {}

    def _signing_key(self, day: str) -> bytes:
        if day != self._key_day:
            k = _hmac(("AWS4" + self._secret).encode(), day)
            k = _hmac(k, self._region)
            k = _hmac(k, self._service)
            self._key = _hmac(k, "aws4_request")
            self._key_day = day
        return self._key

    def authorization(self, amz_date: str, headers: Sequence[tuple[str, str]], body: bytes,
                      method: str = "POST", path: str = "/", query: str = "") -> str:
        """The ``Authorization`` header value for a request sent with ``X-Amz-Date: amz_date``.

        ``headers`` are the other headers to sign as (name, value) pairs: lower-case, unique, including ``host``;
        ``x-amz-date`` is added here. ``amz_date`` is formatted ``%Y%m%dT%H%M%SZ``. The canonical request around
        the date is built once per distinct header set, so a hot loop pays for two SHA-256 and one HMAC only.
        """
        key = (method, path, query, tuple(headers))
        parts = self._prepared.get(key)
        if parts is None:
            parts = _prepare(method, path, query, headers)
            if len(self._prepared) < 1024:
                self._prepared[key] = parts
        before_date, after_date, signed = parts
        canonical = f"{before_date}{amz_date}{after_date}{hashlib.sha256(body).hexdigest()}"
        day = amz_date[:8]
        scope = f"{day}/{self._region}/{self._service}/aws4_request"
        to_sign = f"{_ALGORITHM}\n{amz_date}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
        signature = hmac.new(self._signing_key(day), to_sign.encode(), hashlib.sha256).hexdigest()
        return f"{_ALGORITHM} Credential={self._access_key}/{scope}, SignedHeaders={signed}, Signature={signature}"


_DATE_MARK = "\x00amz-date\x00"


def _prepare(method: str, path: str, query: str, headers: Sequence[tuple[str, str]]) -> tuple[str, str, str]:
    """The canonical request split around the x-amz-date value (payload hash appended last), and SignedHeaders."""
    ordered = sorted([(name, " ".join(value.split())) for name, value in headers] + [("x-amz-date", _DATE_MARK)])
    signed = ";".join(name for name, _ in ordered)
    text = "\n".join((method, path, query, "".join(f"{n}:{v}\n" for n, v in ordered), signed, ""))
    before, after = text.split(_DATE_MARK)
    return before, after, signed


class AmzClock:
    """``X-Amz-Date`` strings, formatted at most once per second."""

    def __init__(self) -> None:
        self._second = -1
        self._text = ""

    def now(self) -> str:
        second = int(time.time())
        if second != self._second:
            self._second = second
            self._text = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(second))
        return self._text
