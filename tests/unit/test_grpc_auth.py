"""gRPC call tokens (sign/verify with the HTTP error codes), the client's signer, and the method -> IAM mapping."""

from __future__ import annotations

import importlib
import json
import pkgutil
from datetime import UTC, datetime, timedelta

import grpc
import pytest

import proto.broker.v1
from broker.auth.authenticator import Authenticator, Identity
from broker.auth.credentials import parse_credentials
from broker.auth.grpc_auth import AUTH_KEY, CALLER, DATE_KEY, TokenVerifier, caller_account, sign
from broker.client.credentials import Credentials, Signer
from broker.grpc_api.errors import detail_of, status_of
from broker.grpc_api.guard import API_PREFIX, PERMISSIONS, Guard, _peer_host
from broker.model.errors import BrokerError
from proto.broker.v1 import admin_pb2, queues_pb2, streams_pb2, topics_pb2

A, B = "111111111111", "222222222222"
NOW = datetime(2026, 11, 28, 18, 0, 0, tzinfo=UTC)
SEND = "/raftmq.broker.v1.Queues/Send"
NO_SEND = json.dumps({"Statement": [{"Effect": "Allow", "Action": "sqs:*", "Resource": "*"},
                                    {"Effect": "Deny", "Action": "sqs:SendMessage", "Resource": "*"}]})
ADMIN = json.dumps({"Statement": [{"Effect": "Allow", "Action": "raftmq:Admin*", "Resource": "*"}]})
STORE = parse_credentials({"accounts": [
    {"id": A, "root_keys": [{"id": "AKIAROOTA0000000001", "secret": "root-a"}], "users": [
        {"name": "carol", "policies": [NO_SEND], "keys": [{"id": "AKIACAROL000000001", "secret": "carol"},
                                                          {"id": "AKIACAROLOLD000001", "secret": "old",
                                                           "active": False}]},
        {"name": "ops", "policies": [ADMIN], "keys": [{"id": "AKIAOPS00000000001", "secret": "ops"}]}]},
    {"id": B, "root_keys": [{"id": "AKIAROOTB0000000001", "secret": "root-b"}], "users": [
        {"name": "ops", "policies": [ADMIN], "keys": [{"id": "AKIAOPSB0000000001", "secret": "ops-b"}]}]},
]})


def verifier(now: datetime = NOW) -> TokenVerifier:
    return TokenVerifier(STORE, clock=lambda: now)


def error_code(call: object, *args: object) -> str:
    with pytest.raises(BrokerError) as info:
        call(*args)  # type: ignore[operator]
    return info.value.code


def test_a_signed_call_is_its_keys_identity() -> None:
    identity = verifier().verify(sign("AKIACAROL000000001", "carol", "eu-west-1", SEND, NOW), SEND)
    assert (identity.account_id, identity.arn, identity.is_root) == (A, f"arn:aws:iam::{A}:user/carol", False)
    root = verifier().verify(sign("AKIAROOTB0000000001", "root-b", "us-east-1", SEND, NOW), SEND)
    assert (root.account_id, root.is_root) == (B, True)


@pytest.mark.parametrize(("metadata", "code"), [
    (sign("AKIACAROL000000001", "wrong", "us-east-1", SEND, NOW), "SignatureDoesNotMatch"),
    (sign("AKIAUNKNOWN0000001", "carol", "us-east-1", SEND, NOW), "InvalidClientTokenId"),
    (sign("AKIACAROLOLD000001", "old", "us-east-1", SEND, NOW), "InvalidClientTokenId"),
    (sign("AKIACAROL000000001", "carol", "us-east-1", SEND, NOW - timedelta(minutes=16)), "RequestExpired"),
    (sign("AKIACAROL000000001", "carol", "us-east-1", SEND, NOW + timedelta(minutes=16)), "RequestExpired"),
    (sign("AKIACAROL000000001", "carol", "us-east-1", "/raftmq.broker.v1.Queues/Receive", NOW),
     "SignatureDoesNotMatch"),  # a token is bound to its method
    ((), "MissingAuthenticationToken"),
    (((DATE_KEY, "20261128T180000Z"),), "MissingAuthenticationToken"),
    (((AUTH_KEY, "AWS4-HMAC-SHA256 Credential=x"), (DATE_KEY, "20261128T180000Z")), "IncompleteSignature"),
    (((AUTH_KEY, "RAFTMQ-HMAC-SHA256 Credential=AKIACAROL000000001/20261128/us-east-1/raftmq/aws4_request"),
      (DATE_KEY, "20261128T180000Z")), "IncompleteSignature"),
    ((sign("AKIACAROL000000001", "carol", "us-east-1", SEND, NOW)[0],), "IncompleteSignature"),
    ((sign("AKIACAROL000000001", "carol", "us-east-1", SEND, NOW)[0], (DATE_KEY, "yesterday")),
     "IncompleteSignature"),
    ((sign("AKIACAROL000000001", "carol", "us-east-1", SEND, NOW)[0], (DATE_KEY, "20261128T180001Z")),
     "SignatureDoesNotMatch"),  # the date is signed
])
def test_bad_tokens_get_the_http_apis_codes(metadata: tuple[tuple[str, str], ...], code: str) -> None:
    assert error_code(verifier().verify, metadata, SEND) == code


def test_the_scope_must_name_the_raftmq_service() -> None:
    auth, date = sign("AKIACAROL000000001", "carol", "us-east-1", SEND, NOW)
    forged = (AUTH_KEY, auth[1].replace("/raftmq/", "/sqs/"))
    assert error_code(verifier().verify, (forged, date), SEND) == "SignatureDoesNotMatch"


