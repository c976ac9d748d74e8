"""A node's abuse limits from its configuration: the HTTP server's ``HttpLimits`` and the gateway's
``RequestThrottle`` (see docs/security.md, "Abuse limits").

Kept out of ``broker.app`` so the composition root only asks for them, and out of ``broker.http`` / ``broker.auth``
so those do not depend on ``NodeConfig``.
"""

from __future__ import annotations

from broker.auth.credentials import load_credentials
from broker.auth.ratelimit import RateLimit, RequestThrottle
from broker.config import NodeConfig
from broker.http.limits import DEFAULT_BODY_BYTES, HttpLimits, parse_body_caps


def _seconds(value: float) -> float | None:
    """0 (or less) turns a timeout off."""
    return value if value > 0 else None


def http_limits(config: NodeConfig) -> HttpLimits:
    """The defaults of ``HttpLimits`` with the node's options applied; ValueError on a malformed option."""
    caps = dict(DEFAULT_BODY_BYTES)
    if config.max_body_bytes:
        caps.update(parse_body_caps(config.max_body_bytes))
    return HttpLimits(body_bytes=caps,
                      max_connections=config.max_connections if config.max_connections > 0 else None,
                      header_timeout=_seconds(config.header_timeout_s),
                      body_timeout=_seconds(config.body_timeout_s),
                      idle_timeout=_seconds(config.idle_timeout_s))


def default_rate_limit(config: NodeConfig) -> RateLimit | None:
    if config.max_request_rate is None or config.max_request_rate <= 0:
        return None
    return RateLimit.per_second(config.max_request_rate, config.request_burst)


def request_throttle(config: NodeConfig) -> RequestThrottle | None:
    """Per verified access key with a credentials file (its ``rate_limit`` entries over ``--max-request-rate``);
    per client address in dev mode, and then only with ``--max-request-rate``. None: nothing is limited.

    The credentials file is read a second time here (the authenticator read it a moment before): cheap, once,
    and it keeps the authenticator's store private.
    """
    default = default_rate_limit(config)
    if config.credentials_file:
        return RequestThrottle.for_credentials(load_credentials(config.credentials_file), default)
    return RequestThrottle.for_dev_mode(default)
