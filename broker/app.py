"""The composition root: the only place that wires storage, replication, model and front ends together.

Start order: lock the data dir, open LMDB, rebuild the model, start the commit loop, then listeners. Stop order is
the reverse with one twist: long polls are ended first so that HTTP's graceful drain is not held up by them.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Sequence

import grpc

from broker import metrics
from broker.auth import Authenticator, build_authenticator
from broker.auth.resource_policies import resource_policy_lookup
from broker.aws.gateway import AwsGateway
from broker.config import NodeConfig
from broker.datadir import DataDirLock
from broker.grpc_api import BrokerApi
from broker.grpc_api.api import SERVICE_NAMES as API_SERVICES
from broker.grpc_api.guard import grpc_auth_interceptor
from broker.grpc_api.parse_guard import RequestParseGuard
from broker.grpc_server import GrpcServer, Registration
from broker.http.routes import operational_routes
from broker.http.server import HttpServer
from broker.kinesis.config import KinesisConfig
from broker.kinesis.front import SubscribeFront
from broker.kinesis.group_service import StreamGroupService
from broker.kinesis.service import KinesisService
from broker.kms.node import load_key_file, node_sealer
from broker.limits_wiring import http_limits, request_throttle
from broker.model.kinesis_model import KinesisModel
from broker.model.sns_model import SnsModel
from broker.model.sqs_model import SqsModel
from broker.model.stream_groups import StreamGroupsModel
from broker.notify import Notifier
from broker.replication import ClientFacingReplicator
from broker.sns.delivery import DeliveryWorker
from broker.sns.keys import SigningKeys
from broker.sns.routes import sns_routes
from broker.sns.service import SnsService
from broker.sqs.service import SqsConfig, SqsService
from broker.state_machine import BrokerStateMachine
from broker.sts import StsService
from broker.tls import ClusterServiceGuard, NodeTls, load_node_tls
from cluster.local import LocalReplicator
from cluster.runtime import RaftReplicator, RaftSettings, parse_peers
from storage.lmdb_store import LmdbStore

log = logging.getLogger(__name__)


def _observe_commit(entries: int, seconds: float) -> None:
    metrics.FSYNC_SECONDS.observe(seconds)
    metrics.COMMIT_BATCH.observe(entries)


class BrokerApp:
    """One broker node."""

    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        self.data_dir = os.path.abspath(config.data_dir)
        self._lock = DataDirLock(self.data_dir)
        self._tls = NodeTls()
        self._store: LmdbStore | None = None
        self._replicator: LocalReplicator | RaftReplicator | None = None
        self._notifier = Notifier()
        self._http: HttpServer | None = None
        self._grpc: GrpcServer | None = None
        self._maintenance_stop = asyncio.Event()
        self._maintenance: asyncio.Task[None] | None = None
        self._sns_delivery: asyncio.Task[None] | None = None
        self._groups_expiry: asyncio.Task[None] | None = None
        self._sqs: SqsService | None = None
        self._serving = False

    async def start(self) -> None:
        config = self.config
        # Refuses (ValueError) before anything is opened: dev mode off loopback, or a bad credentials file.
        tls = self._tls = load_node_tls(tls_cert=config.tls_cert, tls_key=config.tls_key,
                                        cluster_ca=config.cluster_ca, node_cert=config.node_cert,
                                        node_key=config.node_key, clustered=bool(config.peers))
        if tls.cluster is not None and config.node_id not in parse_peers(config.peers or ""):
            raise ValueError(f"with --cluster-ca, list {config.node_id} in --peers (also with --join): its entry is "
                             "its mutual-TLS cluster port, --grpc-port the client API's")
        auth = build_authenticator(config.host, config.credentials_file, config.insecure, config.account_id,
                                   secure_transport=tls.server is not None)
        # Abuse limits (docs/security.md); a malformed option is a ValueError before anything is opened.
        limits, throttle = http_limits(config), request_throttle(config)
        keyring = load_key_file(config.kms_keys_file)  # KeyFileError (a ValueError) before anything is opened
        self._lock.acquire()
        self._store = LmdbStore(self.data_dir)
        model = SqsModel()
        kinesis_model = KinesisModel()
        sns_model = SnsModel(model)
        groups_model = StreamGroupsModel(kinesis_model)
        state_machine = BrokerStateMachine(model, self._notifier, kinesis_model, sns_model, groups_model)
        registrations = []
        if config.peers:
            raft = RaftReplicator(self._store, state_machine, self._raft_settings(), on_commit=_observe_commit)
            registrations.append(raft.register)
            self._replicator = raft
        else:
            self._replicator = LocalReplicator(self._store, state_machine, on_commit=_observe_commit)
        replicator = self._replicator
        api = BrokerApi(config.account_id, config.region, config.node_id,  # UNAVAILABLE until bound to services
                        cluster=replicator if isinstance(replicator, RaftReplicator) else None)
        # With --credentials every v1 gRPC call must carry a token signed with the same keys (broker.grpc_api.guard).
        guard = ([grpc_auth_interceptor(auth, config.credentials_file, config.account_id, config.region,
                                        secure_transport=tls.server is not None)]
                 if isinstance(auth, Authenticator) and config.credentials_file else [])
        # Unparseable request bytes are answered first (INVALID_ARGUMENT), before anything reads the request.
        self._grpc = self._grpc_server([*registrations, api.add_servicers], [RequestParseGuard(), *guard])
        await self._grpc.start()
        replicator.start()
        client_replicator = ClientFacingReplicator(replicator)
        is_leader = (lambda: replicator.is_leader) if isinstance(replicator, RaftReplicator) else (lambda: True)
        sealer = node_sealer(keyring, kinesis_model, sns_model)
        sqs = SqsService(model, client_replicator, self._notifier,
                         SqsConfig(account_id=config.account_id, region=config.region), is_leader=is_leader,
                         sealer=sealer, ensure_root=SigningKeys(sns_model, client_replicator).signer)
        api.bind(sqs=sqs)
        metrics.register_queue_gauges(lambda: model.gauges(replicator.now_ms()))
        # Rows are read back through the replicator's tables: pending state rows over LMDB (records themselves are
        # payload rows, on disk with their batch).
        kinesis = KinesisService(kinesis_model, client_replicator, replicator.tables, self._notifier,
                                 KinesisConfig.from_env(config.account_id, config.region), is_leader=is_leader,
                                 sealer=sealer)
        api.bind(kinesis=kinesis)
        kinesis.start()  # its maintenance task ends when the notifier closes at shutdown
        groups = StreamGroupService(groups_model, client_replicator, is_leader=is_leader)
        api.bind(groups=groups)
        sns_keys = SigningKeys(sns_model, client_replicator)
        sns_worker = DeliveryWorker(sns_model, client_replicator, sns_keys.signer, is_leader)
        sns = SnsService(sns_model, client_replicator, sns_keys, config.account_id, config.region,
                         on_delivery=sns_worker.kick)
        api.bind(sns=sns)
        gateway = SubscribeFront(  # SubscribeToShard answers with an event stream, not one body
            AwsGateway({"sqs": sqs, "sts": StsService(), "kinesis": kinesis, "sns": sns}, config.account_id,
                       config.region, config.public_endpoint, authenticator=auth,
                       scheme="https" if tls.server is not None else "http", throttle=throttle),
            kinesis, config.account_id, config.region, authenticator=auth)
        if isinstance(auth, Authenticator):
            auth.set_resource_policies(resource_policy_lookup(model, sns_model))
        self._http = HttpServer(gateway, config.host, config.port, limits=limits,
                                       routes={**operational_routes(self._healthy), **sns_routes(sns_keys)},
                                       ssl_context=tls.server.ssl_context() if tls.server is not None else None)
        await self._http.start()
        self._maintenance = asyncio.get_running_loop().create_task(
            sqs.run_maintenance(self._maintenance_stop), name="sqs-maintenance")
        self._sns_delivery = asyncio.get_running_loop().create_task(
            sns_worker.run(self._maintenance_stop), name="sns-delivery")
        self._groups_expiry = asyncio.get_running_loop().create_task(
            groups.run_maintenance(self._maintenance_stop), name="stream-groups-expiry")
        self._sqs = sqs
        self._serving = True
        log.info("event=started endpoint=%s grpc=%s:%d data_dir=%s node=%s cluster=%s", self.endpoint,
                 self.config.host, self.grpc_port, self.data_dir, config.node_id, config.peers or "single-node")

    def _raft_settings(self) -> RaftSettings:
        config = self.config
        assert config.peers
        peers = parse_peers(config.peers)
        if config.node_id not in peers and not config.join:
            raise ValueError(f"--node-id {config.node_id} is not in --peers (use --join to join an existing cluster)")
        return RaftSettings(node_id=config.node_id, peers=peers, join=config.join,
                            address=peers.get(config.node_id, f"{config.host}:{config.grpc_port}"),
                            tick_s=config.raft_tick_s, election_ticks=config.raft_election_ticks,
                            cluster_id=config.cluster_id,
                            channel_credentials=self._tls.cluster.channel_credentials() if self._tls.cluster else None)

    def _grpc_server(self, register: list[Registration], guard: Sequence[grpc.aio.ServerInterceptor]) -> GrpcServer:
        """One port as before; with a cluster CA two: the cluster port (mutual TLS) and the client port
        (--grpc-port), with the cluster services refused on connections without a cluster certificate."""
        config, tls = self.config, self._tls
        server_creds = tls.server.grpc_credentials() if tls.server is not None else None
        if tls.cluster is None:
            return GrpcServer(config.host, self._grpc_bind_port(), register, reflected=API_SERVICES,
                              interceptors=guard, credentials=server_creds)
        return GrpcServer(config.host, config.grpc_port, register, reflected=API_SERVICES,
                          interceptors=[ClusterServiceGuard(), *guard], credentials=server_creds,
                          cluster_port=self._grpc_bind_port(), cluster_credentials=tls.cluster.server_credentials())

    def _grpc_bind_port(self) -> int:
        """In a cluster the gRPC port is the one this node advertises in --peers."""
        config = self.config
        if config.peers:
            own = parse_peers(config.peers).get(config.node_id)
            if own is not None:
                return int(own.rpartition(":")[2])
        return config.grpc_port

    def _healthy(self) -> bool:
        """Serving, and in a cluster: the node's disk has not failed and it knows a leader (a node cut off from
        the majority answers 503, so a load balancer routes around it)."""
        replicator = self._replicator
        if isinstance(replicator, RaftReplicator) and (replicator.failed is not None or not replicator.leader):
            return False
        return self._serving

    @property
    def endpoint(self) -> str:
        assert self._http is not None
        return f"{self._http.scheme}://{self._http.host}:{self._http.port}"

    @property
    def grpc_port(self) -> int:
        assert self._grpc is not None
        port: int = self._grpc.port
        return port

    def ready_line(self) -> str:
        return (f"RaftMQ ready: endpoint={self.endpoint} grpc={self.config.host}:{self.grpc_port} "
                f"data_dir={self.data_dir} node={self.config.node_id}")

    async def stop(self) -> None:
        """Graceful: end long polls, drain HTTP and gRPC, commit what was proposed, close LMDB; errors collected."""
        self._serving = False
        failures: list[BaseException] = []
        if self._sqs is not None:
            self._sqs.close()
        self._notifier.close()
        if self._http is not None:
            try:
                await self._http.stop(self.config.shutdown_grace_s)
            except Exception as exc:
                failures.append(exc)
        self._maintenance_stop.set()
        if self._maintenance is not None:
            await asyncio.gather(self._maintenance, return_exceptions=True)
        if self._sns_delivery is not None:
            await asyncio.gather(self._sns_delivery, return_exceptions=True)
        if self._groups_expiry is not None:
            await asyncio.gather(self._groups_expiry, return_exceptions=True)
        # The replicator stops before gRPC so that a leader can hand over to a peer over the still-open streams.
        if self._replicator is not None:
            try:
                await self._replicator.stop()
            except Exception as exc:
                failures.append(exc)
        if self._grpc is not None:
            try:
                await self._grpc.stop(1.0)
            except Exception as exc:
                failures.append(exc)
        if self._store is not None:
            self._store.close()
        self._lock.release()
        for failure in failures:
            log.error("event=stop-failed error=%r", failure)
        log.info("event=stopped")