def test_authentication_codes_are_unauthenticated_and_access_denied_is_permission_denied() -> None:
    for code in ("MissingAuthenticationToken", "InvalidClientTokenId", "SignatureDoesNotMatch",
                 "IncompleteSignature", "RequestExpired"):
        assert status_of(detail_of(BrokerError("x", code=code, status=403))) is grpc.StatusCode.UNAUTHENTICATED
    assert status_of(detail_of(BrokerError("x", code="AccessDenied", status=403))) is \
        grpc.StatusCode.PERMISSION_DENIED


def test_signer_signs_once_per_method_and_second() -> None:
    clock = [NOW.timestamp()]
    signer = Signer(Credentials("AKIACAROL000000001", "carol"), clock=lambda: clock[0])
    first = signer.metadata(SEND)
    clock[0] += 0.5
    assert signer.metadata(SEND) is first
    clock[0] += 0.5
    later = signer.metadata(SEND)
    assert later != first and verifier(NOW + timedelta(seconds=1)).verify(later, SEND).account_id == A


def test_credentials_come_from_arguments_or_the_aws_environment() -> None:
    assert Credentials.resolve(("K", "S")) == Credentials("K", "S")
    env = {"AWS_ACCESS_KEY_ID": "K", "AWS_SECRET_ACCESS_KEY": "S", "AWS_DEFAULT_REGION": "eu-west-1"}
    assert Credentials.from_env(env) == Credentials("K", "S", "eu-west-1")
    assert Credentials.from_env({"AWS_ACCESS_KEY_ID": "K"}) is None
    assert "S" not in repr(Credentials("K", "S"))


def test_every_v1_method_has_a_permission() -> None:
    """Every service of every v1 proto, found on disk: a new RPC without a mapping fails here (the server refuses
    it anyway, but it should be mapped deliberately)."""
    modules = [importlib.import_module(f"proto.broker.v1.{info.name}")
               for info in pkgutil.iter_modules(proto.broker.v1.__path__) if info.name.endswith("_pb2")]
    methods = {f"/{service.full_name}/{method.name}"
               for module in modules
               for service in module.DESCRIPTOR.services_by_name.values() for method in service.methods}
    assert methods == set(PERMISSIONS)
    assert all(m.startswith(API_PREFIX) for m in methods)


def guard() -> Guard:
    return Guard(verifier(), Authenticator(STORE, clock=lambda: NOW), operator_account=A, region="us-east-1")


def identity_of(key: str, secret: str) -> Identity:
    return verifier().verify(sign(key, secret, "us-east-1", SEND, NOW), SEND)


def test_a_policy_that_denies_send_denies_send_only() -> None:
    carol = identity_of("AKIACAROL000000001", "carol")
    assert error_code(guard().authorize, carol, SEND, queues_pb2.SendRequest(queue="q"), "") == "AccessDenied"
    guard().authorize(carol, "/raftmq.broker.v1.Queues/Receive", queues_pb2.ReceiveRequest(queue="q"), "")
    consume = queues_pb2.ConsumeRequest(start=queues_pb2.ConsumeStart(queue="q"))
    guard().authorize(carol, "/raftmq.broker.v1.Queues/Consume", consume, "")


def test_another_accounts_queue_needs_its_resource_policy() -> None:
    root_b = identity_of("AKIAROOTB0000000001", "root-b")
    ref = queues_pb2.QueueRef(queue="orders", account=A)
    with pytest.raises(BrokerError) as info:
        guard().authorize(root_b, "/raftmq.broker.v1.Queues/PurgeQueue", ref, "")
    assert info.value.code == "AccessDenied" and f"arn:aws:sqs:us-east-1:{A}:orders" in info.value.message
    guard().authorize(root_b, "/raftmq.broker.v1.Queues/PurgeQueue", queues_pb2.QueueRef(queue="orders"), "")


@pytest.mark.parametrize(("key", "secret", "allowed"), [
    ("AKIAROOTA0000000001", "root-a", True),  # the root of the node's account operates the cluster
    ("AKIAOPS00000000001", "ops", True),  # a user of that account with raftmq:Admin*
    ("AKIACAROL000000001", "carol", False),  # a user without it
    ("AKIAROOTB0000000001", "root-b", False),  # another account's root is a tenant
    ("AKIAOPSB0000000001", "ops-b", False),  # even with raftmq:Admin* in its own account
])
def test_admin_needs_the_node_accounts_admin_rights(key: str, secret: str, allowed: bool) -> None:
    caller = identity_of(key, secret)
    call = (caller, "/raftmq.broker.v1.Admin/AddNode", admin_pb2.AddNodeRequest(node_id="n4", address="h:1"), "")
    if allowed:
        guard().authorize(*call)
    else:
        assert error_code(guard().authorize, *call) == "AccessDenied"


def test_denials_from_sns_and_kinesis_are_access_denied_too() -> None:
    carol = identity_of("AKIACAROL000000001", "carol")  # her policy allows sqs:* only
    topic = topics_pb2.PublishRequest(topic="t")
    assert error_code(guard().authorize, carol, "/raftmq.broker.v1.Topics/Publish", topic, "") == "AccessDenied"
    put = streams_pb2.PutRequest(stream="s")
    assert error_code(guard().authorize, carol, "/raftmq.broker.v1.Streams/Put", put, "") == "AccessDenied"


def test_caller_account_defaults_to_the_nodes_account() -> None:
    assert caller_account("000000000000") == "000000000000"
    token = CALLER.set(identity_of("AKIAROOTB0000000001", "root-b"))
    try:
        assert caller_account("000000000000") == B
    finally:
        CALLER.reset(token)


def test_peer_host_parses_grpc_peers() -> None:
    assert _peer_host("ipv4:10.1.2.3:5000") == "10.1.2.3"
    assert _peer_host("ipv6:[::1]:5000") == "::1"
    assert _peer_host("unix:/tmp/sock") == ""
