"""Sealing: round trips, rotation, the key named in the ciphertext, KMS failures, managed keys, cost per message."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import struct
import time

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from broker.kinesis.sealing import RecordSealer
from broker.kms.errors import DISABLED, INVALID_STATE, NOT_FOUND, KmsFailure, RootMissing
from broker.kms.keyring import Keyring, parse_keyring
from broker.kms.sealer import KINESIS_MANAGED, SQS_MANAGED, TEXT_PREFIX, Sealer, is_sealed_text
from broker.model.errors import BrokerError

KEY_ID = "4f1c2d9e-7a33-4c61-9d0e-2b8f6a1c5e70"
V1, V2 = os.urandom(32), os.urandom(32)


def _ring(*versions: bytes, enabled: bool = True, aliases: tuple[str, ...] = ("alias/orders",)) -> Keyring:
    return parse_keyring({"keys": [{"id": KEY_ID, "aliases": list(aliases), "enabled": enabled,
                                    "versions": [base64.b64encode(v).decode() for v in versions]}]})


def _version(sealed: bytes) -> int:
    version: int = struct.unpack_from(">I", sealed, 4)[0]
    return version


def test_round_trip_with_fresh_nonces_and_the_key_named() -> None:
    sealer = Sealer(_ring(V1))
    one, two = sealer.seal("alias/orders", b"hello"), sealer.seal(KEY_ID, b"hello")
    assert one != two and b"hello" not in one
    assert KEY_ID.encode() in one[:64] and _version(one) == 1
    assert sealer.open(one) == sealer.open(two) == b"hello"


def test_rotation_seals_with_the_newest_version_and_opens_old_ones() -> None:
    old = Sealer(_ring(V1)).seal("alias/orders", b"v1 data")
    rotated = Sealer(_ring(V1, V2))
    new = rotated.seal("alias/orders", b"v2 data")
    assert _version(new) == 2
    assert rotated.open(old) == b"v1 data" and rotated.open(new) == b"v2 data"
    with pytest.raises(KmsFailure) as info:
        Sealer(_ring(V1)).open(new)  # a node with the file before rotation
    assert info.value.kind == NOT_FOUND


def test_unknown_disabled_and_wrong_keys() -> None:
    sealed = Sealer(_ring(V1)).seal("alias/orders", b"x")
    cases = [(Sealer(), NOT_FOUND), (Sealer(_ring(V1, enabled=False)), DISABLED), (Sealer(_ring(V2)), INVALID_STATE)]
    for sealer, kind in cases:
        with pytest.raises(KmsFailure) as info:
            sealer.open(sealed)
        assert info.value.kind == kind
    with pytest.raises(KmsFailure) as info:
        Sealer(_ring(V1)).seal("alias/nope", b"x")
    assert info.value.kind == NOT_FOUND
    with pytest.raises(KmsFailure) as info:
        Sealer(_ring(V1, enabled=False)).check("alias/orders")
    assert info.value.kind == DISABLED


def test_the_header_is_authenticated() -> None:
    sealer = Sealer(_ring(V1, V1))  # both versions the same material: only the header differs
    sealed = bytearray(sealer.seal(KEY_ID, b"x"))
    assert _version(bytes(sealed)) == 2
    sealed[7] = 1  # claim version 1
    with pytest.raises(KmsFailure) as info:
        sealer.open(bytes(sealed))
    assert info.value.kind == INVALID_STATE
    with pytest.raises(KmsFailure):
        sealer.open(b"not sealed at all")


def test_managed_keys_derive_from_their_root_and_wait_for_it() -> None:
    root: list[bytes] = []
    sealer = Sealer(roots={SQS_MANAGED: lambda: root[0] if root else None})
    sealer.check(SQS_MANAGED)  # known, though its root is not replicated yet
    with pytest.raises(RootMissing):
        sealer.seal(SQS_MANAGED, b"x")
    root.append(b"cluster secret")
    sealed = sealer.seal(SQS_MANAGED, b"x")
    assert _version(sealed) == 0
    by_arn = sealer.seal("arn:aws:kms:eu-west-1:111111111111:alias/aws/sqs", b"y")
    assert by_arn[:9 + len(SQS_MANAGED)] == sealed[:9 + len(SQS_MANAGED)] and sealer.open(by_arn) == b"y"
    assert Sealer(roots={SQS_MANAGED: lambda: b"cluster secret"}).open(sealed) == b"x"
    with pytest.raises(KmsFailure):
        Sealer(roots={SQS_MANAGED: lambda: b"another cluster"}).open(sealed)


def test_a_key_file_alias_takes_over_a_managed_alias_for_new_data_only() -> None:
    roots = {SQS_MANAGED: lambda: b"cluster secret"}
    before = Sealer(roots=roots).seal(SQS_MANAGED, b"old")
    sealer = Sealer(_ring(V1, aliases=(SQS_MANAGED,)), roots)
    after = sealer.seal(SQS_MANAGED, b"new")
    assert _version(after) == 1 and KEY_ID.encode() in after[:64]
    assert sealer.open(before) == b"old" and sealer.open(after) == b"new"


def test_text_sealing_for_bodies() -> None:
    sealer = Sealer(_ring(V1))
    body = "héllo \U0001f600 wörld"
    sealed = sealer.seal_text("alias/orders", body)
    assert is_sealed_text(sealed) and sealed.startswith(TEXT_PREFIX)
    # the plaintext is nowhere in the sealed bytes (a 3-letter probe of the base64 text matched by chance 1 in ~3k)
    assert body.encode() not in base64.b64decode(sealed[len(TEXT_PREFIX):]) and body not in sealed
    assert sealer.open_text(sealed) == body
    with pytest.raises(KmsFailure):
        sealer.open_text(TEXT_PREFIX + "!!!")


def test_batch_text_sealing_gives_each_body_its_own_nonce() -> None:
    sealer = Sealer(_ring(V1))
    bodies = ["same"] * 50 + ["other"]
    sealed = sealer.seal_texts("alias/orders", bodies)
    assert len(set(sealed)) == len(bodies)  # equal bodies, different ciphertexts: no nonce is reused
    assert [sealer.open_text(s) for s in sealed] == bodies
    raw = [base64.b64decode(s[len(TEXT_PREFIX):]) for s in sealed]
    assert all(_version(r) == 1 for r in raw)
    with pytest.raises(KmsFailure):
        sealer.seal_texts("alias/nope", ["x"])
    rotated = Sealer(_ring(V1, V2))
    assert rotated.open_texts(sealed[:2] + rotated.seal_texts("alias/orders", ["v2"]) + sealed[2:3]) == [
        "same", "same", "v2", "same"]  # runs of two key versions in one batch
    with pytest.raises(KmsFailure) as wrong:
        Sealer(_ring(V2)).open_texts(sealed[:1])
    assert wrong.value.kind == INVALID_STATE


def test_texts_sealed_here_open_from_memory_once_and_by_decrypting_after(monkeypatch: pytest.MonkeyPatch) -> None:
    sealer = Sealer(_ring(V1))
    bodies = [f"body {i}" for i in range(20)]
    sealed = sealer.seal_texts("alias/orders", bodies)
    tampered = TEXT_PREFIX + base64.b64encode(base64.b64decode(sealed[0][len(TEXT_PREFIX):])[:-1] + b"?").decode()
    with pytest.raises(KmsFailure):  # a text that is not one sealed here is decrypted, and its tag checked
        sealer.open_texts([tampered])
    order = list(range(20))[::-1]
    assert sealer.open_texts([sealed[i] for i in order]) == [bodies[i] for i in order]
    assert sealer.open_texts(sealed) == bodies  # opened before: decrypted now, same answer
    other = Sealer(_ring(V1))
    assert other.open_texts(sealed) == bodies  # another node (or a restart) decrypts
    monkeypatch.setattr("broker.kms.sealer.RECENT_CHARS", 100)  # the memory fills and starts over
    more = [f"more {i}" for i in range(30)]
    assert sealer.open_texts(sealer.seal_texts("alias/orders", more[:15]) + sealer.seal_texts("alias/orders",
                                                                                              more[15:])) == more


def test_kinesis_records_are_per_stream_and_legacy_records_still_open() -> None:
    secret = os.urandom(32)
    records = RecordSealer(Sealer(roots={KINESIS_MANAGED: lambda: secret}))
    sealed = records.seal(7, b"record")
    assert records.open(7, sealed) == b"record"
    with pytest.raises(BrokerError) as info:
        records.open(8, sealed)  # another stream's key
    assert info.value.code == "KMSInvalidStateException"
    # The format before keys were named: nonce | ciphertext under HMAC(secret, label | stream id).
    legacy_key = hmac.new(secret, b"kinesis-records\x00" + struct.pack(">Q", 7), hashlib.sha256).digest()
    nonce = os.urandom(12)
    assert records.open(7, nonce + AESGCM(legacy_key).encrypt(nonce, b"old record", None)) == b"old record"
    with pytest.raises(BrokerError) as info:
        records.check("alias/nope")
    assert info.value.code == "KMSNotFoundException"


def test_seal_and_open_cost_per_message() -> None:
    """The data path budget is ~40 CPU-µs per message for everything; sealing must stay a small part of it.

    CPU time (not wall time) so that other processes on a shared machine do not count."""
    sealer = Sealer(_ring(V1))
    body = "x" * 256
    sealed = sealer.seal_text("alias/orders", body)
    n = 2000
    start = time.process_time()
    for _ in range(n):
        sealer.seal_text("alias/orders", body)
    seal_us = (time.process_time() - start) / n * 1e6
    start = time.process_time()
    for _ in range(n):
        sealer.open_text(sealed)
    open_us = (time.process_time() - start) / n * 1e6
    print(f"seal_text 256 B: {seal_us:.2f} µs, open_text: {open_us:.2f} µs")
    assert seal_us < 15 and open_us < 15  # ~2-3 µs each; generous for a loaded CI machine
