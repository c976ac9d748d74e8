"""AES-256-GCM sealing whose ciphertext names its key, so any node (or queue) holding the key file can open it.

Sealed layout (the header is the AEAD's associated data, so a key name or version cannot be swapped)::

    b"RMK1" | version u32 | len u8 | key name (ASCII) | nonce (12, os.urandom on the sealing node) | ciphertext+tag

The key name is a key id of the key file, or an AWS-managed alias (``alias/aws/sqs``, ``alias/aws/kinesis``) with
version 0 when the file does not define that alias: then the key is HMAC-SHA256(root, label | context), where the
root is a secret the cluster already replicates (given by a getter) and the context separates streams. Keys are used
directly (no data keys), so KmsDataKeyReusePeriodSeconds is stored and reported but changes nothing.

``SealedText`` carries sealed bytes in a ``str`` field (SQS bodies): a NUL-led prefix no valid SQS body can start
with, then base64.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import os
import struct
from collections.abc import Callable, Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from broker.kms.errors import DISABLED, INVALID_STATE, NOT_FOUND, KmsFailure, RootMissing
from broker.kms.keyring import Keyring

MAGIC = b"RMK1"
NONCE = 12
_VERSION = struct.Struct(">I")
SQS_MANAGED = "alias/aws/sqs"
KINESIS_MANAGED = "alias/aws/kinesis"
# Derivation labels of the managed keys; Kinesis's is the one broker/kinesis/sealing.py always used.
LABELS: dict[str, bytes] = {SQS_MANAGED: b"sqs-messages\x00", KINESIS_MANAGED: b"kinesis-records\x00"}
TEXT_PREFIX = "\x00RMK:"
_TEXT_START = len(TEXT_PREFIX)
# Texts this process sealed recently, kept with their plaintext until first opened: a queue's message is mostly
# received from the node it was sent to within seconds, and opening costs more than sealing. Past this many
# characters held, the memory starts over (a backlog bigger than that opens by decrypting, as before).
RECENT_CHARS = 32 << 20

RootGetter = Callable[[], bytes | None]
_Sealing = tuple[bytes, AESGCM]


class Sealer:
    """Seals with the newest version of a named key; opens whatever key and version the data names.

    ``roots`` maps a managed alias to a getter of its root secret (None while the cluster has none yet). AESGCM
    objects and headers are cached per (name, context): the file is fixed for the process's life and a root never
    changes once replicated.
    """

    def __init__(self, keyring: Keyring | None = None, roots: Mapping[str, RootGetter] | None = None) -> None:
        self._keyring = keyring or Keyring()
        self._roots = dict(roots or {})
        self._sealing: dict[tuple[str, bytes], _Sealing] = {}
        self._opening: dict[tuple[bytes, bytes], AESGCM] = {}
        # sealed text -> its plaintext, for texts sealed here and not yet opened (see RECENT_CHARS). Safe because
        # the keys are fixed for the process's life: whatever this process sealed, it could open.
        self._recent: dict[str, str] = {}
        self._recent_chars = 0

    @property
    def keyring(self) -> Keyring:
        return self._keyring

    def check(self, name: str) -> None:
        """KmsFailure unless ``name`` can seal now (found and enabled); a managed root may still be missing."""
        key = self._keyring.find(name)
        if key is None:
            if self._managed(name) not in self._roots:
                raise KmsFailure(NOT_FOUND, f"Invalid keyId {name}")
        elif not key.enabled:
            raise KmsFailure(DISABLED, f"{key.arn} is disabled.")

    def seal(self, name: str, data: bytes, context: bytes = b"") -> bytes:
        """``data`` sealed under the newest version of key ``name`` (KmsFailure if it cannot be used)."""
        found = self._sealing.get((name, context))
        if found is None:
            found = self._sealing[(name, context)] = self._sealing_key(name, context)
        header, aead = found
        nonce = os.urandom(NONCE)
        return header + nonce + aead.encrypt(nonce, data, header)

    def open(self, sealed: bytes, context: bytes = b"") -> bytes:
        """The data of ``sealed`` (KmsFailure when its key is unknown, disabled or other material)."""
        if sealed[:4] != MAGIC or len(sealed) < 9:
            raise KmsFailure(INVALID_STATE, "The stored data is not in the sealed format.")
        end = 9 + sealed[8]
        aead = self._opening.get((sealed[4:end], context))
        if aead is None:
            aead = self._opening_key(sealed[4:end], context)
        view = memoryview(sealed)  # no copies of the ciphertext on the way into the AEAD
        try:
            return aead.decrypt(view[end:end + NONCE], view[end + NONCE:], view[:end])
        except (InvalidTag, ValueError):
            name = sealed[9:end].decode("ascii", "replace")
            version = _VERSION.unpack_from(sealed, 4)[0]
            raise KmsFailure(INVALID_STATE, f"Stored data sealed with key {name} version {version} cannot be "
                                            "decrypted with the key material this node has (a different key file?).") \
                from None

    def seal_text(self, name: str, text: str) -> str:
        """``seal`` for a text field: TEXT_PREFIX + base64."""
        return TEXT_PREFIX + binascii.b2a_base64(self.seal(name, text.encode("utf-8")), newline=False).decode("ascii")

    def seal_texts(self, name: str, texts: list[str]) -> list[str]:
        """``seal_text`` of each of ``texts``: one key lookup and one getrandom call for the whole batch."""
        found = self._sealing.get((name, b""))
        if found is None:
            found = self._sealing[(name, b"")] = self._sealing_key(name, b"")
        header, aead = found
        encrypt, encode = aead.encrypt, binascii.b2a_base64
        nonces = os.urandom(NONCE * len(texts))
        out = []
        for i, text in enumerate(texts):
            nonce = nonces[i * NONCE:(i + 1) * NONCE]
            sealed = header + nonce + encrypt(nonce, text.encode("utf-8"), header)
            out.append(TEXT_PREFIX + encode(sealed, newline=False).decode("ascii"))
        self._remember(out, texts)
        return out

    def _remember(self, sealed: list[str], texts: list[str]) -> None:
        chars = sum(map(len, sealed)) + sum(map(len, texts))
        if self._recent_chars + chars > RECENT_CHARS:
            self._recent.clear()
            self._recent_chars = 0
            if chars > RECENT_CHARS:
                return
        self._recent.update(zip(sealed, texts, strict=True))
        self._recent_chars += chars

    def open_text(self, text: str) -> str:
        """The text of a ``seal_text`` value."""
        try:
            sealed = binascii.a2b_base64(text[_TEXT_START:])
        except (ValueError, binascii.Error):
            raise KmsFailure(INVALID_STATE, "The stored data is not in the sealed format.") from None
        return self.open(sealed).decode("utf-8")

    def open_texts(self, texts: list[str]) -> list[str]:
        """``open_text`` of each of ``texts`` (a receive's batch): a text this process sealed and has not opened
        yet comes from memory; otherwise the key is looked up once per run of bodies sealed under the same key
        version, which is every body of a queue between rotations."""
        out: list[str] = []
        head: bytes | None = None
        aead: AESGCM | None = None
        recent = self._recent
        for text in texts:
            if recent:
                plain = recent.pop(text, None)
                if plain is not None:
                    self._recent_chars -= len(text) + len(plain)
                    out.append(plain)
                    continue
            try:
                sealed = binascii.a2b_base64(text[_TEXT_START:])
            except (ValueError, binascii.Error):
                raise KmsFailure(INVALID_STATE, "The stored data is not in the sealed format.") from None
            if sealed[:4] != MAGIC or len(sealed) < 9:
                raise KmsFailure(INVALID_STATE, "The stored data is not in the sealed format.")
            end = 9 + sealed[8]
            if aead is None or sealed[4:end] != head:
                head = sealed[4:end]
                aead = self._opening.get((head, b"")) or self._opening_key(head, b"")
            try:
                out.append(aead.decrypt(sealed[end:end + NONCE], sealed[end + NONCE:], sealed[:end]).decode("utf-8"))
            except (InvalidTag, ValueError):
                self.open(sealed)  # raises the KmsFailure that names the key and version
                raise
        return out

    # -- key lookup (cold path: once per key name and context) --------------------------------------------------

    def _sealing_key(self, name: str, context: bytes) -> _Sealing:
        self.check(name)
        key = self._keyring.find(name)
        if key is None:  # a managed alias the file does not define
            managed = self._managed(name)
            return _header(managed, 0), self.derived(managed, context)
        header = _header(key.key_id, key.newest)
        return header, self._cached(header[4:], context, lambda: AESGCM(key.versions[-1]))

    def _opening_key(self, head: bytes, context: bytes) -> AESGCM:
        version = _VERSION.unpack_from(head)[0]
        name = head[5:].decode("ascii", "replace")
        if version == 0 and name in self._roots:
            return self._cached(head, context, lambda: self.derived(name, context))
        key = self._keyring.find(name)
        if key is None or not 1 <= version <= len(key.versions):
            raise KmsFailure(NOT_FOUND, f"Stored data was sealed with key {name} version {version}, which the key "
                                        "file of this node does not have.")
        if not key.enabled:
            raise KmsFailure(DISABLED, f"{key.arn} is disabled.")
        material = key.versions[version - 1]
        return self._cached(head, context, lambda: AESGCM(material))

    def _cached(self, head: bytes, context: bytes, make: Callable[[], AESGCM]) -> AESGCM:
        aead = self._opening.get((head, context))
        if aead is None:
            aead = self._opening[(head, context)] = make()
        return aead

    @staticmethod
    def _managed(name: str) -> str:
        """``alias/aws/sqs`` for itself or its alias ARN (any region and account, as every account has one)."""
        if name.startswith("arn:aws:kms:"):
            return name.rsplit(":", 1)[-1]
        return name

    def derived(self, name: str, context: bytes) -> AESGCM:
        """The AWS-managed key ``name`` for ``context``, derived from its root (RootMissing while there is none)."""
        root = self._roots[name]()
        if root is None:
            raise RootMissing(name)
        return AESGCM(hmac.new(root, LABELS[name] + context, hashlib.sha256).digest())


def is_sealed_text(text: str) -> bool:
    return text.startswith(TEXT_PREFIX)


def _header(name: str, version: int) -> bytes:
    raw = name.encode("ascii")
    return MAGIC + _VERSION.pack(version) + bytes((len(raw),)) + raw
