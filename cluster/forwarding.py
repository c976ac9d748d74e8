"""Node-to-node RPCs besides the Raft stream: followers forward proposals to the leader; operators administer.

``RaftForward.Forward`` appends a follower's batch of proposals on the leader and answers with their (index, term):
the follower then waits until it has applied that index itself and returns its own apply result (apply is
deterministic). ``RaftAdmin`` answers ``status`` locally and runs membership changes and leadership transfer on the
leader (a follower passes them on). ``AdminClient`` is what the CLI uses to talk to any node.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Protocol

import grpc

from cluster.api import NotLeader
from proto.cluster.v1 import transport_pb2 as pb

pb_grpc: Any = importlib.import_module("proto.cluster.v1.transport_pb2_grpc")

MAX_FORWARD_BYTES = 3 << 20  # one Forward request stays under gRPC's default 4 MiB receive limit


class AdminError(Exception):
    """A membership change or transfer was refused (``reason``: e.g. "conf change pending", "not leader")."""

    def __init__(self, reason: str, leader_hint: str = "") -> None:
        super().__init__(f"{reason} (leader: {leader_hint or 'unknown'})")
        self.reason = reason
        self.leader_hint = leader_hint


@dataclass(frozen=True, slots=True)
class PeerInfo:
    node_id: str
    match: int
    next: int
    state: str
    learner: bool
    recent_active: bool
    lag: int
    address: str


@dataclass(frozen=True, slots=True)
class ClusterStatus:
    """One node's view; ``peers`` (replication progress and lag) is filled on the leader only."""

    node_id: str
    leader: str
    term: int
    role: str
    commit: int
    applied: int
    first_index: int
    last_index: int
    snapshot_index: int
    voters: tuple[str, ...]
    learners: tuple[str, ...]
    peers: tuple[PeerInfo, ...] = field(default=())

    def to_pb(self) -> pb.StatusResponse:
        return pb.StatusResponse(
            node_id=self.node_id, leader=self.leader, term=self.term, role=self.role, commit=self.commit,
            applied=self.applied, first_index=self.first_index, last_index=self.last_index,
            snapshot_index=self.snapshot_index, voters=list(self.voters), learners=list(self.learners),
            peers=[pb.PeerProgress(node_id=p.node_id, match=p.match, next=p.next, state=p.state, learner=p.learner,
                                   recent_active=p.recent_active, lag=p.lag, address=p.address)
                   for p in self.peers])

    @staticmethod
    def from_pb(r: pb.StatusResponse) -> ClusterStatus:
        return ClusterStatus(
            r.node_id, r.leader, r.term, r.role, r.commit, r.applied, r.first_index, r.last_index,
            r.snapshot_index, tuple(r.voters), tuple(r.learners),
            tuple(PeerInfo(p.node_id, p.match, p.next, p.state, p.learner, p.recent_active, p.lag, p.address)
                  for p in r.peers))

    def as_dict(self) -> dict[str, object]:
        """JSON-friendly form for the CLI."""
        return {
            "node_id": self.node_id, "leader": self.leader, "term": self.term, "role": self.role,
            "commit": self.commit, "applied": self.applied, "first_index": self.first_index,
            "last_index": self.last_index, "snapshot_index": self.snapshot_index, "voters": list(self.voters),
            "learners": list(self.learners),
            "peers": [{"node_id": p.node_id, "match": p.match, "next": p.next, "state": p.state,
                       "learner": p.learner, "recent_active": p.recent_active, "lag": p.lag, "address": p.address}
                      for p in self.peers],
        }


class ClusterNode(Protocol):
    """What the servicers need from the replicator (``cluster.runtime.RaftReplicator``)."""

    cluster_id: str

    async def accept_forwarded(self, datas: list[bytes]) -> list[tuple[int, int]]:
        """Append ``datas`` as one batch if this node leads; raise NotLeader otherwise."""
        ...

    def status(self) -> ClusterStatus: ...

    async def add_node(self, node_id: str, address: str) -> None: ...

    async def remove_node(self, node_id: str) -> None: ...

    async def transfer_leader(self, node_id: str) -> None: ...


# -- client side ---------------------------------------------------------------------------------------------------

async def forward(channel: grpc.aio.Channel, cluster_id: str, datas: list[bytes], timeout: float
                  ) -> list[tuple[int, int]]:
    """Ask the leader behind ``channel`` to append ``datas``; raise NotLeader if it refused (nothing appended).

    gRPC errors propagate: then the outcome is unknown (the leader may have appended).
    """
    stub = pb_grpc.RaftForwardStub(channel)
    resp = await stub.Forward(pb.ForwardRequest(cluster_id=cluster_id, data=datas), timeout=timeout)
    if resp.rejected:
        raise NotLeader(resp.leader_hint or None)
    if len(resp.positions) != len(datas):
        raise AssertionError(f"leader answered {len(resp.positions)} positions for {len(datas)} proposals")
    return [(p.index, p.term) for p in resp.positions]


