"""AWS Query (form-encoded POST, XML answers) calls over the raw HTTP client, shaped like botocore's: SNS speaks it.

Each request carries ``Content-Type: application/x-www-form-urlencoded; charset=utf-8``, a real SigV4
``Authorization`` for the service, ``X-Amz-Date`` and botocore's invocation headers. Answers are XML; the few values
a scenario needs (a TopicArn, an error Code) are taken with a regular expression rather than a full XML parser,
because the generator must spend as little CPU as possible per call.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from urllib.parse import urlencode

from benchmarks.awsjson import USER_AGENT, AwsError, Target, _invocation_id
from benchmarks.http1 import HttpConnection, HttpResponse
from benchmarks.sigv4 import AmzClock, SigV4Signer

CONTENT_TYPE = "application/x-www-form-urlencoded; charset=utf-8"
_CODE_RE = re.compile(rb"<Code>([^<]+)</Code>")
_MESSAGE_RE = re.compile(rb"<Message>([^<]*)</Message>")


def xml_value(body: bytes, element: str) -> str | None:
    """The text of the first ``<element>`` of an XML answer, or None."""
    match = re.search(b"<" + element.encode() + rb">([^<]*)</", body)
    return None if match is None else match.group(1).decode()


def error_from(response: HttpResponse) -> AwsError:
    """The AWS error of an XML error answer (``<Error><Code>``); ``HTTP<status>`` when it has none."""
    code = _CODE_RE.search(response.body)
    message = _MESSAGE_RE.search(response.body)
    return AwsError(response.status, code.group(1).decode() if code else f"HTTP{response.status}",
                    message.group(1).decode() if message else "")


class AwsQueryClient:
    """One keep-alive connection that speaks one AWS Query service (``sns`` by default)."""

    def __init__(self, target: Target, service: str = "sns", version: str = "2010-03-31", timeout: float = 30.0,
                 clock: Callable[[], str] | None = None) -> None:
        host, port = target.host_port
        self.connection = HttpConnection(host, port, timeout)
        self.version = version
        host_header = host if port == 80 else f"{host}:{port}"
        self._signed = (("content-type", CONTENT_TYPE), ("host", host_header))
        self._static_head = (f"POST / HTTP/1.1\r\nHost: {host_header}\r\nContent-Type: {CONTENT_TYPE}\r\n"
                             f"User-Agent: {USER_AGENT}\r\n")
        self._signer = SigV4Signer(target.access_key, target.secret_key, target.region, service)
        self._now = clock or AmzClock().now

    def body(self, action: str, params: Mapping[str, str]) -> bytes:
        """The form body of ``action`` with ``params`` (Action and Version first, as botocore orders them)."""
        return urlencode({"Action": action, "Version": self.version, **params}).encode()

    def build_request(self, body: bytes) -> bytes:
        amz_date = self._now()
        auth = self._signer.authorization(amz_date, self._signed, body)
        head = (f"{self._static_head}X-Amz-Date: {amz_date}\r\nAuthorization: {auth}\r\n"
                f"amz-sdk-invocation-id: {_invocation_id()}\r\namz-sdk-request: attempt=1\r\n"
                f"Content-Length: {len(body)}\r\n\r\n")
        return head.encode("latin-1") + body

    async def call_raw(self, body: bytes) -> HttpResponse:
        """Send a pre-encoded form body; the response whatever its status."""
        return await self.connection.request(self.build_request(body))

    async def call(self, action: str, params: Mapping[str, str]) -> bytes:
        """Send ``action``; the XML answer, or raises ``AwsError``."""
        response = await self.call_raw(self.body(action, params))
        if response.status >= 300:
            raise error_from(response)
        return response.body

    def close(self) -> None:
        self.connection.close()
