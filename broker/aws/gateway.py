"""The AWS gateway: one HTTP handler in front of every AWS-compatible service, for every AWS wire protocol.

Per request it picks the service, the protocol and the operation, decodes the input with that protocol's
model-driven codec, calls ``AwsService.handle`` and encodes the output or the error the same way:

- ``X-Amz-Target: <targetPrefix>.<Op>`` -> the JSON service with that target prefix (``AmazonSQS`` -> sqs, AWS
  JSON 1.0; ``Kinesis_20131202`` -> kinesis, AWS JSON 1.1). A CBOR body would pick the service's CBOR codec once
  one is registered in ``TARGET_CODECS``.
- otherwise a form body and/or query string with ``Action`` -> the Query protocol; the service comes from the SigV4
  credential scope (``Credential=AKID/DATE/REGION/SERVICE/aws4_request``, header or presigned ``X-Amz-Credential``),
  else from ``Version`` (2011-06-15 sts, 2010-03-31 sns, 2012-11-05 sqs), else from the one served Query service that
  has the action.

Client mistakes are AWS-style 4xx errors in the protocol the client spoke: an unknown target is
``UnknownOperationException``, an unknown action ``InvalidAction``, a request with neither ``MissingAction``, a
service this endpoint does not serve ``InvalidAction`` naming the service. Only a fault of the server is a 500
(``InternalFailure``, with the request id in the body, logged with its traceback).
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import orjson

from broker.auth.authenticator import DevAuthenticator, Identity, RequestAuthenticator
from broker.aws.cbor_protocol import CborCodec
from broker.aws.json_protocol import JsonCodec
from broker.aws.protocol import FormCodec, ResponseCodec, TargetCodec, new_request_id
from broker.aws.query_protocol import QueryCodec, parse_form
from broker.aws.service_model import ServiceModel, UnknownModel, has_model, load_service_model
from broker.http.types import HttpRequest, HttpResponse
from broker.metrics import observe_request
from broker.model.errors import (
    BrokerError,
    InternalFailure,
    InvalidAction,
    SerializationException,
    UnknownOperationException,
)
from broker.service import AwsService, RequestContext

log = logging.getLogger(__name__)

# Codecs of the X-Amz-Target family by protocol name; a CBOR codec (Kinesis) slots in as "cbor".
TARGET_CODECS: dict[str, Callable[[ServiceModel], TargetCodec]] = {"json": JsonCodec, "cbor": CborCodec}
CBOR_MEDIA_TYPE = "application/x-amz-cbor-1.1"
JSON_MEDIA_TYPES = frozenset({"application/x-amz-json-1.0", "application/x-amz-json-1.1"})

# Query API versions of the services, used when a request is not signed.
QUERY_VERSIONS = {"2011-06-15": "sts", "2010-03-31": "sns", "2012-11-05": "sqs"}

# The rate-limit hook (``broker.auth.ratelimit.RequestThrottle``): (access key id, client host, service) -> None,
# raising the service's throttling error. Called once the caller is authenticated, before anything is decoded.
Throttle = Callable[[str, str, str], None]

_QUEUE_PATH = re.compile(r"^/(\d{12})/([A-Za-z0-9_.-]{1,80})/?$")


@dataclass(frozen=True, slots=True)
class Credential:
    """The SigV4 credential scope of a request, read for routing (``broker.auth`` verifies it)."""

    access_key_id: str
    region: str
    service: str


def credential_scope(headers: Mapping[str, str], form: Mapping[str, str] | None = None) -> Credential | None:
    """``Credential=AKID/DATE/REGION/SERVICE/aws4_request`` from the Authorization header or X-Amz-Credential."""
    raw = None
    auth = headers.get("authorization")
    if auth is not None:
        start = auth.find("Credential=")
        if start >= 0:
            raw = auth[start + 11:].split(",", 1)[0].split(" ", 1)[0]
    if raw is None and form is not None:
        raw = form.get("X-Amz-Credential")
    if not raw:
        return None
    parts = raw.split("/")
    if len(parts) < 5:
        return None
    return Credential(access_key_id=parts[0], region=parts[2], service=parts[3])


class AwsGateway:
    """``HttpHandler`` for all AWS APIs: ``await gateway(request)`` -> ``HttpResponse``."""

    def __init__(self, services: Mapping[str, AwsService], account_id: str, default_region: str,
                 public_endpoint: str | None = None, authenticator: RequestAuthenticator | None = None,
                 scheme: str = "http", throttle: Throttle | None = None) -> None:
        """``scheme``: of the URLs built from the request's Host (``https`` on a TLS listener)."""
        self._services = dict(services)
        self._scheme = scheme
        self._account_id = account_id
        # Who is calling (SigV4) and may they (IAM); dev mode when not given: anyone is the account's root.
        self._auth: RequestAuthenticator = authenticator or DevAuthenticator(account_id)
        self._throttle = throttle
        self._default_region = default_region
        self._public_endpoint = public_endpoint.rstrip("/") if public_endpoint else None
        # target prefix -> (service name, codec per protocol name)
        self._targets: dict[str, tuple[str, dict[str, TargetCodec]]] = {}
        self._query: dict[str, FormCodec] = {}
        for name in self._services:
            codecs: dict[str, TargetCodec] = {}
            for protocol, factory in TARGET_CODECS.items():
                if has_model(name, protocol):
                    with contextlib.suppress(UnknownModel):  # a model for JSON need not exist for CBOR too
                        codecs[protocol] = factory(load_service_model(name, protocol))
            prefix = next((c.model.target_prefix for c in codecs.values() if c.model.target_prefix), None)
            if prefix:
                self._targets[prefix] = (name, codecs)
            if has_model(name, "query"):
                model = load_service_model(name, "query")
                if model.protocol == "query":
                    self._query[name] = QueryCodec(model)

    async def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        request_id = request.request_id or new_request_id()
        route = _Route()
        try:
            response = await self._dispatch(request, request_id, route)
        except BrokerError as e:
            response = route.error(e, request_id)
        except Exception:
            log.exception("internal error serving %s.%s (request id %s)", route.service, route.action, request_id)
            response = route.error(
                InternalFailure(f"We encountered an internal error. Please try again. (request id {request_id})"),
                request_id)
        observe_request(route.service, route.action, response.status, time.perf_counter() - started)
        return response

    handle = __call__

    async def _dispatch(self, request: HttpRequest, request_id: str, route: _Route) -> HttpResponse:
        headers = request.headers
        target = headers.get("x-amz-target")
        if target is not None:
            return await self._dispatch_target(request, target, request_id, route)
        content_type = headers.get("content-type", "")
        if content_type.startswith("application/x-amz-json") or content_type.startswith(CBOR_MEDIA_TYPE):
            route.answer_in(content_type.split(";")[0].strip())
            raise UnknownOperationException("The request must carry an X-Amz-Target header.")
        return await self._dispatch_query(request, request_id, route)

    async def _dispatch_target(self, request: HttpRequest, target: str, request_id: str,
                               route: _Route) -> HttpResponse:
        content_type = request.headers.get("content-type", "").split(";")[0].strip()
        route.answer_in(content_type)
        prefix, _, op_name = target.rpartition(".")
        found = self._targets.get(prefix)
        if found is None:
            raise UnknownOperationException(f"Unknown target {target!r}.")
        service_name, codecs = found
        route.service = service_name
        protocol = "cbor" if content_type == CBOR_MEDIA_TYPE else "json"
        codec = codecs.get(protocol)
        if codec is None:
            raise SerializationException(f"The {content_type} encoding is not supported for {service_name}.")
        route.codec = codec
        operation = codec.model.operation(op_name)
        if operation is None:
            raise UnknownOperationException(f"Unknown operation {op_name!r} for target prefix {prefix}.")
        route.action = operation.name
        identity = self._auth.authenticate(request, service_name)
        if self._throttle is not None:
            self._throttle(identity.access_key_id, request.client_host, service_name)
        params = codec.decode_body(operation, request.body)
        ctx = self._context(request, request_id, codec.protocol, credential_scope(request.headers), identity)
        self._auth.authorize(identity, service_name, operation.name, params, ctx)
        output = await self._services[service_name].handle(operation.name, params, ctx)
        return codec.encode_output(operation, output, request_id)

    async def _dispatch_query(self, request: HttpRequest, request_id: str, route: _Route) -> HttpResponse:
        route.xml = True
        form = parse_form(request.body, request.query)
        action = form.get("Action")
        if not action:
            raise BrokerError("The request must contain the parameter Action.", code="MissingAction")
        scope = credential_scope(request.headers, form)
        service_name = self._query_service(scope, form.get("Version"), action)
        route.service = service_name
        codec = self._query.get(service_name)
        if codec is None:
            raise InvalidAction(f"The Query protocol is not supported for {service_name} on this endpoint.")
        route.codec = codec
        operation = codec.model.operation(action)
        if operation is None:
            raise InvalidAction(f"The action {action} is not valid for this web service.")
        route.action = operation.name
        identity = self._auth.authenticate(request, service_name)
        if self._throttle is not None:
            self._throttle(identity.access_key_id, request.client_host, service_name)
        endpoint = self._endpoint(request)
        if (operation.input is not None and "QueueUrl" in operation.input.members and "QueueUrl" not in form
                and _QUEUE_PATH.match(request.path)):
            # Older SQS SDKs post to the queue URL instead of sending QueueUrl.
            form = {**form, "QueueUrl": endpoint + request.path.rstrip("/")}
        params = codec.decode_form(operation, form)
        ctx = self._context(request, request_id, codec.protocol, scope, identity, endpoint)
        self._auth.authorize(identity, service_name, operation.name, params, ctx)
        output = await self._services[service_name].handle(operation.name, params, ctx)
        return codec.encode_output(operation, output, request_id)

    def _query_service(self, scope: Credential | None, version: str | None, action: str) -> str:
        if scope is not None and scope.service:
            if scope.service not in self._services:
                raise InvalidAction(f"The service {scope.service!r} is not served by this endpoint.")
            return scope.service
        if version:
            name = QUERY_VERSIONS.get(version)
            if name is not None:
                if name not in self._services:
                    raise InvalidAction(f"The service {name!r} (API version {version}) is not served by this endpoint.")
                return name
        candidates = [n for n, c in self._query.items() if c.model.operation(action) is not None]
        if len(candidates) == 1:
            return candidates[0]
        raise InvalidAction(f"The action {action} with version {version or '(none)'} is not valid for this endpoint.")

    def _endpoint(self, request: HttpRequest) -> str:
        if self._public_endpoint is not None:
            return self._public_endpoint
        host = request.headers.get("host") or "localhost"
        return f"{self._scheme}://{host}"

    def _context(self, request: HttpRequest, request_id: str, protocol: str, scope: Credential | None,
                 identity: Identity, endpoint: str | None = None) -> RequestContext:
        return RequestContext(
            request_id=request_id,
            account_id=identity.account_id,
            region=scope.region if scope is not None and scope.region else self._default_region,
            endpoint_url=endpoint or self._endpoint(request),
            protocol=protocol,
            client_host=request.client_host,
            access_key_id=identity.access_key_id,
            principal_arn=identity.arn,
            user_id=identity.user_id,
        )


