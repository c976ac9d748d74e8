"""Consumer groups for streams in the Python client: the raw calls, and a consumer that does the member's work.

    async with AsyncClient("127.0.0.1:7001") as client:
        async with stream_group(client, "orders", "billing", member="m1") as group:
            async for record in group:
                handle(record.data)
                await group.checkpoint(record)   # everything of this shard up to here is done

``GroupConsumer`` joins, heartbeats in the background (every third of the session timeout), reads each assigned
shard with a Streams Tail from where the group's checkpoint says, and follows rebalances: a shard taken away stops
being read and its queued records are dropped; a new one starts at its checkpoint. When a closed shard has been
read to its end and its last record was checkpointed, it checkpoints ``SHARD_END`` itself so that the shard's
children get assigned. Delivery is at-least-once: a new owner re-reads what came after the last checkpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from broker.client.errors import RaftMQError
from proto.broker.v1 import groups_pb2 as pb
from proto.broker.v1 import streams_pb2

if TYPE_CHECKING:
    from broker.client.aio import AsyncClient

groups_grpc: Any = importlib.import_module("proto.broker.v1.groups_pb2_grpc")
SHARD_END = "SHARD_END"


class AsyncGroups:
    """The StreamGroups calls through one ``AsyncClient`` (same nodes, same retries)."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def _unary(self, method: str, request: Any) -> Any:
        timeout = self._client.timeout_s
        return await self._client.retrying(
            lambda stub: getattr(groups_grpc.StreamGroupsStub(stub.channel), method)(request, timeout=timeout))

    async def join(self, stream: str, group: str, member: str, *, session_timeout_ms: int = 0,
                   start: str = "TRIM_HORIZON") -> pb.Assignment:
        request = pb.JoinGroupRequest(stream=stream, group=group, member=member,
                                      session_timeout_ms=session_timeout_ms,
                                      start=pb.JoinGroupRequest.Start.Value(start))
        assignment: pb.Assignment = await self._unary("JoinGroup", request)
        return assignment

    async def heartbeat(self, stream: str, group: str, member: str) -> pb.Assignment:
        assignment: pb.Assignment = await self._unary("Heartbeat", pb.MemberRef(stream=stream, group=group,
                                                                                 member=member))
        return assignment

    async def checkpoint(self, stream: str, group: str, shard_id: str, sequence_number: str, *,
                         member: str = "") -> pb.Assignment:
        """``member`` set: refused (ShardNotOwnedException) unless it owns the shard; empty: no owner check."""
        request = pb.CheckpointRequest(stream=stream, group=group, member=member, shard_id=shard_id,
                                       sequence_number=sequence_number)
        assignment: pb.Assignment = await self._unary("Checkpoint", request)
        return assignment

    async def leave(self, stream: str, group: str, member: str) -> None:
        await self._unary("LeaveGroup", pb.MemberRef(stream=stream, group=group, member=member))

    async def describe(self, stream: str, group: str) -> pb.GroupDescription:
        description: pb.GroupDescription = await self._unary("DescribeGroup", pb.GroupRef(stream=stream,
                                                                                          group=group))
        return description

    async def list_groups(self, stream: str) -> list[str]:
        response: pb.ListGroupsResponse = await self._unary("ListGroups", pb.ListGroupsRequest(stream=stream))
        return list(response.groups)

    async def delete(self, stream: str, group: str) -> None:
        await self._unary("DeleteGroup", pb.GroupRef(stream=stream, group=group))


@dataclass(frozen=True, slots=True)
class GroupRecord:
    """One record handed out by a ``GroupConsumer``; pass it back to ``checkpoint``."""

    shard_id: str
    record: streams_pb2.Record
    epoch: int  # which ownership of the shard it was read under

    @property
    def data(self) -> bytes:
        return self.record.data

    @property
    def partition_key(self) -> str:
        return self.record.partition_key

    @property
    def sequence_number(self) -> str:
        return self.record.sequence_number


@dataclass(frozen=True, slots=True)
class _ShardEnd:
    shard_id: str
    epoch: int


def default_member_id() -> str:
    """Host, process and a random suffix: unique per consumer unless the caller names it (to resume as itself)."""
    return f"{socket.gethostname()}-{os.getpid()}-{os.urandom(3).hex()}"


