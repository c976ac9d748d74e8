"""AWS CBOR 1.1 through the gateway with the real Kinesis service: requests built as the AWS SDK for Java sends
them (byte-string blobs, tag 1 epoch-millisecond timestamps), responses and errors read back as it reads them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import cbor2
import pytest

from broker.aws.cbor_protocol import CborCodec, encode_timestamp
from broker.aws.service_model import load_service_model
from broker.http.types import HttpRequest, HttpResponse
from tests.unit.test_kinesis_harness import ACCOUNT, Env

CBOR = "application/x-amz-cbor-1.1"


@pytest.fixture
def env() -> Iterator[Env]:
    e = Env()
    yield e
    e.close()


def _call(env: Env, op: str, body: Any, *, raw: bytes | None = None) -> tuple[HttpResponse, Any]:
    data = raw if raw is not None else cbor2.dumps(body)
    headers = {"x-amz-target": f"Kinesis_20131202.{op}", "content-type": CBOR, "host": "localhost",
               "authorization": "AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/kinesis/aws4_request, x"}
    response = env.loop.run_until_complete(env.gateway(HttpRequest("POST", "/", "", headers, data, "127.0.0.1")))
    assert response.content_type == CBOR
    return response, cbor2.loads(response.body, semantic_decoders={1: lambda v, imm: cbor2.CBORTag(1, v)})


def test_java_sdk_style_put_and_get(env: Env) -> None:
    response, _ = _call(env, "CreateStream", {"StreamName": "s", "ShardCount": 1})
    assert response.status == 200
    before = env.rep.now_ms()
    response, put = _call(env, "PutRecord", {"StreamName": "s", "Data": b"\x00\xffbin", "PartitionKey": "k"})
    assert response.status == 200 and put["ShardId"] == "shardId-000000000000"
    assert len(put["SequenceNumber"]) == 56
    _, it = _call(env, "GetShardIterator", {"StreamName": "s", "ShardId": "shardId-000000000000",
                                            "ShardIteratorType": "AT_TIMESTAMP",
                                            "Timestamp": cbor2.CBORTag(1, before)})
    _, page = _call(env, "GetRecords", {"ShardIterator": it["ShardIterator"]})
    (record,) = page["Records"]
    assert record["Data"] == b"\x00\xffbin"  # a byte string, not base64 text
    stamp = record["ApproximateArrivalTimestamp"]
    assert isinstance(stamp, cbor2.CBORTag) and stamp.tag == 1
    assert isinstance(stamp.value, int) and stamp.value == env.rep.now_ms()  # epoch milliseconds
    assert page["MillisBehindLatest"] == 0 and "NextShardIterator" in page


def test_put_records_and_describe_timestamps(env: Env) -> None:
    _call(env, "CreateStream", {"StreamName": "s", "ShardCount": 2})
    _, out = _call(env, "PutRecords", {"StreamName": "s", "Records": [
        {"Data": bytes([i]), "PartitionKey": f"k{i}"} for i in range(10)]})
    assert out["FailedRecordCount"] == 0 and len(out["Records"]) == 10
    _, desc = _call(env, "DescribeStreamSummary", {"StreamName": "s"})
    created = desc["StreamDescriptionSummary"]["StreamCreationTimestamp"]
    assert created.tag == 1 and abs(created.value - env.rep.now_ms()) < 1000


def test_errors_are_cbor_with_type(env: Env) -> None:
    response, body = _call(env, "DescribeStream", {"StreamName": "missing"})
    assert response.status == 400
    assert body == {"__type": "ResourceNotFoundException",
                    "message": f"Stream missing under account {ACCOUNT} not found."}
    assert ("x-amzn-ErrorType", "ResourceNotFoundException") in response.headers


def test_validation_worded_like_json(env: Env) -> None:
    response, body = _call(env, "CreateStream", {"ShardCount": 1})
    assert response.status == 400
    assert body == {"__type": "ValidationException", "message": "1 validation error detected: Value null at "
                    "'streamName' failed to satisfy constraint: Member must not be null"}


@pytest.mark.parametrize("payload", [b"\xff\xff", b"\x9f", cbor2.dumps([1, 2])])
def test_malformed_cbor_is_serialization_exception(env: Env, payload: bytes) -> None:
    response, body = _call(env, "ListStreams", None, raw=payload)
    assert response.status == 400 and body["__type"] == "SerializationException"


def test_blob_as_text_is_rejected(env: Env) -> None:
    _call(env, "CreateStream", {"StreamName": "s", "ShardCount": 1})
    response, body = _call(env, "PutRecord", {"StreamName": "s", "Data": "aGVsbG8=", "PartitionKey": "k"})
    assert response.status == 400 and body["__type"] == "SerializationException"


def test_timestamp_decoding_units() -> None:
    codec = CborCodec(load_service_model("kinesis", "cbor"))
    op = codec.model.operation("GetShardIterator")
    assert op is not None
    base = {"StreamName": "s", "ShardId": "shardId-000000000000", "ShardIteratorType": "AT_TIMESTAMP"}
    expected = datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    for value in (cbor2.CBORTag(1, 1704164645678), cbor2.CBORTag(1, 1704164645678.0), 1704164645678):
        assert codec.decode_body(op, cbor2.dumps({**base, "Timestamp": value}))["Timestamp"] == expected
    assert encode_timestamp(expected) == cbor2.CBORTag(1, 1704164645678)
    assert encode_timestamp(1704164645.678) == cbor2.CBORTag(1, 1704164645678)
