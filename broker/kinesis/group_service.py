"""Consumer groups for streams as a service: checks requests, proposes group commands, runs the expiry sweep.

Changes are replicated commands answered once applied (``broker.replication.propose``); reads (describe, list)
wait for ``read_barrier`` and then read the model. The sweep runs on the leader only (followers would propose the
same command): it proposes ``ExpireMembers`` when the earliest session ends, so a silent member's shards move even
when no other member calls in.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass

from broker.model.commands import Command
from broker.model.group_commands import (
    LATEST,
    TRIM_HORIZON,
    Checkpoint,
    DeleteGroup,
    ExpireMembers,
    GroupHeartbeat,
    JoinGroup,
    LeaveGroup,
)
from broker.model.kinesis_errors import InvalidArgumentException
from broker.model.kinesis_keys import shard_id
from broker.model.stream_groups import Assignment, StreamGroupsModel
from broker.replication import propose
from cluster.api import Replicator

log = logging.getLogger(__name__)

DEFAULT_SESSION_TIMEOUT_MS = 10_000
MIN_SESSION_TIMEOUT_MS = 200
MAX_SESSION_TIMEOUT_MS = 600_000
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,128}")
_MEMBER = re.compile(r"[\x21-\x7e]{1,256}")  # printable ASCII without spaces: ids show up in logs and describe


@dataclass(frozen=True, slots=True)
class MemberView:
    member: str
    session_expires_ms: int
    shard_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ShardView:
    shard_id: str
    checkpoint: str
    owner: str


@dataclass(frozen=True, slots=True)
class GroupView:
    """A consistent copy of one group for DescribeGroup (the model's objects change under later commands)."""

    stream: str
    group: str
    generation: int
    session_timeout_ms: int
    start: str
    created_ms: int
    members: tuple[MemberView, ...]
    shards: tuple[ShardView, ...]


def _check_name(kind: str, value: str, pattern: re.Pattern[str] = _NAME) -> str:
    if not pattern.fullmatch(value):
        raise InvalidArgumentException(f"Invalid {kind} {value!r}: expected {pattern.pattern}.")
    return value


class StreamGroupService:
    """Consumer groups over the replicated model; ``is_leader`` gates the expiry sweep."""

    def __init__(self, model: StreamGroupsModel, replicator: Replicator, *,
                 is_leader: Callable[[], bool] = lambda: True, sweep_interval_s: float = 1.0) -> None:
        self._model = model
        self._rep = replicator
        self._is_leader = is_leader
        self._interval = sweep_interval_s

    async def _propose(self, command: Command) -> object:
        return await propose(self._rep, command)

    async def _assignment(self, command: Command) -> Assignment:
        reply = await self._propose(command)
        assert isinstance(reply, Assignment)
        return reply

    @staticmethod
    def _ref(stream: str, group: str) -> tuple[str, str]:
        return _check_name("stream name", stream), _check_name("group name", group)

    async def join(self, account: str, stream: str, group: str, member: str, *, session_timeout_ms: int = 0,
                   start: str = TRIM_HORIZON) -> Assignment:
        stream, group = self._ref(stream, group)
        timeout = session_timeout_ms or DEFAULT_SESSION_TIMEOUT_MS
        if not MIN_SESSION_TIMEOUT_MS <= timeout <= MAX_SESSION_TIMEOUT_MS:
            raise InvalidArgumentException(f"session_timeout_ms must be between {MIN_SESSION_TIMEOUT_MS} and "
                                           f"{MAX_SESSION_TIMEOUT_MS}, not {timeout}.")
        if start not in (TRIM_HORIZON, LATEST):
            raise InvalidArgumentException(f"Invalid start {start!r}: expected TRIM_HORIZON or LATEST.")
        return await self._assignment(JoinGroup(account, stream, group, _check_name("member", member, _MEMBER),
                                                timeout, start))

    async def heartbeat(self, account: str, stream: str, group: str, member: str) -> Assignment:
        stream, group = self._ref(stream, group)
        return await self._assignment(GroupHeartbeat(account, stream, group, _check_name("member", member, _MEMBER)))

    async def checkpoint(self, account: str, stream: str, group: str, member: str, shard: str,
                         sequence_number: str) -> Assignment:
        stream, group = self._ref(stream, group)
        if member:
            _check_name("member", member, _MEMBER)
        if not shard or not sequence_number:
            raise InvalidArgumentException("A checkpoint needs shard_id and sequence_number.")
        return await self._assignment(Checkpoint(account, stream, group, member, shard, sequence_number))

    async def leave(self, account: str, stream: str, group: str, member: str) -> None:
        stream, group = self._ref(stream, group)
        await self._propose(LeaveGroup(account, stream, group, _check_name("member", member, _MEMBER)))

    async def delete(self, account: str, stream: str, group: str) -> None:
        stream, group = self._ref(stream, group)
        await self._propose(DeleteGroup(account, stream, group))

    async def describe(self, account: str, stream: str, group: str) -> GroupView:
        stream, group = self._ref(stream, group)
        await self._rep.read_barrier()
        found = self._model.group(account, stream, group)
        kept = self._model.stream_of(found)
        assert kept is not None  # model.group() raises for a group whose stream is gone
        members = tuple(MemberView(m, until, tuple(shard_id(i) for i in found.shards_of(m)))
                        for m, until in sorted(found.members.items()))
        shards = tuple(ShardView(shard_id(i), found.checkpoints.get(i, ""), found.owners.get(i, ""))
                       for i in sorted(kept.shards))
        return GroupView(stream, group, found.generation, found.session_timeout_ms, found.start, found.created_ts,
                         members, shards)

    async def list_groups(self, account: str, stream: str) -> list[str]:
        _check_name("stream name", stream)
        await self._rep.read_barrier()
        return self._model.list_groups(account, stream)

    async def run_maintenance(self, stop: asyncio.Event) -> None:
        """Propose ``ExpireMembers`` whenever a session has ended (leader only), until ``stop`` is set."""
        while not stop.is_set():
            due = self._model.next_due() if self._is_leader() else None
            now = self._rep.now_ms()
            if due is not None and due <= now:
                try:
                    changed = await self._propose(ExpireMembers())
                except Exception:  # not leader any more, shutting down: try again later
                    log.debug("group expiry not applied", exc_info=True)
                    changed = 0
                if changed:
                    continue
            pause = self._interval if due is None or due <= now else min(self._interval, (due - now) / 1000 + 0.001)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), pause)
