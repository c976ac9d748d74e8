"""The ``raftmq.broker.v1.StreamGroups`` servicer: protobuf in, ``StreamGroupService`` calls out.

Errors carry the usual ErrorDetail (``broker.grpc_api.errors``); ShardNotOwnedException is FAILED_PRECONDITION
(the caller's view of its assignment is out of date), which the generic table would call INVALID_ARGUMENT.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn, TypeAlias

import grpc

from broker.auth.grpc_auth import caller_account
from broker.grpc_api.errors import DETAIL_KEY, detail_of, status_of
from broker.kinesis.group_service import StreamGroupService
from broker.model import errors
from broker.model.group_commands import LATEST, TRIM_HORIZON
from broker.model.stream_groups import Assignment, ShardNotOwnedException
from proto.broker.v1 import groups_pb2 as pb
from proto.broker.v1 import streams_pb2

Context: TypeAlias = grpc.aio.ServicerContext[Any, Any]
_STARTS = {pb.JoinGroupRequest.TRIM_HORIZON: TRIM_HORIZON, pb.JoinGroupRequest.LATEST: LATEST}
_START_ENUM = {name: value for value, name in _STARTS.items()}


async def _abort(context: Context, exc: BaseException) -> NoReturn:
    detail = detail_of(exc)
    status = (grpc.StatusCode.FAILED_PRECONDITION if detail.code == ShardNotOwnedException.code
              else status_of(detail))
    await context.abort(status, f"{detail.code}: {detail.message}",
                        trailing_metadata=((DETAIL_KEY, detail.SerializeToString()),))
    raise AssertionError("unreachable: context.abort raises")  # pragma: no cover


def assignment_pb(assignment: Assignment) -> pb.Assignment:
    """Each shard with the position to read it from: after its checkpoint, else its oldest record."""
    shards = []
    for shard in assignment.shards:
        if shard.checkpoint:
            start = streams_pb2.Position(type=streams_pb2.Position.AFTER_SEQUENCE_NUMBER,
                                         sequence_number=shard.checkpoint)
        else:
            start = streams_pb2.Position(type=streams_pb2.Position.TRIM_HORIZON)
        shards.append(pb.AssignedShard(shard_id=shard.shard_id, checkpoint=shard.checkpoint, start=start))
    return pb.Assignment(generation=assignment.generation, shards=shards,
                         session_timeout_ms=assignment.session_timeout_ms)


class StreamGroupsServicer:
    """Serves groups once ``service`` yields one; UNAVAILABLE before (node starting)."""

    def __init__(self, service: Callable[[], StreamGroupService | None], account_id: str) -> None:
        self._get = service
        self._node_account = account_id

    @property
    def _account(self) -> str:
        """The caller's account (set by gRPC authentication), else the node's: groups belong to the stream's."""
        return caller_account(self._node_account)

    def _service(self) -> StreamGroupService:
        service = self._get()
        if service is None:
            raise errors.ServiceUnavailable("Service is unable to handle request: the node is starting.")
        return service

    async def JoinGroup(self, request: pb.JoinGroupRequest, context: Context) -> pb.Assignment:
        try:
            assignment = await self._service().join(
                self._account, request.stream, request.group, request.member,
                session_timeout_ms=request.session_timeout_ms, start=_STARTS.get(request.start, "?"))
        except Exception as exc:
            await _abort(context, exc)
        return assignment_pb(assignment)

    async def Heartbeat(self, request: pb.MemberRef, context: Context) -> pb.Assignment:
        try:
            assignment = await self._service().heartbeat(self._account, request.stream, request.group,
                                                         request.member)
        except Exception as exc:
            await _abort(context, exc)
        return assignment_pb(assignment)

    async def Checkpoint(self, request: pb.CheckpointRequest, context: Context) -> pb.Assignment:
        try:
            assignment = await self._service().checkpoint(self._account, request.stream, request.group,
                                                          request.member, request.shard_id,
                                                          request.sequence_number)
        except Exception as exc:
            await _abort(context, exc)
        return assignment_pb(assignment)

    async def LeaveGroup(self, request: pb.MemberRef, context: Context) -> pb.GroupsEmpty:
        try:
            await self._service().leave(self._account, request.stream, request.group, request.member)
        except Exception as exc:
            await _abort(context, exc)
        return pb.GroupsEmpty()

    async def DescribeGroup(self, request: pb.GroupRef, context: Context) -> pb.GroupDescription:
        try:
            view = await self._service().describe(self._account, request.stream, request.group)
        except Exception as exc:
            await _abort(context, exc)
        return pb.GroupDescription(
            stream=view.stream, group=view.group, generation=view.generation,
            session_timeout_ms=view.session_timeout_ms, start=_START_ENUM[view.start], created_ms=view.created_ms,
            members=[pb.GroupMember(member=m.member, session_expires_ms=m.session_expires_ms, shard_ids=m.shard_ids)
                     for m in view.members],
            shards=[pb.ShardCheckpoint(shard_id=s.shard_id, sequence_number=s.checkpoint, owner=s.owner)
                    for s in view.shards])

    async def ListGroups(self, request: pb.ListGroupsRequest, context: Context) -> pb.ListGroupsResponse:
        try:
            names = await self._service().list_groups(self._account, request.stream)
        except Exception as exc:
            await _abort(context, exc)
        return pb.ListGroupsResponse(groups=names)

    async def DeleteGroup(self, request: pb.GroupRef, context: Context) -> pb.GroupsEmpty:
        try:
            await self._service().delete(self._account, request.stream, request.group)
        except Exception as exc:
            await _abort(context, exc)
        return pb.GroupsEmpty()
