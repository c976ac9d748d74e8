"""Authentication and authorization of the v1 gRPC API on a node started with ``--credentials``.

Every call of ``/raftmq.broker.v1.*`` must carry a signed token (``broker.auth.grpc_auth``); the interceptor
verifies it (UNAUTHENTICATED with the HTTP APIs' codes otherwise), authorizes the request as the equivalent AWS
call (``PERMISSIONS``: Queues.Send is ``sqs:SendMessage`` on the queue's ARN, ...) with the same IAM evaluator and
resource policies as HTTP (PERMISSION_DENIED / AccessDenied otherwise), and serves the call with the caller in
``grpc_auth.CALLER`` so the servicers work in the caller's account. A method missing from ``PERMISSIONS`` is
refused, so a new RPC cannot be open by accident. Health, reflection and the cluster's internal services are not
handled here (mutual TLS protects those).

Admin calls are ``raftmq:Admin<Method>`` on the cluster, ``arn:aws:raftmq:<region>:<node account>:cluster``: the
cluster belongs to the node's ``--account-id``, whose root may administer it, as may its users whose policies allow
the action; other accounts' roots are tenants, not operators.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeAlias

import grpc

from broker.auth import errors as auth_errors
from broker.auth.authenticator import Authenticator, Identity
from broker.auth.credentials import load_credentials
from broker.auth.grpc_auth import CALLER, TokenVerifier
from broker.auth.policy import AuthzRequest, authorize
from broker.grpc_api.errors import abort
from broker.grpc_api.wrapping import API_PREFIX, MethodWrappingInterceptor
from broker.model.errors import BrokerError
from broker.service import RequestContext

log = logging.getLogger(__name__)

Context: TypeAlias = grpc.aio.ServicerContext[Any, Any]
# (service, operation, AWS parameters) an AWS call would need for the same effect; service "raftmq" is the cluster.
Check: TypeAlias = tuple[str, str, Mapping[str, Any]]
Rule: TypeAlias = Callable[[Any, str, str], list[Check]]  # (request, caller account, region) -> checks
_DENIED_CODES = frozenset({"AccessDenied", "AccessDeniedException", "AuthorizationError",
                           "AuthorizationErrorException"})


def _queue(op: str) -> Rule:
    return lambda r, account, region: [("sqs", op, {"QueueName": r.queue})]


def _queue_ref(op: str) -> Rule:
    return lambda r, account, region: [("sqs", op, {"QueueName": r.queue, "QueueOwnerAWSAccountId": r.account})]


def _stream(*ops: str) -> Rule:
    return lambda r, account, region: [("kinesis", op, {"StreamName": r.stream}) for op in ops]


def _topic_arn(r: Any, account: str, region: str) -> str:
    return getattr(r, "arn", "") or f"arn:aws:sns:{region}:{account}:{r.topic}"


def _topic(op: str) -> Rule:
    return lambda r, account, region: [("sns", op, {"TopicArn": _topic_arn(r, account, region)})]


def _admin(op: str) -> Rule:
    return lambda r, account, region: [("raftmq", f"Admin{op}", {})]


def _consume(r: Any, account: str, region: str) -> list[Check]:
    params = {"QueueName": r.start.queue}
    return [("sqs", op, params) for op in ("ReceiveMessage", "DeleteMessage", "ChangeMessageVisibility")]


def _subscribe(r: Any, account: str, region: str) -> list[Check]:
    return [("sns", "Subscribe", {"TopicArn": _topic_arn(r, account, region), "Protocol": r.protocol,
                                  "Endpoint": r.endpoint})]


_Q, _S, _T, _A, _G = (f"{API_PREFIX}{name}/" for name in ("Queues", "Streams", "Topics", "Admin", "StreamGroups"))
PERMISSIONS: dict[str, Rule] = {
    _Q + "CreateQueue": _queue("CreateQueue"),
    _Q + "GetQueue": _queue_ref("GetQueueUrl"),
    _Q + "ListQueues": lambda r, account, region: [("sqs", "ListQueues", {})],
    _Q + "DeleteQueue": _queue_ref("DeleteQueue"),
    _Q + "PurgeQueue": _queue_ref("PurgeQueue"),
    _Q + "GetQueueAttributes": _queue("GetQueueAttributes"),
    _Q + "SetQueueAttributes": _queue("SetQueueAttributes"),
    _Q + "Send": _queue("SendMessage"),
    _Q + "Receive": _queue("ReceiveMessage"),
    _Q + "Delete": _queue("DeleteMessage"),
    _Q + "ChangeVisibility": _queue("ChangeMessageVisibility"),
    _Q + "Consume": _consume,
    _S + "CreateStream": _stream("CreateStream"),
    _S + "DescribeStream": _stream("DescribeStream"),
    _S + "ListStreams": lambda r, account, region: [("kinesis", "ListStreams", {})],
    _S + "DeleteStream": _stream("DeleteStream"),
    _S + "Put": _stream("PutRecords"),
    _S + "Read": _stream("GetShardIterator", "GetRecords"),
    _S + "Tail": _stream("GetShardIterator", "GetRecords"),
    _T + "CreateTopic": lambda r, account, region: [("sns", "CreateTopic", {"Name": r.topic})],
    _T + "DeleteTopic": _topic("DeleteTopic"),
    _T + "ListTopics": lambda r, account, region: [("sns", "ListTopics", {})],
    _T + "Publish": _topic("Publish"),
    _T + "Subscribe": _subscribe,
    _T + "Unsubscribe": lambda r, account, region: [("sns", "Unsubscribe", {"SubscriptionArn": r.arn})],
    _T + "ListSubscriptions": _topic("ListSubscriptionsByTopic"),
    # Consumer groups have no AWS API (KCL keeps them in DynamoDB): RaftMQ's own kinesis: actions on the stream.
    _G + "JoinGroup": _stream("JoinGroup"),
    _G + "Heartbeat": _stream("HeartbeatGroup"),
    _G + "Checkpoint": _stream("CheckpointGroup"),
    _G + "LeaveGroup": _stream("LeaveGroup"),
    _G + "DescribeGroup": _stream("DescribeGroup"),
    _G + "ListGroups": _stream("ListGroups"),
    _G + "DeleteGroup": _stream("DeleteGroup"),
    _A + "ClusterStatus": _admin("ClusterStatus"),
    _A + "AddNode": _admin("AddNode"),
    _A + "RemoveNode": _admin("RemoveNode"),
    _A + "TransferLeadership": _admin("TransferLeadership"),
}


def _peer_host(peer: str) -> str:
    """``ipv4:10.0.0.7:5123`` / ``ipv6:[::1]:5123`` -> the address, for aws:SourceIp."""
    kind, _, rest = peer.partition(":")
    if kind == "ipv6":
        return rest.rpartition(":")[0].strip("[]")
    if kind == "ipv4":
        return rest.rpartition(":")[0]
    return ""


def _as_access_denied(exc: BrokerError) -> BrokerError:
    """One code for every service over gRPC: the status (PERMISSION_DENIED) already says what kind of failure."""
    if exc.code in _DENIED_CODES and exc.code != "AccessDenied":
        return BrokerError(exc.message, code="AccessDenied", status=403)
    return exc


class Guard:
    """Authenticates and authorizes one call; the grpc-free half of the interceptor."""

    def __init__(self, verifier: TokenVerifier, authenticator: Authenticator, operator_account: str,
                 region: str, secure_transport: bool = False) -> None:
        self._verifier = verifier
        self._auth = authenticator
        self._operator = operator_account
        self._region = region
        self._secure = "true" if secure_transport else "false"

    def authenticate(self, metadata: Any, method: str) -> Identity:
        return self._verifier.verify(metadata or (), method)

    def authorize(self, identity: Identity, method: str, request: Any, client_host: str) -> None:
        rule = PERMISSIONS.get(method)
        if rule is None:
            raise auth_errors.access_denied("raftmq", identity.arn, method, "*",
                                            "because the method has no permission mapping")
        ctx = RequestContext(request_id="", account_id=identity.account_id, region=self._region, endpoint_url="",
                             protocol="grpc", client_host=client_host)
        if request is None:
            return  # a stream closed before its first request: nothing to act on
        try:
            for service, operation, params in rule(request, identity.account_id, self._region):
                if service == "raftmq":
                    self._authorize_admin(identity, operation, client_host)
                else:
                    self._auth.authorize(identity, service, operation, params, ctx)
        except BrokerError as exc:
            raise _as_access_denied(exc) from None

    def _authorize_admin(self, identity: Identity, operation: str, client_host: str) -> None:
        action, resource = f"raftmq:{operation}", f"arn:aws:raftmq:{self._region}:{self._operator}:cluster"
        now = datetime.now(UTC)
        context = {"aws:SourceIp": client_host, "aws:CurrentTime": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
                   "aws:EpochTime": str(int(now.timestamp())), "aws:SecureTransport": self._secure,
                   "aws:PrincipalAccount": identity.account_id, "aws:PrincipalArn": identity.arn,
                   "aws:RequestedRegion": self._region, "aws:userid": identity.user_id}
        verdict = authorize(AuthzRequest(identity.arn, identity.account_id, action, resource, context),
                            identity_policies=identity.policies, is_root=identity.is_root,
                            resource_account=self._operator, resource_policy=None)
        if not verdict.allowed:
            raise auth_errors.access_denied("raftmq", identity.arn, action, resource, verdict.reason)


class GrpcAuthInterceptor(MethodWrappingInterceptor):
    """Wraps every v1 API handler so that it runs only for an authenticated, authorized caller."""

    def __init__(self, guard: Guard) -> None:
        super().__init__()
        self._guard = guard

    def _wrap(self, handler: grpc.RpcMethodHandler, method: str) -> grpc.RpcMethodHandler:
        guard = self._guard
        kwargs = {"request_deserializer": handler.request_deserializer,
                  "response_serializer": handler.response_serializer}

        async def admit(request: Any, context: Context) -> None:
            try:
                identity = guard.authenticate(context.invocation_metadata(), method)
                guard.authorize(identity, method, request, _peer_host(context.peer()))
            except BrokerError as exc:
                log.info("event=grpc-auth-refused method=%s code=%s", method, exc.code)
                await abort(context, exc)
            # Each call runs in its own task, so the caller set here is seen by this call's servicer only.
            CALLER.set(identity)

        if handler.unary_unary is not None:
            inner_uu = handler.unary_unary

            async def unary_unary(request: Any, context: Context) -> Any:
                await admit(request, context)
                return await inner_uu(request, context)
            return grpc.unary_unary_rpc_method_handler(unary_unary, **kwargs)
        if handler.unary_stream is not None:
            inner_us = handler.unary_stream

            async def unary_stream(request: Any, context: Context) -> AsyncIterator[Any]:
                await admit(request, context)
                async for item in inner_us(request, context):
                    yield item
            return grpc.unary_stream_rpc_method_handler(unary_stream, **kwargs)
        inner = handler.stream_unary or handler.stream_stream
        if handler.stream_unary is not None:
            async def stream_unary(requests: AsyncIterator[Any], context: Context) -> Any:
                first, replayed = await _first_request(requests)
                await admit(first, context)
                return await inner(replayed, context)
            return grpc.stream_unary_rpc_method_handler(stream_unary, **kwargs)

        async def stream_stream(requests: AsyncIterator[Any], context: Context) -> AsyncIterator[Any]:
            first, replayed = await _first_request(requests)
            await admit(first, context)
            async for item in inner(replayed, context):
                yield item
        return grpc.stream_stream_rpc_method_handler(stream_stream, **kwargs)


async def _first_request(requests: AsyncIterator[Any]) -> tuple[Any, AsyncIterator[Any]]:
    """The first request of a stream (what it is about: Consume's start) and the whole stream again."""
    iterator = aiter(requests)
    first = await anext(iterator, None)

    async def replay() -> AsyncIterator[Any]:
        if first is not None:
            yield first
        async for item in iterator:
            yield item
    return first, replay()


def grpc_auth_interceptor(authenticator: Authenticator, credentials_file: str, operator_account: str,
                          region: str, *, secure_transport: bool = False) -> GrpcAuthInterceptor:
    """The interceptor of a node started with ``--credentials``: the same file, keys and policies as HTTP."""
    verifier = TokenVerifier(load_credentials(credentials_file))
    return GrpcAuthInterceptor(Guard(verifier, authenticator, operator_account, region, secure_transport))
