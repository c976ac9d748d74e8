"""Request rate limits: token buckets on a fake clock, the credentials file's rate_limit settings, and the gateway's
throttling answers read back by botocore's own parsers and retry rules (legacy and standard mode)."""

from __future__ import annotations

import copy
from typing import Any

import botocore.session
import cbor2
import pytest
from botocore import parsers, retryhandler, translate
from botocore.awsrequest import AWSResponse
from botocore.retries.standard import RetryContext, StandardRetryConditions

from broker.auth.credentials import CredentialsError, parse_credentials
from broker.auth.ratelimit import (
    UNLIMITED,
    RateLimit,
    RequestThrottle,
    TokenBuckets,
    parse_rate_limit,
    throttling_error,
)
from broker.aws.gateway import AwsGateway
from broker.http.types import HttpRequest, HttpResponse
from broker.metrics import REGISTRY
from broker.model.errors import BrokerError
from broker.service import RequestContext


class Clock:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


# -- token buckets ---------------------------------------------------------------------------------------------------


def test_a_bucket_allows_its_burst_then_refills_at_its_rate() -> None:
    clock = Clock()
    buckets = TokenBuckets(clock)
    limit = RateLimit(rate=2.0, burst=3.0)
    assert [buckets.take("k", limit) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("k", limit) == pytest.approx(0.5)  # one token comes back in 1/rate seconds
    clock.now += 0.5
    assert buckets.take("k", limit) == 0.0
    assert buckets.take("k", limit) > 0.0
    clock.now += 100  # a long pause refills to the burst, never beyond
    assert [buckets.take("k", limit) for _ in range(4)].count(0.0) == 3


def test_buckets_are_independent_and_unlimited_is_free() -> None:
    buckets = TokenBuckets(Clock())
    one = RateLimit(rate=1.0, burst=1.0)
    assert buckets.take("a", one) == 0.0
    assert buckets.take("a", one) > 0.0
    assert buckets.take("b", one) == 0.0
    assert all(buckets.take("c", UNLIMITED) == 0.0 for _ in range(1000))
    assert len(buckets) == 2  # unlimited keys cost no memory


def test_memory_is_bounded_by_forgetting_full_buckets_only() -> None:
    clock = Clock()
    buckets = TokenBuckets(clock, max_buckets=3)
    one = RateLimit(rate=1.0, burst=1.0)
    for key in ("a", "b", "c"):
        buckets.take(key, one)
    clock.now += 10  # a, b, c are full again
    buckets.take("a", one)  # a is empty again
    buckets.take("d", one)  # over the bound: b and c (full) are forgotten, a (empty) is kept
    assert len(buckets) == 2
    assert buckets.take("a", one) > 0.0


def test_a_changed_limit_starts_a_fresh_bucket() -> None:
    buckets = TokenBuckets(Clock())
    buckets.take("k", RateLimit(1.0, 1.0))
    assert buckets.take("k", RateLimit(1.0, 1.0)) > 0.0
    assert buckets.take("k", RateLimit(10.0, 5.0)) == 0.0


def test_rate_limit_values() -> None:
    assert RateLimit.per_second(0.5) == RateLimit(0.5, 1.0)
    assert RateLimit.per_second(20) == RateLimit(20, 20)
    for rate, burst in ((0, 1), (-1, 1), (1, 0.5)):
        with pytest.raises(ValueError):
            RateLimit(rate, burst)
    assert parse_rate_limit("unlimited", "x") is UNLIMITED
    assert parse_rate_limit({"requests_per_second": 5, "burst": 10}, "x") == RateLimit(5, 10)
    for bad in ("fast", {"requests_per_second": "5"}, {"requests_per_second": 5, "extra": 1},
                {"requests_per_second": True}, {"requests_per_second": 0}):
        with pytest.raises(ValueError, match=r"^x: "):
            parse_rate_limit(bad, "x")


# -- the credentials file ----------------------------------------------------------------------------------------


def test_rate_limits_in_the_credentials_file_are_inherited_and_overridden() -> None:
    store = parse_credentials({"accounts": [{
        "id": "111111111111", "rate_limit": {"requests_per_second": 100},
        "root_keys": [{"id": "AKIAROOT000000000001", "secret": "s"}],
        "users": [
            {"name": "batch", "rate_limit": {"requests_per_second": 5, "burst": 10}, "keys": [
                {"id": "AKIABATCH0000000001", "secret": "s"},
                {"id": "AKIABATCH0000000002", "secret": "s", "rate_limit": "unlimited"}]},
            {"name": "plain", "keys": [{"id": "AKIAPLAIN0000000001", "secret": "s"}]}]}, {
        "id": "222222222222", "root_keys": [{"id": "AKIAROOTB00000000001", "secret": "s"}]}]})
    limits = {key_id: key.rate_limit for key_id, key in store.keys.items()}
    assert limits == {"AKIAROOT000000000001": RateLimit(100, 100), "AKIABATCH0000000001": RateLimit(5, 10),
                      "AKIABATCH0000000002": UNLIMITED, "AKIAPLAIN0000000001": RateLimit(100, 100),
                      "AKIAROOTB00000000001": None}
    with pytest.raises(CredentialsError, match=r"accounts\[0\].users\[0\].keys\[0\]"):
        parse_credentials({"accounts": [{"id": "111111111111", "users": [{"name": "u", "keys": [
            {"id": "AKIAUSER00000000001", "secret": "s", "rate_limit": {"requests_per_second": -1}}]}]}]})


def test_throttle_for_credentials() -> None:
    store = parse_credentials({"accounts": [{"id": "111111111111", "users": [
        {"name": "slow", "rate_limit": {"requests_per_second": 1}, "keys": [{"id": "AKIASLOW00000000001",
                                                                               "secret": "s"}]},
        {"name": "free", "keys": [{"id": "AKIAFREE00000000001", "secret": "s"}]}]}]})
    throttle = RequestThrottle.for_credentials(store, None)
    assert throttle is not None
    assert throttle.limit_of("AKIASLOW00000000001") == RateLimit(1, 1)
    assert throttle.limit_of("AKIAFREE00000000001") is None
    throttle("AKIASLOW00000000001", "10.0.0.1", "sqs")
    with pytest.raises(BrokerError):
        throttle("AKIASLOW00000000001", "10.0.0.2", "sqs")  # the key's bucket, whatever address it comes from
    for _ in range(100):
        throttle("AKIAFREE00000000001", "10.0.0.1", "sqs")
    unlimited = parse_credentials({"accounts": [{"id": "111111111111", "rate_limit": "unlimited",
                                                 "root_keys": [{"id": "AKIAROOT000000000001", "secret": "s"}]}]})
    assert RequestThrottle.for_credentials(unlimited, None) is None
    assert RequestThrottle.for_credentials(unlimited, RateLimit(1, 1)) is not None


def test_dev_mode_limits_by_address_and_is_off_by_default() -> None:
    assert RequestThrottle.for_dev_mode(None) is None
    throttle = RequestThrottle.for_dev_mode(RateLimit(1, 2))
    assert throttle is not None
    throttle("AKIA1", "10.0.0.1", "sqs")
    throttle("AKIA2", "10.0.0.1", "sqs")
    with pytest.raises(BrokerError):
        throttle("AKIA3", "10.0.0.1", "sqs")  # any claimed key: the address's bucket
    throttle("AKIA3", "10.0.0.2", "sqs")


# -- what clients see ------------------------------------------------------------------------------------------------


class NullService:
    name = "null"

    async def handle(self, operation: str, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        return {}


def signed_headers(service: str, key: str) -> dict[str, str]:
    return {"authorization": f"AWS4-HMAC-SHA256 Credential={key}/20261128/us-east-1/{service}/aws4_request, "
                             "SignedHeaders=host, Signature=0"}


# (service, botocore protocol, headers, body)
REQUESTS: dict[str, tuple[str, str, dict[str, str], bytes]] = {
    "sqs-json": ("sqs", "json", {"x-amz-target": "AmazonSQS.ListQueues",
                                 "content-type": "application/x-amz-json-1.0"}, b"{}"),
    "sqs-query": ("sqs", "query", {"content-type": "application/x-www-form-urlencoded"},
                  b"Action=ListQueues&Version=2012-11-05"),
    "sns-query": ("sns", "query", {"content-type": "application/x-www-form-urlencoded"},
                  b"Action=ListTopics&Version=2010-03-31"),
    "sts-query": ("sts", "query", {"content-type": "application/x-www-form-urlencoded"},
                  b"Action=GetCallerIdentity&Version=2011-06-15"),
    "kinesis-json": ("kinesis", "json", {"x-amz-target": "Kinesis_20131202.ListStreams",
                                         "content-type": "application/x-amz-json-1.1"}, b"{}"),
    "kinesis-cbor": ("kinesis", "cbor", {"x-amz-target": "Kinesis_20131202.ListStreams",
                                         "content-type": "application/x-amz-cbor-1.1"}, cbor2.dumps({})),
}
EXPECTED = {"sqs": ("RequestThrottled", 403), "sns": ("Throttling", 400), "sts": ("Throttling", 400),
            "kinesis": ("LimitExceededException", 400)}
RETRY_CONFIG = botocore.session.get_session().get_component("data_loader").load_data("_retry")


async def throttled_response(name: str) -> HttpResponse:
    service, _, headers, body = REQUESTS[name]
    gateway = AwsGateway({s: NullService() for s in ("sqs", "sns", "sts", "kinesis")}, "000000000000", "us-east-1",
                         throttle=RequestThrottle(RateLimit(1, 1)))
    request = HttpRequest("POST", "/", "", {**headers, **signed_headers(service, "AKIATHROTTLED000001")}, body,
                          "127.0.0.1", "rid")
    assert (await gateway(request)).status == 200
    other = HttpRequest("POST", "/", "", {**headers, **signed_headers(service, "AKIAOTHERKEY0000001")}, body,
                        "127.0.0.1", "rid")
    assert (await gateway(other)).status == 200  # another key has its own bucket
    return await gateway(request)


def botocore_view(name: str, response: HttpResponse) -> tuple[AWSResponse, dict[str, Any]]:
    """The response as botocore parses it (CBOR: botocore has no CBOR parser, so the body is checked here)."""
    _, protocol, _, _ = REQUESTS[name]
    headers = {**dict(response.headers), "content-type": response.content_type}
    http = AWSResponse("http://broker/", response.status, headers, None)
    if protocol == "cbor":
        doc = cbor2.loads(response.body)
        return http, {"Error": {"Code": doc["__type"], "Message": doc["message"]},
                      "ResponseMetadata": {"HTTPStatusCode": response.status}}
    raw = {"status_code": response.status, "headers": headers, "body": response.body}
    return http, parsers.create_parser(protocol).parse(raw, None)


@pytest.mark.parametrize("name", list(REQUESTS))
async def test_throttling_errors_are_the_codes_botocore_retries(name: str) -> None:
    service = REQUESTS[name][0]
    before = REGISTRY.get_sample_value("raftmq_rejected_requests_total", {"reason": "rate_limit"}) or 0.0
    response = await throttled_response(name)
    assert REGISTRY.get_sample_value("raftmq_rejected_requests_total", {"reason": "rate_limit"}) == before + 1
    http, parsed = botocore_view(name, response)
    assert (parsed["Error"]["Code"], response.status) == EXPECTED[service]
    assert parsed["Error"]["Message"] == "Rate exceeded"
    # standard (and adaptive) mode
    context = RetryContext(attempt_number=1, parsed_response=parsed, http_response=http)
    assert StandardRetryConditions(max_attempts=3).is_retryable(context)
    # legacy mode, botocore's default: the client's handler built from _retry.json for this endpoint prefix
    config = translate.build_retry_config(service, copy.deepcopy(RETRY_CONFIG["retry"]),
                                          copy.deepcopy(RETRY_CONFIG["definitions"]))
    handler = retryhandler.create_retry_handler(config)
    delay = handler(attempts=1, response=(http, parsed), caught_exception=None, request_dict={"context": {}})
    assert delay is not None and delay >= 0


def test_unknown_service_gets_the_generic_throttling_exception() -> None:
    error = throttling_error("dynamodb")
    assert (error.code, error.status, error.legacy_code) == ("ThrottlingException", 400, "ThrottlingException")


def test_node_options_become_a_throttle(tmp_path: Any) -> None:
    import json

    from broker.config import NodeConfig
    from broker.limits_wiring import request_throttle

    assert request_throttle(NodeConfig()) is None  # dev mode: off by default
    dev = request_throttle(NodeConfig(max_request_rate=5))
    assert dev is not None and dev.limit_of("anything") == RateLimit(5, 5)
    path = tmp_path / "credentials.json"
    path.write_text(json.dumps({"accounts": [{"id": "111111111111", "root_keys": [
        {"id": "AKIAROOT000000000001", "secret": "s", "rate_limit": {"requests_per_second": 2}}]}]}))
    verified = request_throttle(NodeConfig(credentials_file=str(path), max_request_rate=50, request_burst=80))
    assert verified is not None
    assert verified.limit_of("AKIAROOT000000000001") == RateLimit(2, 2)
    assert verified.limit_of("AKIAOTHER0000000001") == RateLimit(50, 80)
