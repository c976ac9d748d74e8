"""SubscribeToShard over HTTP: the one Kinesis operation whose response is a stream of events, not one body.

``SubscribeFront`` wraps the AWS gateway: a request for ``Kinesis_20131202.SubscribeToShard`` is decoded with the
same model-driven codec the gateway would use (JSON 1.1 or CBOR), checked by the service, and answered with an
``application/vnd.amazon.eventstream`` body that is written as events happen: ``initial-response`` first, then
``SubscribeToShardEvent``s, and an ``exception`` event if the stream or consumer goes away. Anything else goes to
the gateway unchanged. Errors found before streaming starts are ordinary AWS error responses.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, Protocol

import cbor2
import orjson

from broker.aws.cbor_protocol import CBOR_CONTENT_TYPE, CborCodec, CborShapeCompiler
from broker.aws.gateway import credential_scope
from broker.aws.json_protocol import JsonCodec
from broker.aws.protocol import TargetCodec, new_request_id
from broker.aws.service_model import load_service_model
from broker.aws.shape_codec import Encoder, ShapeCompiler
from broker.http.types import HttpHandler, HttpRequest, HttpResponse
from broker.kinesis import eventstream
from broker.kinesis.service import KinesisService
from broker.kinesis.subscriptions import Subscription
from broker.metrics import observe_request
from broker.model.errors import BrokerError, InternalFailure
from broker.service import RequestContext

log = logging.getLogger(__name__)

TARGET = "Kinesis_20131202.SubscribeToShard"
JSON_CONTENT_TYPE = "application/x-amz-json-1.1"


class _Wire:
    """How one protocol writes events: its codec (request and errors), event encoder and serializer."""

    def __init__(self, codec: TargetCodec, encoder: Encoder | None, dumps: Callable[[Any], bytes],
                 content_type: str) -> None:
        self.codec = codec
        self.encoder = encoder
        self.dumps = dumps
        self.content_type = content_type

    def payload(self, value: dict[str, Any]) -> bytes:
        return self.dumps(value if self.encoder is None else self.encoder(value))


class Authenticator(Protocol):
    """What the gateway's authenticator offers (``broker.auth``): verify the caller, then allow the call."""

    def authenticate(self, request: HttpRequest, service: str) -> Any: ...

    def authorize(self, identity: Any, service: str, operation: str, params: Mapping[str, Any],
                  ctx: RequestContext) -> None: ...


class SubscribeFront:
    """``HttpHandler``: SubscribeToShard as an event stream; every other request to ``inner``.

    Give it the gateway's ``authenticator``: SubscribeToShard bypasses the gateway, so it must be checked here.
    """

    def __init__(self, inner: HttpHandler, service: KinesisService, account_id: str, default_region: str,
                 authenticator: Authenticator | None = None) -> None:
        self._inner = inner
        self._service = service
        self._auth = authenticator
        self._account_id = account_id
        self._region = default_region
        json_model = load_service_model("kinesis", "json")
        cbor_model = load_service_model("kinesis", "cbor")
        shape = json_model.shapes["SubscribeToShardEvent"]
        self._wires = {
            "json": _Wire(JsonCodec(json_model), ShapeCompiler(check_constraints=False).encoder(shape),
                          orjson.dumps, JSON_CONTENT_TYPE),
            "cbor": _Wire(CborCodec(cbor_model), CborShapeCompiler(check_constraints=False).encoder(
                cbor_model.shapes["SubscribeToShardEvent"]), cbor2.dumps, CBOR_CONTENT_TYPE),
        }
        operation = json_model.operation("SubscribeToShard")
        assert operation is not None
        self._operation = operation

    async def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.headers.get("x-amz-target") != TARGET:
            return await self._inner(request)
        started = time.perf_counter()
        request_id = request.request_id or new_request_id()
        content_type = request.headers.get("content-type", "").split(";")[0].strip()
        protocol = "cbor" if content_type == CBOR_CONTENT_TYPE else "json"
        wire = self._wires[protocol]
        try:
            identity = self._auth.authenticate(request, "kinesis") if self._auth is not None else None
            params = wire.codec.decode_body(self._operation, request.body)
            scope = credential_scope(request.headers)
            ctx = RequestContext(request_id=request_id,
                                 account_id=getattr(identity, "account_id", None) or self._account_id,
                                 region=scope.region if scope is not None and scope.region else self._region,
                                 endpoint_url="", protocol=protocol, client_host=request.client_host,
                                 access_key_id=scope.access_key_id if scope is not None else "")
            if self._auth is not None:
                self._auth.authorize(identity, "kinesis", "SubscribeToShard", params, ctx)
            subscription = await self._service.subscribe(params, ctx)
        except BrokerError as exc:
            response = wire.codec.encode_error(exc, request_id)
        except Exception:
            log.exception("internal error opening SubscribeToShard (request id %s)", request_id)
            response = wire.codec.encode_error(InternalFailure(), request_id)
        else:
            response = HttpResponse(200, b"", [("x-amzn-RequestId", request_id)], eventstream.CONTENT_TYPE,
                                    stream=_frames(subscription, wire, request_id))
        observe_request("kinesis", "SubscribeToShard", response.status, time.perf_counter() - started)
        return response


async def _frames(subscription: Subscription, wire: _Wire, request_id: str) -> AsyncIterator[bytes]:
    """initial-response, then one SubscribeToShardEvent per batch; an exception event ends a failed stream."""
    try:
        yield eventstream.event("initial-response", wire.content_type, wire.dumps({}))
        try:
            async for event in subscription:
                yield eventstream.event("SubscribeToShardEvent", wire.content_type, wire.payload(event))
        except BrokerError as exc:
            yield eventstream.exception(exc.code, wire.content_type, wire.dumps({"message": exc.message}))
        except Exception:
            log.exception("SubscribeToShard stream failed (request id %s)", request_id)
            yield eventstream.exception("InternalFailureException", wire.content_type,
                                        wire.dumps({"message": "Internal failure. Please try again."}))
    finally:
        await subscription.aclose()
