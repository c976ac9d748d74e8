"""Request rate limits: a token bucket per access key (per client address in dev mode), answered with the
throttling error each AWS protocol uses, so SDKs back off and retry by themselves.

The gateway calls the ``RequestThrottle`` right after authentication: a request is charged to the key that
signed it (never to a key merely named by an unauthenticated request, which would let anyone drain someone
else's bucket). In dev mode any key is accepted unverified, so the bucket is the client's address instead.

Errors, checked against botocore's retry logic (``botocore/data/_retry.json`` for the default *legacy* mode,
``ThrottledRetryableChecker`` for *standard* and *adaptive*):

============  ==============================  ======  ===============================================
service       code                            status  why this one
============  ==============================  ======  ===============================================
sqs           ``RequestThrottled``            403     SQS's modelled shape; legacy mode's SQS rule is
                                                      exactly (RequestThrottled, 403); JSON clients get
                                                      it through ``x-amzn-query-error``
kinesis       ``LimitExceededException``      400     legacy mode's Kinesis rule; the control-plane
                                                      rate error (ProvisionedThroughputExceeded is the
                                                      per-shard data limit, ``broker.kinesis.throttle``)
sns, sts      ``Throttling``                  400     AWS's common Query throttling error; the model's
                                                      SNS ``Throttled`` (429) is not retried by
                                                      standard mode, ``Throttling`` is by every mode
other         ``ThrottlingException``         400     the generic JSON-protocol name
============  ==============================  ======  ===============================================
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from broker.metrics import count_rejected
from broker.model.errors import BrokerError

if TYPE_CHECKING:
    from broker.auth.credentials import CredentialStore

RATE_EXCEEDED = "Rate exceeded"
# service -> (code, Query code, HTTP status)
_THROTTLING: dict[str, tuple[str, str | None, int]] = {
    "sqs": ("RequestThrottled", "RequestThrottled", 403),
    "kinesis": ("LimitExceededException", None, 400),
    "sns": ("Throttling", None, 400),
    "sts": ("Throttling", None, 400),
}
_GENERIC = ("ThrottlingException", None, 400)
MAX_BUCKETS = 100_000  # beyond this, buckets that have refilled completely are forgotten (they hold no state)


@dataclass(frozen=True, slots=True)
class RateLimit:
    """``rate`` requests per second on average, ``burst`` at once; ``UNLIMITED`` exempts a key."""

    rate: float
    burst: float

    def __post_init__(self) -> None:
        if not self.rate > 0:
            raise ValueError(f"a request rate must be positive, not {self.rate}")
        if not self.burst >= 1:
            raise ValueError(f"a burst must be at least 1 request, not {self.burst}")

    @classmethod
    def per_second(cls, rate: float, burst: float | None = None) -> RateLimit:
        """``burst`` defaults to one second's worth (at least 1)."""
        return cls(rate, burst if burst is not None else max(1.0, rate))

    @property
    def unlimited(self) -> bool:
        return math.isinf(self.rate)


UNLIMITED = RateLimit(math.inf, math.inf)


def parse_rate_limit(value: Any, where: str) -> RateLimit:
    """A credentials-file ``rate_limit``: ``"unlimited"`` or ``{requests_per_second = N, burst = M}``."""
    if value == "unlimited":
        return UNLIMITED
    if not isinstance(value, dict) or set(value) - {"requests_per_second", "burst"}:
        raise ValueError(f"{where}: rate_limit must be \"unlimited\" or {{requests_per_second = N, burst = M}}")
    rate: Any = value.get("requests_per_second")
    burst: Any = value.get("burst")
    if not _number(rate) or (burst is not None and not _number(burst)):
        raise ValueError(f"{where}: rate_limit requests_per_second and burst must be numbers")
    try:
        return RateLimit.per_second(float(rate), None if burst is None else float(burst))
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class _Bucket:
    __slots__ = ("limit", "stamp", "tokens")

    def __init__(self, limit: RateLimit, now: float) -> None:
        self.limit = limit
        self.tokens = limit.burst
        self.stamp = now

    def refill(self, now: float) -> float:
        return min(self.limit.burst, self.tokens + (now - self.stamp) * self.limit.rate)


class TokenBuckets:
    """One token bucket per key: each starts full (``burst``) and refills at ``rate`` per second."""

    __slots__ = ("_buckets", "_clock", "_max")

    def __init__(self, clock: Callable[[], float] = time.monotonic, max_buckets: int = MAX_BUCKETS) -> None:
        self._clock = clock
        self._max = max_buckets
        self._buckets: dict[str, _Bucket] = {}

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: str, limit: RateLimit) -> float:
        """Take one token; returns 0.0 when granted, else the seconds until one is available."""
        if limit.unlimited:
            return 0.0
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None or bucket.limit != limit:
            if bucket is None and len(self._buckets) >= self._max:
                self._forget_full(now)
            bucket = self._buckets[key] = _Bucket(limit, now)
        tokens = bucket.refill(now)
        bucket.stamp = now
        if tokens >= 1.0:
            bucket.tokens = tokens - 1.0
            return 0.0
        bucket.tokens = tokens
        return (1.0 - tokens) / limit.rate

    def _forget_full(self, now: float) -> None:
        """A full bucket is the same as no bucket: dropping those bounds memory without forgiving anyone."""
        for key in [k for k, b in self._buckets.items() if b.refill(now) >= b.limit.burst]:
            del self._buckets[key]


def throttling_error(service: str) -> BrokerError:
    """The throttling error ``service``'s clients expect (see the module's table)."""
    code, query_code, status = _THROTTLING.get(service, _GENERIC)
    error = BrokerError(RATE_EXCEEDED, code=code, status=status)
    error.query_code = query_code
    return error


class RequestThrottle:
    """The gateway's rate-limit hook: ``throttle(access_key_id, client_host, service)`` raises the service's
    throttling error when the caller's bucket is empty.

    ``by_access_key``: buckets per verified access key, with ``per_key`` overriding ``default`` (a key mapped to
    ``UNLIMITED`` is exempt); else buckets per client address with ``default`` (dev mode, where keys are not
    verified). ``default=None``: only keys with their own limit are limited.
    """

    def __init__(self, default: RateLimit | None, per_key: Mapping[str, RateLimit] | None = None, *,
                 by_access_key: bool = True, clock: Callable[[], float] = time.monotonic) -> None:
        self._default = default
        self._per_key = dict(per_key or {})
        self._by_key = by_access_key
        self._buckets = TokenBuckets(clock)

    @classmethod
    def for_credentials(cls, store: CredentialStore, default: RateLimit | None) -> RequestThrottle | None:
        """Per access key, with the credentials file's ``rate_limit`` settings; None when nothing is limited."""
        per_key = {key_id: key.rate_limit for key_id, key in store.keys.items() if key.rate_limit is not None}
        if default is None and all(limit.unlimited for limit in per_key.values()):
            return None
        return cls(default, per_key)

    @classmethod
    def for_dev_mode(cls, default: RateLimit | None) -> RequestThrottle | None:
        """Per client address (keys are not verified in dev mode); None, the default, limits nothing."""
        return None if default is None else cls(default, by_access_key=False)

    def limit_of(self, access_key_id: str) -> RateLimit | None:
        return self._per_key.get(access_key_id, self._default) if self._by_key else self._default

    def __call__(self, access_key_id: str, client_host: str, service: str) -> None:
        limit = self.limit_of(access_key_id)
        if limit is None:
            return
        key = access_key_id if self._by_key else client_host
        if self._buckets.take(key, limit) > 0.0:
            count_rejected("rate_limit")
            raise throttling_error(service)
