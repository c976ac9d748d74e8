"""Records at rest under stream encryption: AES-256-GCM under the stream's KeyId (``broker.kms``).

StartStreamEncryption records the KeyId (a key of the ``--kms-keys`` file by id, ARN or alias, or
``alias/aws/kinesis``); from then on the service seals each record's data before proposing it, so the data is
ciphertext in the Raft log, in LMDB and in snapshots alike. ``alias/aws/kinesis`` (when the key file does not define
it) is HMAC-SHA256(secret, "kinesis-records" | stream id) with the cluster's replicated iterator key as the secret:
every node can open those records, and nothing outside the data directory can. Sealed data names its key and
version, so records stay readable after StopStreamEncryption, a KeyId change or a key rotation.

Records sealed before keys were named (nonce | ciphertext under the derived stream key) are still opened.
"""

from __future__ import annotations

import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from broker.kms.errors import INVALID_STATE, KmsFailure, kinesis_error
from broker.kms.sealer import KINESIS_MANAGED, MAGIC, NONCE, Sealer


class RecordSealer:
    """Seals and opens record data of one cluster's streams (``sealer``: the node's shared ``broker.kms`` one)."""

    def __init__(self, sealer: Sealer) -> None:
        self._sealer = sealer
        self._legacy: dict[int, AESGCM] = {}

    @staticmethod
    def _context(stream_id: int) -> bytes:
        return struct.pack(">Q", stream_id)

    def check(self, key_id: str) -> None:
        """KMSNotFoundException / KMSDisabledException unless ``key_id`` can seal."""
        try:
            self._sealer.check(key_id)
        except KmsFailure as failure:
            raise kinesis_error(failure) from None

    def seal(self, stream_id: int, data: bytes, key_id: str = KINESIS_MANAGED) -> bytes:
        try:
            return self._sealer.seal(key_id, data, self._context(stream_id))
        except KmsFailure as failure:
            raise kinesis_error(failure) from None

    def open(self, stream_id: int, sealed: bytes) -> bytes:
        try:
            if sealed[:4] == MAGIC:
                return self._sealer.open(sealed, self._context(stream_id))
            return self._open_legacy(stream_id, sealed)
        except KmsFailure as failure:
            if sealed[:4] == MAGIC:
                # One legacy record in 2**32 starts with MAGIC by chance of its nonce: it opens the old way.
                try:
                    return self._open_legacy(stream_id, sealed)
                except KmsFailure:
                    pass
            raise kinesis_error(failure) from None

    def _open_legacy(self, stream_id: int, sealed: bytes) -> bytes:
        aead = self._legacy.get(stream_id)
        if aead is None:
            aead = self._legacy[stream_id] = self._sealer.derived(KINESIS_MANAGED, self._context(stream_id))
        try:
            return aead.decrypt(sealed[:NONCE], sealed[NONCE:], None)
        except (InvalidTag, ValueError):
            raise KmsFailure(INVALID_STATE, "A stored record could not be decrypted.") from None
