"""The ``raftmq.broker.v1.Admin`` servicer: the Raft node's status, membership and leadership transfer.

A thin public face of what ``cluster.forwarding.ClusterNode`` offers (the internal RaftAdmin service serves the
same operations to peers and the CLI); refusals become BrokerErrors so they carry the v1 error detail.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias

import grpc

from broker.grpc_api.errors import abort
from broker.model import errors
from cluster.api import NotLeader
from cluster.forwarding import AdminError, ClusterNode, ClusterStatus
from proto.broker.v1 import admin_pb2 as pb

Context: TypeAlias = grpc.aio.ServicerContext[Any, Any]


class NotLeaderError(errors.BrokerError):
    """No leader right now (an election): retryable."""

    code = "NotLeader"
    status = 503
    sender_fault = False


class AdminFailed(errors.BrokerError):
    """The leader refused the change (a change pending, not a voter, a transfer that timed out)."""

    code = "ClusterAdminFailed"
    status = 409


class AdminServicer:
    """``cluster`` yields the Raft node, or None on a single node started without --peers."""

    def __init__(self, cluster: Callable[[], ClusterNode | None], node_id: str) -> None:
        self._cluster = cluster
        self._node_id = node_id

    def _node(self) -> ClusterNode:
        node = self._cluster()
        if node is None:
            raise errors.UnsupportedOperation("This node runs alone (started without --peers): no membership.")
        return node

    async def ClusterStatus(self, request: pb.ClusterStatusRequest, context: Context) -> pb.ClusterStatusResponse:
        node = self._cluster()
        if node is None:
            return pb.ClusterStatusResponse(node_id=self._node_id, leader=self._node_id, role="leader",
                                            voters=[self._node_id])
        return _status(node.status())

    async def AddNode(self, request: pb.AddNodeRequest, context: Context) -> pb.AdminEmpty:
        if not request.node_id or not request.address:
            await abort(context, errors.MissingParameter("node_id and address are required."))
        return await self._run(context, lambda node: node.add_node(request.node_id, request.address))

    async def RemoveNode(self, request: pb.NodeRef, context: Context) -> pb.AdminEmpty:
        return await self._run(context, lambda node: node.remove_node(request.node_id))

    async def TransferLeadership(self, request: pb.NodeRef, context: Context) -> pb.AdminEmpty:
        return await self._run(context, lambda node: node.transfer_leader(request.node_id))

    async def _run(self, context: Context, op: Callable[[ClusterNode], Awaitable[None]]) -> pb.AdminEmpty:
        try:
            await op(self._node())
        except (NotLeader, AdminError) as exc:
            reason = getattr(exc, "reason", "not leader")
            if reason == "not leader":
                await abort(context, NotLeaderError(f"No leader is available right now ({exc})."))
            await abort(context, AdminFailed(str(exc)))
        except ValueError as exc:  # a malformed node id
            await abort(context, errors.InvalidParameterValue(str(exc)))
        except Exception as exc:
            await abort(context, exc)
        return pb.AdminEmpty()


def _status(status: ClusterStatus) -> pb.ClusterStatusResponse:
    return pb.ClusterStatusResponse(
        node_id=status.node_id, leader=status.leader, term=status.term, role=status.role, commit=status.commit,
        applied=status.applied, voters=list(status.voters), learners=list(status.learners),
        peers=[pb.PeerProgress(node_id=p.node_id, address=p.address, match=p.match, lag=p.lag, state=p.state,
                               learner=p.learner, recent_active=p.recent_active) for p in status.peers])
