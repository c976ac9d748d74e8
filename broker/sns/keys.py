"""The cluster's one SNS signing key, read from the replicated model or created there on first use."""

from __future__ import annotations

import asyncio

from broker.model.commands import encode
from broker.model.sns_commands import SetSigningKey
from broker.model.sns_model import SnsModel
from broker.sns.signing import Signer, generate_key_pair
from cluster.api import Replicator


class SigningKeys:
    """``await keys.signer()``: the Signer of the replicated key; the first proposed SetSigningKey wins."""

    def __init__(self, model: SnsModel, replicator: Replicator) -> None:
        self._model = model
        self._rep = replicator
        self._signer: Signer | None = None
        self._lock = asyncio.Lock()

    async def signer(self) -> Signer:
        async with self._lock:
            if self._signer is None:
                pair = self._model.signing
                if pair is None:
                    reply = await self._rep.propose_and_wait(
                        encode(SetSigningKey(*await asyncio.to_thread(generate_key_pair))))
                    if isinstance(reply, BaseException):
                        raise reply
                    pair = self._model.signing
                assert pair is not None
                self._signer = Signer(*pair)
            return self._signer
