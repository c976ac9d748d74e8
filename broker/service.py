"""The seam between the AWS protocol gateway and the services (SQS, SNS, Kinesis, STS) behind it.

A service receives the operation name and its input already parsed by the model-driven codec of the protocol the
client spoke (a dict keyed by the service model's member names: str, int, bool, float, bytes for blobs,
datetime for timestamps, lists and dicts), and returns the output structure in the same form. It raises
``BrokerError`` for every client-visible failure; it never sees HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class RequestContext:
    request_id: str
    account_id: str
    region: str
    # scheme://host[:port] as the client addressed us (or the configured public endpoint); queue URLs start with it.
    endpoint_url: str
    protocol: str  # "json" | "query" | "cbor"
    client_host: str = ""
    access_key_id: str = ""
    # The verified caller (broker.auth): its IAM ARN and UserId as GetCallerIdentity reports them; "" when unknown.
    principal_arn: str = ""
    user_id: str = ""


class AwsService(Protocol):
    """One AWS-compatible service (``sqs``, ``sns``, ``kinesis``, ``sts``)."""

    name: str

    async def handle(self, operation: str, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]: ...
