"""Records at rest under stream encryption: AES-256-GCM with a key per stream derived from a replicated secret.

RaftMQ has no KMS: StartStreamEncryption records the KeyId AWS-style, and from then on the service seals each
record's data before proposing it, so the data is ciphertext in the Raft log, in LMDB and in snapshots alike. The
key is HMAC-SHA256(secret, "kinesis-records" | stream id), where the secret is the cluster's replicated iterator key:
every node can open every record, and nothing outside the data directory can. Each record gets a fresh random
96-bit nonce (stored in front of the ciphertext), so keys never see a nonce twice in practice.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from broker.model.errors import InternalFailure

_NONCE = 12
_LABEL = b"kinesis-records\x00"


class RecordSealer:
    """Seals and opens record data of one cluster (``secret``: the replicated iterator key)."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret
        self._keys: dict[int, AESGCM] = {}

    def _key(self, stream_id: int) -> AESGCM:
        key = self._keys.get(stream_id)
        if key is None:
            raw = hmac.new(self._secret, _LABEL + struct.pack(">Q", stream_id), hashlib.sha256).digest()
            key = self._keys[stream_id] = AESGCM(raw)
        return key

    def seal(self, stream_id: int, data: bytes) -> bytes:
        nonce = os.urandom(_NONCE)
        return nonce + self._key(stream_id).encrypt(nonce, data, None)

    def open(self, stream_id: int, sealed: bytes) -> bytes:
        try:
            return self._key(stream_id).decrypt(sealed[:_NONCE], sealed[_NONCE:], None)
        except (InvalidTag, ValueError):
            raise InternalFailure("A stored record could not be decrypted.") from None
