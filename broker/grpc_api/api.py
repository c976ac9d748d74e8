"""The seam between the composition root and the v1 servicers: register them early, bind the services later.

The node's gRPC server must start before the replicator (peers connect to it), while the services need a started
replicator; so the servicers are registered at construction and answer UNAVAILABLE until ``bind`` gives them the
services. Clients retry UNAVAILABLE, so a node that is still starting looks like a node that is briefly busy.
"""

from __future__ import annotations

import importlib
from typing import Any

import grpc

from broker.grpc_api.admin import AdminServicer
from broker.grpc_api.groups import StreamGroupsServicer
from broker.grpc_api.queues import QueuesServicer
from broker.grpc_api.streams import StreamsServicer
from broker.grpc_api.topics import TopicsServicer
from broker.kinesis.group_service import StreamGroupService
from broker.kinesis.service import KinesisService
from broker.sns.service import SnsService
from broker.sqs.service import SqsService
from cluster.forwarding import ClusterNode
from proto.broker.v1 import admin_pb2, groups_pb2, queues_pb2, streams_pb2, topics_pb2

# Generated gRPC glue has no type hints; imported dynamically as cluster/transport.py does.
queues_grpc: Any = importlib.import_module("proto.broker.v1.queues_pb2_grpc")
streams_grpc: Any = importlib.import_module("proto.broker.v1.streams_pb2_grpc")
admin_grpc: Any = importlib.import_module("proto.broker.v1.admin_pb2_grpc")
topics_grpc: Any = importlib.import_module("proto.broker.v1.topics_pb2_grpc")
groups_grpc: Any = importlib.import_module("proto.broker.v1.groups_pb2_grpc")

SERVICE_NAMES = (queues_pb2.DESCRIPTOR.services_by_name["Queues"].full_name,
                 streams_pb2.DESCRIPTOR.services_by_name["Streams"].full_name,
                 topics_pb2.DESCRIPTOR.services_by_name["Topics"].full_name,
                 admin_pb2.DESCRIPTOR.services_by_name["Admin"].full_name,
                 groups_pb2.DESCRIPTOR.services_by_name["StreamGroups"].full_name)


class BrokerApi:
    """Every v1 service of one node."""

    def __init__(self, account_id: str, region: str, node_id: str = "n1",
                 cluster: ClusterNode | None = None) -> None:
        self._sqs: SqsService | None = None
        self._kinesis: KinesisService | None = None
        self._sns: SnsService | None = None
        self._groups: StreamGroupService | None = None
        self.admin = AdminServicer(lambda: cluster, node_id)
        self.queues = QueuesServicer(lambda: self._sqs, account_id, region)
        self.streams = StreamsServicer(lambda: self._kinesis, account_id, region)
        self.topics = TopicsServicer(lambda: self._sns, account_id, region)
        self.groups = StreamGroupsServicer(lambda: self._groups, account_id)

    def bind(self, *, sqs: SqsService | None = None, kinesis: KinesisService | None = None,
             sns: SnsService | None = None, groups: StreamGroupService | None = None) -> None:
        """Give the servicers their services (each may be bound separately, as the node builds them)."""
        if sqs is not None:
            self._sqs = sqs
        if kinesis is not None:
            self._kinesis = kinesis
        if sns is not None:
            self._sns = sns
        if groups is not None:
            self._groups = groups

    def add_servicers(self, server: grpc.aio.Server) -> None:
        """A ``broker.grpc_server.Registration``."""
        queues_grpc.add_QueuesServicer_to_server(self.queues, server)
        streams_grpc.add_StreamsServicer_to_server(self.streams, server)
        admin_grpc.add_AdminServicer_to_server(self.admin, server)
        topics_grpc.add_TopicsServicer_to_server(self.topics, server)
        groups_grpc.add_StreamGroupsServicer_to_server(self.groups, server)
