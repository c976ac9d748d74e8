"""TLS for the client-facing APIs and mutual TLS between cluster members.

Two independent settings (see docs/security.md, "TLS"):

- ``ServerTls`` (``--tls-cert``/``--tls-key``): HTTPS for the AWS APIs and TLS for the gRPC client API.
- ``ClusterTls`` (``--cluster-ca``/``--node-cert``/``--node-key``): the Raft stream, forwarding and admin services
  are served on the node's cluster port with client certificates REQUIRED and verified against the cluster CA,
  and every node dials its peers presenting its node certificate and verifying theirs against the same CA.

gRPC's ``require_client_auth`` is all-or-nothing per port (without it the server does not even ask for a client
certificate), so with a cluster CA the node listens on two gRPC ports of one server: the cluster port (its
``--peers`` entry, mutual TLS) and the client port (``--grpc-port``, server TLS or plain). ``ClusterServiceGuard``
refuses the cluster services on any connection that did not present a verified certificate, which is every
connection of the client port: a client can never reach Raft, forwarding or admin without a cluster certificate.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

CLUSTER_PREFIX = "/raftmq.cluster.transport.v1."  # RaftTransport, RaftForward, RaftAdmin
REFUSED = "cluster services need a client certificate from the cluster CA (connect to the cluster port with mTLS)"


def read_pem(path: str, what: str) -> bytes:
    """The file's bytes; ValueError naming the option when it is missing or holds no PEM block."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ValueError(f"{what} {path}: {exc.strerror or exc}") from None
    if b"-----BEGIN " not in data:
        raise ValueError(f"{what} {path}: not a PEM file")
    return data


@dataclass(frozen=True, slots=True)
class ServerTls:
    """A certificate (chain) and key that the node presents to clients."""

    cert: bytes
    key: bytes
    cert_file: str
    key_file: str

    @classmethod
    def load(cls, cert_file: str, key_file: str) -> ServerTls:
        return cls(read_pem(cert_file, "--tls-cert"), read_pem(key_file, "--tls-key"), cert_file, key_file)

    def ssl_context(self) -> ssl.SSLContext:
        """For the HTTP server; ValueError when the key does not match the certificate."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            context.load_cert_chain(self.cert_file, self.key_file)
        except ssl.SSLError as exc:
            raise ValueError(f"--tls-cert/--tls-key: {exc.reason or exc}") from None
        return context

    def grpc_credentials(self) -> grpc.ServerCredentials:
        """Server TLS for the gRPC client API: clients are not asked for certificates."""
        return grpc.ssl_server_credentials([(self.key, self.cert)])


@dataclass(frozen=True, slots=True)
class ClusterTls:
    """The cluster CA and this node's certificate: mutual TLS on every node-to-node connection."""

    ca: bytes
    cert: bytes
    key: bytes

    @classmethod
    def load(cls, ca_file: str, cert_file: str, key_file: str) -> ClusterTls:
        tls = cls(read_pem(ca_file, "--cluster-ca"), read_pem(cert_file, "--node-cert"),
                  read_pem(key_file, "--node-key"))
        check_key_pair(cert_file, key_file, "--node-cert/--node-key")
        return tls

    def server_credentials(self) -> grpc.ServerCredentials:
        """The cluster port: a client certificate signed by the cluster CA is required."""
        return grpc.ssl_server_credentials([(self.key, self.cert)], root_certificates=self.ca,
                                           require_client_auth=True)

    def channel_credentials(self) -> grpc.ChannelCredentials:
        """Dialling a peer: present the node certificate, accept only a peer certificate from the cluster CA."""
        return grpc.ssl_channel_credentials(root_certificates=self.ca, private_key=self.key,
                                            certificate_chain=self.cert)


