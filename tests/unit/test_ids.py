"""Message and request ids: RFC 4122 version-4 UUIDs, random in every other bit, never repeated across a fork."""

from __future__ import annotations

import os
import uuid

from broker.ids import random_uuid


def test_ids_are_version_4_uuids_random_in_every_other_position() -> None:
    ids = [random_uuid() for _ in range(5000)]  # several pools of 256
    assert len(set(ids)) == len(ids)
    for text in ids:
        parsed = uuid.UUID(text)
        assert str(parsed) == text and parsed.version == 4 and parsed.variant == uuid.RFC_4122
    hex_only = [text.replace("-", "") for text in ids]
    for position in range(32):
        seen = {h[position] for h in hex_only}
        if position == 12:
            assert seen == {"4"}
        elif position == 16:
            assert seen == set("89ab")
        else:
            assert len(seen) == 16, position  # no nibble stuck by the masks


def test_a_forked_child_never_hands_out_its_parents_ids() -> None:
    random_uuid()  # the parent's pool is started and has ids left
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next ids and leave at once
        os.write(write, " ".join(random_uuid() for _ in range(10)).encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 1 << 16).decode().split()
    os.close(read)
    os.waitpid(pid, 0)
    parent = [random_uuid() for _ in range(300)]
    assert len(child) == 10 and not set(child) & set(parent)
