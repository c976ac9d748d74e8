"""Small helpers shared by the integration tests: AWS's MD5 algorithms, polling receives, raw HTTP.

botocore 1.43 does not itself verify MD5OfMessageBody / MD5OfMessageAttributes (the Java, .NET and Go SDKs do), so
the tests recompute both here exactly as AWS documents them and compare with what the server returned.
"""

from __future__ import annotations

import hashlib
import struct
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError


def md5_of_body(body: str) -> str:
    return hashlib.md5(body.encode("utf-8")).hexdigest()


def md5_of_attributes(attributes: Mapping[str, Mapping[str, Any]]) -> str:
    """AWS's MD5OfMessageAttributes: per attribute sorted by name, length-prefixed name, type, a transport byte
    (1 string, 2 binary) and the length-prefixed value, all hashed together."""
    digest = hashlib.md5()

    def put(data: bytes) -> None:
        digest.update(struct.pack(">I", len(data)))
        digest.update(data)

    for name in sorted(attributes):
        attribute = attributes[name]
        data_type: str = attribute["DataType"]
        put(name.encode("utf-8"))
        put(data_type.encode("utf-8"))
        if data_type.startswith("Binary"):
            digest.update(b"\x02")
            put(bytes(attribute["BinaryValue"]))
        else:
            digest.update(b"\x01")
            put(str(attribute["StringValue"]).encode("utf-8"))
    return digest.hexdigest()


def error_code(exc: ClientError) -> str:
    """The code botocore reports: the legacy Query code when the server sent ``x-amzn-query-error``."""
    code: str = exc.response["Error"]["Code"]
    return code


def http_status(exc: ClientError) -> int:
    status: int = exc.response["ResponseMetadata"]["HTTPStatusCode"]
    return status


def receive_until(sqs: Any, queue_url: str, count: int, *, timeout: float, **kwargs: Any) -> list[dict[str, Any]]:
    """Long-poll until ``count`` messages arrived or ``timeout`` passed; returns what arrived (maybe more)."""
    messages: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while len(messages) < count:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        wait = max(1, min(20, int(remaining)))
        response = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait, **kwargs)
        messages.extend(response.get("Messages", []))
    return messages


@dataclass(frozen=True, slots=True)
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes


def http_request(url: str, *, method: str = "GET", body: bytes | None = None,
                 headers: Mapping[str, str] | None = None, timeout: float = 10.0) -> RawResponse:
    """One plain HTTP request (urllib), returning 4xx/5xx responses instead of raising."""
    request = urllib.request.Request(url, data=body, method=method, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return RawResponse(response.status, {k.lower(): v for k, v in response.headers.items()},
                               response.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return RawResponse(exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read())


def sqs_json_headers(operation: str) -> dict[str, str]:
    """The headers botocore sends for an SQS call over AWS JSON 1.0 (unsigned: the server does not check yet)."""
    return {"X-Amz-Target": f"AmazonSQS.{operation}", "Content-Type": "application/x-amz-json-1.0"}


def message_bodies(messages: list[dict[str, Any]]) -> list[str]:
    return [m["Body"] for m in messages]
