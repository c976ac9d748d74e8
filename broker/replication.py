"""The replicator as the services see it: a replication failure is a retryable AWS error, never a 500 or a hang.

During an election (``NotLeader``), when the outcome of a proposal is unknown, or while the node is stopping
(``ReplicatorClosed``), clients get 503 ServiceUnavailable, which every AWS SDK retries with backoff.
"""

from __future__ import annotations

from typing import Any

from broker.model.commands import Command, encode
from broker.model.errors import ServiceUnavailable
from cluster.api import NotLeader, Replicator
from cluster.local import ReplicatorClosed

_RETRYABLE = (NotLeader, ReplicatorClosed)


class ClientFacingReplicator:
    """Wraps any ``Replicator``; same interface, AWS-style errors."""

    def __init__(self, inner: Replicator) -> None:
        self.inner = inner

    async def propose_and_wait(self, data: bytes) -> object:
        try:
            return await self.inner.propose_and_wait(data)
        except _RETRYABLE as exc:
            raise ServiceUnavailable(f"Service is unable to handle request: {_reason(exc)}.") from exc

    async def read_barrier(self) -> None:
        try:
            await self.inner.read_barrier()
        except _RETRYABLE as exc:
            raise ServiceUnavailable(f"Service is unable to handle request: {_reason(exc)}.") from exc

    def now_ms(self) -> int:
        return self.inner.now_ms()


def _reason(exc: Exception) -> str:
    if isinstance(exc, NotLeader):
        return "no leader is available right now"
    return "the node is shutting down"


async def propose(replicator: Replicator, command: Command) -> Any:
    """Replicate one command and return the model's reply; a reply that is an error (a BrokerError) is raised."""
    reply = await replicator.propose_and_wait(encode(command))
    if isinstance(reply, BaseException):
        raise reply
    return reply
