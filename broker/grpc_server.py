"""The node's gRPC server: health checking and reflection, the Raft transport (in a cluster) and the v1 broker API.

Everything that serves on the node's one gRPC port registers itself through ``register`` callbacks before start
(e.g. ``BrokerApi.add_servicers``); services named in ``reflected`` are listed by server reflection, so grpcurl can
call them without the .proto files.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from cluster.transport import SERVER_OPTIONS

Registration = Callable[[grpc.aio.Server], None]


class GrpcServer:
    def __init__(self, host: str, port: int, register: Sequence[Registration] = (),
                 reflected: Sequence[str] = (), interceptors: Sequence[grpc.aio.ServerInterceptor] = ()) -> None:
        # The transport's options: keepalive pings of idle peer streams are allowed, large frames accepted.
        self._server = grpc.aio.server(options=SERVER_OPTIONS, interceptors=list(interceptors))
        self._health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self._health, self._server)
        for add in register:
            add(self._server)
        reflection.enable_server_reflection(
            (health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME, *reflected),
            self._server)
        self.host = host
        self.port = self._server.add_insecure_port(f"{host}:{port}")
        if self.port == 0:
            raise OSError(f"cannot bind gRPC to {host}:{port}")

    async def start(self) -> None:
        await self._server.start()
        await self._health.set("", health_pb2.HealthCheckResponse.SERVING)

    async def stop(self, grace: float) -> None:
        await self._health.enter_graceful_shutdown()
        await self._server.stop(grace)