class GroupConsumer:
    """One member of a group; use ``async with`` (or ``start``/``close``) and ``async for``."""

    def __init__(self, client: AsyncClient, stream: str, group: str, member: str | None = None, *,
                 session_timeout_ms: int = 10_000, start: str = "TRIM_HORIZON", read_limit: int = 1000,
                 buffer: int = 1000) -> None:
        self.stream = stream
        self.group = group
        self.member = member or default_member_id()
        self._client = client
        self._groups = AsyncGroups(client)
        self._session_timeout_ms = session_timeout_ms
        self._start = start
        self._read_limit = read_limit
        self._queue: asyncio.Queue[GroupRecord | _ShardEnd | BaseException] = asyncio.Queue(buffer)
        self._readers: dict[str, asyncio.Task[None]] = {}
        self._epochs: dict[str, int] = {}
        self._next_epoch = 0
        self._delivered: dict[str, str] = {}  # shard -> last sequence number handed out
        self._checkpointed: dict[str, str] = {}  # shard -> last sequence number checkpointed by this consumer
        self._ended: set[str] = set()  # shards read to their end (closed)
        self._retired: set[asyncio.Task[None]] = set()
        self._heartbeats: asyncio.Task[None] | None = None
        self.generation = -1

    @property
    def shards(self) -> list[str]:
        """The shards this member owns in the last assignment it saw."""
        return sorted(self._epochs)

    async def __aenter__(self) -> GroupConsumer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def start(self) -> None:
        assignment = await self._groups.join(self.stream, self.group, self.member,
                                             session_timeout_ms=self._session_timeout_ms, start=self._start)
        self._reconcile(assignment)
        self._heartbeats = asyncio.get_running_loop().create_task(
            self._heartbeat_loop(assignment.session_timeout_ms), name=f"group-heartbeat-{self.member}")

    async def close(self, *, leave: bool = True) -> None:
        """Stop reading and heartbeating; ``leave`` hands the shards over at once (False: as if the process died,
        the shards move when the session expires)."""
        tasks = [*self._readers.values(), *self._retired]
        if self._heartbeats is not None:
            tasks.append(self._heartbeats)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._readers.clear()
        self._retired.clear()
        self._epochs.clear()
        self._heartbeats = None
        if leave:
            with contextlib.suppress(RaftMQError):
                await self._groups.leave(self.stream, self.group, self.member)

    def __aiter__(self) -> GroupConsumer:
        return self

    async def __anext__(self) -> GroupRecord:
        while True:
            item = await self._queue.get()
            if isinstance(item, BaseException):
                raise item
            if self._epochs.get(item.shard_id) != item.epoch:
                continue  # read before the shard was taken away
            if isinstance(item, _ShardEnd):
                self._ended.add(item.shard_id)
                if self._delivered.get(item.shard_id) == self._checkpointed.get(item.shard_id):
                    await self._finish(item.shard_id)
                continue
            self._delivered[item.shard_id] = item.sequence_number
            return item

    async def checkpoint(self, record: GroupRecord) -> None:
        """Mark ``record`` and everything before it in its shard as processed (ShardNotOwnedException when the
        shard has moved to another member)."""
        shard = record.shard_id
        if self._epochs.get(shard) != record.epoch:  # read under an ownership that has since ended
            raise RaftMQError("ShardNotOwnedException", f"Shard {shard} was reassigned after this record was read.")
        last = shard in self._ended and self._delivered.get(shard) == record.sequence_number
        assignment = await self._groups.checkpoint(self.stream, self.group, shard,
                                                   SHARD_END if last else record.sequence_number,
                                                   member=self.member)
        self._checkpointed[shard] = record.sequence_number
        self._reconcile(assignment)

    async def _finish(self, shard: str) -> None:
        assignment = await self._groups.checkpoint(self.stream, self.group, shard, SHARD_END, member=self.member)
        self._reconcile(assignment)

    async def _heartbeat_loop(self, session_timeout_ms: int) -> None:
        interval = session_timeout_ms / 3000
        while True:
            await asyncio.sleep(interval)  # the heartbeat period itself, not a wait for some event
            try:
                assignment = await self._groups.heartbeat(self.stream, self.group, self.member)
            except RaftMQError as exc:
                await self._queue.put(exc)  # e.g. the group or its stream was deleted: the iterator raises it
                return
            self._reconcile(assignment)

    def _reconcile(self, assignment: pb.Assignment) -> None:
        """Stop reading shards no longer assigned, start the new ones at their checkpoints."""
        if assignment.generation < self.generation:
            return  # an older reply that arrived late
        self.generation = assignment.generation
        wanted = {s.shard_id: s for s in assignment.shards}
        for shard in [s for s in self._readers if s not in wanted]:
            task = self._readers.pop(shard)
            task.cancel()
            self._retired.add(task)
            task.add_done_callback(self._retired.discard)
            del self._epochs[shard]
            self._delivered.pop(shard, None)
            self._checkpointed.pop(shard, None)
            self._ended.discard(shard)
        for shard, assigned in wanted.items():
            if shard not in self._readers:
                self._next_epoch += 1
                self._epochs[shard] = self._next_epoch
                if assigned.checkpoint:
                    self._checkpointed[shard] = self._delivered[shard] = assigned.checkpoint
                self._readers[shard] = asyncio.get_running_loop().create_task(
                    self._read(shard, assigned.start, self._next_epoch), name=f"group-read-{shard}")

    async def _read(self, shard: str, start: streams_pb2.Position, epoch: int) -> None:
        try:
            ended = False
            async for response in self._client.streams.tail(self.stream, shard, start, self._read_limit):
                for record in response.records:
                    await self._queue.put(GroupRecord(shard, record, epoch))
                ended = not response.next
            if ended:
                await self._queue.put(_ShardEnd(shard, epoch))
        except RaftMQError as exc:
            await self._queue.put(exc)


def stream_group(client: AsyncClient, stream: str, group: str, member: str | None = None, *,
                 session_timeout_ms: int = 10_000, start: str = "TRIM_HORIZON") -> GroupConsumer:
    """A member of ``group`` on ``stream``: ``async with stream_group(...) as g: async for record in g: ...``."""
    return GroupConsumer(client, stream, group, member, session_timeout_ms=session_timeout_ms, start=start)