def check_key_pair(cert_file: str, key_file: str, what: str) -> None:
    """ValueError at start-up (not at the first handshake) when the key does not belong to the certificate."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(cert_file, key_file)
    except ssl.SSLError as exc:
        raise ValueError(f"{what}: {exc.reason or exc}") from None


def channel_credentials(ca_file: str | None = None, cert_file: str | None = None,
                        key_file: str | None = None) -> grpc.ChannelCredentials:
    """Client side: trust ``ca_file`` (None: the system roots); present ``cert_file``/``key_file`` if given."""
    if (cert_file is None) != (key_file is None):
        raise ValueError("a client certificate needs both the certificate and its key")
    return grpc.ssl_channel_credentials(
        root_certificates=read_pem(ca_file, "CA") if ca_file else None,
        private_key=read_pem(key_file, "key") if key_file else None,
        certificate_chain=read_pem(cert_file, "certificate") if cert_file else None)


@dataclass(frozen=True, slots=True)
class NodeTls:
    """What one node runs with; either part may be absent."""

    server: ServerTls | None = None
    cluster: ClusterTls | None = None


def load_node_tls(*, tls_cert: str | None, tls_key: str | None, cluster_ca: str | None, node_cert: str | None,
                  node_key: str | None, clustered: bool) -> NodeTls:
    """Validate the option combinations and read the files; ValueError (the CLI's "cannot start") otherwise."""
    if (tls_cert is None) != (tls_key is None):
        raise ValueError("--tls-cert and --tls-key go together")
    cluster_opts = (cluster_ca, node_cert, node_key)
    if any(o is not None for o in cluster_opts) and not all(o is not None for o in cluster_opts):
        raise ValueError("--cluster-ca, --node-cert and --node-key go together")
    server = None
    if tls_cert is not None and tls_key is not None:
        server = ServerTls.load(tls_cert, tls_key)
        check_key_pair(tls_cert, tls_key, "--tls-cert/--tls-key")
    cluster = None
    if cluster_ca is not None and node_cert is not None and node_key is not None:
        if not clustered:
            raise ValueError("--cluster-ca/--node-cert/--node-key secure a cluster: give --peers too")
        cluster = ClusterTls.load(cluster_ca, node_cert, node_key)
    elif server is not None and clustered:
        # Peers could not verify each other's server certificate: refuse rather than run Raft in clear text
        # next to an HTTPS front door.
        raise ValueError("a cluster member with --tls-cert also needs --cluster-ca/--node-cert/--node-key "
                         "(mutual TLS between the nodes)")
    return NodeTls(server, cluster)


def has_client_certificate(context: grpc.aio.ServicerContext[Any, Any]) -> bool:
    """True when the peer presented a certificate that the TLS layer verified (only the cluster port asks)."""
    auth = context.auth_context()
    return bool(auth.get("x509_pem_cert")) and auth.get("transport_security_type") == [b"ssl"]


Continuation = Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]]


class ClusterServiceGuard(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Answer UNAUTHENTICATED to cluster-service calls on connections without a verified client certificate."""

    async def intercept_service(self, continuation: Continuation,
                                handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None or not handler_call_details.method.startswith(CLUSTER_PREFIX):
            return handler
        kwargs = {"request_deserializer": handler.request_deserializer,
                  "response_serializer": handler.response_serializer}
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(_guard_unary(handler.unary_unary), **kwargs)
        if handler.stream_stream is not None:
            return grpc.stream_stream_rpc_method_handler(_guard_stream(handler.stream_stream), **kwargs)
        raise TypeError(f"{handler_call_details.method}: the cluster services are unary or bidi streams")


async def _refuse(context: grpc.aio.ServicerContext[Any, Any]) -> None:
    await context.abort(grpc.StatusCode.UNAUTHENTICATED, REFUSED)


def _guard_unary(inner: Callable[[Any, Any], Awaitable[Any]]) -> Callable[[Any, Any], Awaitable[Any]]:
    async def guarded(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        if not has_client_certificate(context):
            await _refuse(context)
        return await inner(request, context)
    return guarded


def _guard_stream(inner: Callable[[Any, Any], AsyncIterator[Any]]
                  ) -> Callable[[Any, Any], AsyncIterator[Any]]:
    async def guarded(requests: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
        if not has_client_certificate(context):
            await _refuse(context)
        async for response in inner(requests, context):
            yield response
    return guarded
