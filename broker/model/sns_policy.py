"""HTTP(S) delivery policies: AWS's defaults, validation, and the delay before each retry (pure).

AWS retries in four phases: ``numNoDelayRetries`` at once, ``numMinDelayRetries`` after ``minDelayTarget``, a
backoff phase from min to max (``backoffFunction``: linear, arithmetic, geometric, exponential), then
``numMaxDelayRetries`` after ``maxDelayTarget``. ``numRetries`` counts them all.
"""

from __future__ import annotations

import json
from typing import Any

from broker.model import errors

DEFAULT_RETRY: dict[str, Any] = {
    "minDelayTarget": 20, "maxDelayTarget": 20, "numRetries": 3, "numMaxDelayRetries": 0,
    "numNoDelayRetries": 0, "numMinDelayRetries": 0, "backoffFunction": "linear",
}
BACKOFF_FUNCTIONS = ("linear", "arithmetic", "geometric", "exponential")
MAX_RETRIES = 100
CONTENT_TYPES = ("text/plain", "application/json", "application/xml")


def effective_topic_policy(topic_policy: str | None) -> str:
    """EffectiveDeliveryPolicy as GetTopicAttributes reports it."""
    retry = dict(DEFAULT_RETRY)
    if topic_policy:
        retry.update(json.loads(topic_policy).get("http", {}).get("defaultHealthyRetryPolicy") or {})
    return json.dumps({"http": {"defaultHealthyRetryPolicy": retry, "sicklyRetryPolicy": None,
                                "throttlePolicy": None, "defaultRequestPolicy": {
                                    "headerContentType": "text/plain; charset=UTF-8"},
                                "disableSubscriptionOverrides": False}}, separators=(",", ":"))


def check_delivery_policy(text: str, *, topic: bool) -> None:
    """InvalidParameter with AWS's wording for a malformed DeliveryPolicy."""
    def invalid(reason: str) -> errors.BrokerError:
        return errors.InvalidParameterException(f"Invalid parameter: DeliveryPolicy: {reason}")
    try:
        policy = json.loads(text)
    except ValueError:
        raise invalid("failed to parse JSON.") from None
    if not isinstance(policy, dict):
        raise invalid("must be a JSON object")
    request = (policy.get("http", {}) or {}).get("defaultRequestPolicy") if topic else policy.get("requestPolicy")
    if request is not None:
        header = request.get("headerContentType") if isinstance(request, dict) else None
        if header is not None and header.split(";")[0].strip() not in CONTENT_TYPES:
            raise invalid(f"headerContentType must be one of {', '.join(CONTENT_TYPES)}")
    retry = (policy.get("http", {}) or {}).get("defaultHealthyRetryPolicy") if topic else policy.get(
        "healthyRetryPolicy")
    if retry is None:
        return
    if not isinstance(retry, dict):
        raise invalid("healthyRetryPolicy must be an object")
    merged = {**DEFAULT_RETRY, **retry}
    for key in ("minDelayTarget", "maxDelayTarget", "numRetries", "numMaxDelayRetries", "numNoDelayRetries",
                "numMinDelayRetries"):
        value = merged[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise invalid(f"{key} must be a non-negative integer")
    if merged["minDelayTarget"] < 1:
        raise invalid("minDelayTarget must be at least 1")
    if merged["minDelayTarget"] > merged["maxDelayTarget"]:
        raise invalid("minDelayTarget must be less than or equal to maxDelayTarget")
    if merged["maxDelayTarget"] > 3600:
        raise invalid("maxDelayTarget must be less than or equal to 3600")
    if merged["numRetries"] > MAX_RETRIES:
        raise invalid(f"numRetries must be less than or equal to {MAX_RETRIES}")
    phases = merged["numNoDelayRetries"] + merged["numMinDelayRetries"] + merged["numMaxDelayRetries"]
    if phases > merged["numRetries"]:
        raise invalid("numRetries must be greater than or equal to the sum of the other retry counts")
    if merged["backoffFunction"] not in BACKOFF_FUNCTIONS:
        raise invalid(f"backoffFunction must be one of {', '.join(BACKOFF_FUNCTIONS)}")


def retry_policy(subscription_policy: str | None, topic_policy: str | None) -> dict[str, Any]:
    """The retry settings that apply to one HTTP(S) subscription."""
    retry = dict(DEFAULT_RETRY)
    if topic_policy:
        retry.update(json.loads(topic_policy).get("http", {}).get("defaultHealthyRetryPolicy") or {})
    if subscription_policy:
        retry.update(json.loads(subscription_policy).get("healthyRetryPolicy") or {})
    return retry


def retry_delay_ms(retry: dict[str, Any], retry_number: int) -> int | None:
    """Milliseconds to wait before retry ``retry_number`` (1-based); None when the retries are used up."""
    total = int(retry["numRetries"])
    if retry_number > total:
        return None
    low, high = int(retry["minDelayTarget"]), int(retry["maxDelayTarget"])
    no_delay, min_delay, max_delay = (int(retry[k]) for k in (
        "numNoDelayRetries", "numMinDelayRetries", "numMaxDelayRetries"))
    if retry_number <= no_delay:
        return 0
    if retry_number <= no_delay + min_delay:
        return low * 1000
    backoff = total - no_delay - min_delay - max_delay
    step = retry_number - no_delay - min_delay
    if step > backoff or backoff <= 0:
        return high * 1000
    fraction = step / backoff
    if retry["backoffFunction"] in ("exponential", "geometric"):
        seconds = low * (high / low) ** fraction
    else:
        seconds = low + (high - low) * fraction
    result: int = round(seconds * 1000)
    return result


DEFAULT_CONTENT_TYPE = "text/plain; charset=UTF-8"


def content_type(subscription_policy: str | None, topic_policy: str | None) -> str:
    """The Content-Type of HTTP(S) deliveries: the subscription's ``requestPolicy.headerContentType``, else the
    topic's ``http.defaultRequestPolicy.headerContentType``, else AWS's default."""
    if subscription_policy:
        value = (json.loads(subscription_policy).get("requestPolicy") or {}).get("headerContentType")
        if isinstance(value, str) and value:
            return value
    if topic_policy:
        value = ((json.loads(topic_policy).get("http") or {}).get("defaultRequestPolicy") or {}).get(
            "headerContentType")
        if isinstance(value, str) and value:
            return value
    return DEFAULT_CONTENT_TYPE