class _Route:
    """What the dispatch has learned so far: labels for metrics and the codec an error must be spoken in."""

    __slots__ = ("action", "codec", "json_content_type", "service", "xml")

    def __init__(self) -> None:
        self.service = "unknown"
        self.action = "unknown"
        self.codec: ResponseCodec | None = None
        self.xml = False
        self.json_content_type = "application/x-amz-json-1.0"

    def answer_in(self, content_type: str) -> None:
        """Word errors in the client's JSON version, but only a real one: the header is the client's to garble, and
        echoing ``application/x-amz-json-9`` back would be an answer no SDK reads (found by the fuzzer)."""
        if content_type in JSON_MEDIA_TYPES:
            self.json_content_type = content_type

    def error(self, error: BrokerError, request_id: str) -> HttpResponse:
        try:
            if self.codec is not None:
                return self.codec.encode_error(error, request_id)
            if self.xml:
                return _bare_xml_error(error, request_id)
            return _bare_json_error(error, request_id, self.json_content_type)
        except Exception:
            log.exception("failed to encode error %r (request id %s)", error, request_id)
            return HttpResponse(500, f"InternalFailure (request id {request_id})".encode(),
                                [("x-amzn-RequestId", request_id)], "text/plain")


def _bare_json_error(error: BrokerError, request_id: str, content_type: str) -> HttpResponse:
    """An error for a request no service could be picked for (so no model says how to word it)."""
    body = orjson.dumps({"__type": error.code, "message": error.message})
    return HttpResponse(error.status, body, [("x-amzn-RequestId", request_id)], content_type)


def _bare_xml_error(error: BrokerError, request_id: str) -> HttpResponse:
    return _XML_ERRORS.encode_error(error, request_id)


# A Query codec over an empty model: words errors of requests that name no served service.
_XML_ERRORS = QueryCodec(ServiceModel.from_dict(
    "", {"metadata": {"protocol": "query", "apiVersion": "", "endpointPrefix": ""}, "operations": {}, "shapes": {}}))
