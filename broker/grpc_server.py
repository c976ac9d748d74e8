"""The node's gRPC server: health checking and reflection, the Raft transport (in a cluster) and the v1 broker API.

Everything that serves on the node's gRPC port registers itself through ``register`` callbacks before start
(e.g. ``BrokerApi.add_servicers``); services named in ``reflected`` are listed by server reflection, so grpcurl can
call them without the .proto files.

The port is plain or TLS (``credentials``). A cluster secured with mutual TLS adds a second port to the same server
(``cluster_port`` with ``cluster_credentials``, see broker/tls.py): one server, so every service is registered once,
and the interceptors decide per connection what it may call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from broker.grpc_limits import grpc_server_options

Registration = Callable[[grpc.aio.Server], None]


class GrpcServer:
    def __init__(self, host: str, port: int, register: Sequence[Registration] = (),
                 reflected: Sequence[str] = (), interceptors: Sequence[grpc.aio.ServerInterceptor] = (), *,
                 credentials: grpc.ServerCredentials | None = None, cluster_port: int | None = None,
                 cluster_credentials: grpc.ServerCredentials | None = None) -> None:
        # The transport's options: keepalive pings of idle peer streams are allowed, large frames accepted.
        self._server = grpc.aio.server(options=grpc_server_options(), interceptors=list(interceptors))
        self._health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self._health, self._server)
        for add in register:
            add(self._server)
        reflection.enable_server_reflection(
            (health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME, *reflected),
            self._server)
        self.host = host
        self.port = self._bind(host, port, credentials)
        self.cluster_port: int | None = None
        if cluster_port is not None:
            if cluster_port == port and port != 0:
                raise ValueError(f"the client gRPC port (--grpc-port {port}) must differ from the cluster port")
            self.cluster_port = self._bind(host, cluster_port, cluster_credentials)

    def _bind(self, host: str, port: int, credentials: grpc.ServerCredentials | None) -> int:
        address = f"{host}:{port}"
        bound: int = (self._server.add_insecure_port(address) if credentials is None
                      else self._server.add_secure_port(address, credentials))
        if bound == 0:
            raise OSError(f"cannot bind gRPC to {address}")
        return bound

    async def start(self) -> None:
        await self._server.start()
        await self._health.set("", health_pb2.HealthCheckResponse.SERVING)

    async def stop(self, grace: float) -> None:
        await self._health.enter_graceful_shutdown()
        await self._server.stop(grace)
