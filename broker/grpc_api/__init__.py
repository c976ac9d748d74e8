"""The native gRPC API (proto/broker/v1): servicers that translate protobuf to the services' model commands."""

from broker.grpc_api.api import BrokerApi

__all__ = ["BrokerApi"]