def _raise_admin(resp: pb.AdminResponse) -> None:
    if not resp.ok:
        raise AdminError(resp.error, resp.leader_hint)


async def admin_call(channel: grpc.aio.Channel, op: str, node_id: str, address: str = "", timeout: float = 30.0
                     ) -> None:
    """Run ``op`` ("add", "remove", "transfer") on the node behind ``channel``; AdminError if refused."""
    stub = pb_grpc.RaftAdminStub(channel)
    if op == "add":
        resp = await stub.AddNode(pb.AddNodeRequest(node_id=node_id, address=address), timeout=timeout)
    elif op == "remove":
        resp = await stub.RemoveNode(pb.RemoveNodeRequest(node_id=node_id), timeout=timeout)
    elif op == "transfer":
        resp = await stub.TransferLeader(pb.TransferLeaderRequest(node_id=node_id), timeout=timeout)
    else:
        raise ValueError(op)
    _raise_admin(resp)


class AdminClient:
    """The operator's view of a cluster through any one node (``raftmq cluster status|add-node|...``)."""

    def __init__(self, address: str, credentials: grpc.ChannelCredentials | None = None) -> None:
        """``credentials``: for a cluster secured with mutual TLS, the cluster CA and a certificate it signed."""
        self._channel = (grpc.aio.insecure_channel(address) if credentials is None
                         else grpc.aio.secure_channel(address, credentials))

    async def status(self, timeout: float = 5.0) -> ClusterStatus:
        resp = await pb_grpc.RaftAdminStub(self._channel).Status(pb.StatusRequest(), timeout=timeout)
        return ClusterStatus.from_pb(resp)

    async def add_node(self, node_id: str, address: str, timeout: float = 60.0) -> None:
        await admin_call(self._channel, "add", node_id, address, timeout)

    async def remove_node(self, node_id: str, timeout: float = 30.0) -> None:
        await admin_call(self._channel, "remove", node_id, timeout=timeout)

    async def transfer_leader(self, node_id: str, timeout: float = 30.0) -> None:
        await admin_call(self._channel, "transfer", node_id, timeout=timeout)

    async def close(self) -> None:
        await self._channel.close(None)


# -- server side ---------------------------------------------------------------------------------------------------

class ForwardServicer:
    """``RaftForward`` on the leader: append the follower's batch, answer with positions (or a rejection)."""

    def __init__(self, node: ClusterNode) -> None:
        self._node = node

    async def Forward(self, request: pb.ForwardRequest, context: grpc.aio.ServicerContext) -> pb.ForwardResponse:
        if request.cluster_id != self._node.cluster_id:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "wrong cluster")
        try:
            positions = await self._node.accept_forwarded(list(request.data))
        except NotLeader as exc:
            return pb.ForwardResponse(rejected=True, leader_hint=exc.leader_hint or "")
        return pb.ForwardResponse(positions=[pb.Position(index=i, term=t) for i, t in positions])


class AdminServicer:
    """``RaftAdmin``: status of this node; membership and transfer run on the leader."""

    def __init__(self, node: ClusterNode) -> None:
        self._node = node

    async def Status(self, request: pb.StatusRequest, context: grpc.aio.ServicerContext) -> pb.StatusResponse:
        return self._node.status().to_pb()

    async def AddNode(self, request: pb.AddNodeRequest, context: grpc.aio.ServicerContext) -> pb.AdminResponse:
        if not request.node_id or not request.address:
            return pb.AdminResponse(ok=False, error="node_id and address are required")
        return await self._run(self._node.add_node(request.node_id, request.address))

    async def RemoveNode(self, request: pb.RemoveNodeRequest, context: grpc.aio.ServicerContext
                         ) -> pb.AdminResponse:
        return await self._run(self._node.remove_node(request.node_id))

    async def TransferLeader(self, request: pb.TransferLeaderRequest, context: grpc.aio.ServicerContext
                             ) -> pb.AdminResponse:
        return await self._run(self._node.transfer_leader(request.node_id))

    @staticmethod
    async def _run(op: Any) -> pb.AdminResponse:
        try:
            await op
        except AdminError as exc:
            return pb.AdminResponse(ok=False, error=exc.reason, leader_hint=exc.leader_hint)
        except NotLeader as exc:
            return pb.AdminResponse(ok=False, error="not leader", leader_hint=exc.leader_hint or "")
        except ValueError as exc:  # a malformed request (e.g. a bad node id)
            return pb.AdminResponse(ok=False, error=str(exc))
        return pb.AdminResponse(ok=True)


def add_services(server: grpc.aio.Server, node: ClusterNode) -> None:
    pb_grpc.add_RaftForwardServicer_to_server(ForwardServicer(node), server)
    pb_grpc.add_RaftAdminServicer_to_server(AdminServicer(node), server)
