"""sqs-cycle's end-to-end latency: every body carries its send time; checked against a real ``raftmq serve``."""

from __future__ import annotations

from benchmarks import runner
from benchmarks.awsjson import Target
from benchmarks.scenarios.sqs_cycle import STAMP_CHARS, SqsCycle, stamp, stamp_of
from benchmarks.server import SpawnedServer


def test_the_stamp_round_trips_and_only_long_bodies_carry_one() -> None:
    assert len(stamp(42)) == STAMP_CHARS and stamp_of(stamp(42) + "c00001:xxxx") == 42
    assert stamp_of("c00001:" + "x" * 40) is None and stamp_of("t=12;") is None
    assert stamp_of("t=" + "9" * 21 + ":rest") is None  # the stamp must end where it should
    assert SqsCycle(body_size=100).stamped and not SqsCycle(body_size=20).stamped


def test_every_received_message_gets_an_end_to_end_latency() -> None:
    with SpawnedServer() as server:
        config = runner.RunConfig(processes=1, connections=3, duration=1.0, progress=False)
        result = runner.run(SqsCycle(batch=10, body_size=100), Target(server.endpoint), config)
    assert result.failures == [] and result.errors == {}  # MD5s of the stamped bodies matched both ways
    e2e = result.latency["send-to-receive"]
    assert e2e.count == result.counters["received"] > 0
    # a message cannot be received before its send was answered, and is received after it was sent
    assert e2e.min > 0 and e2e.max >= result.latency["SendMessageBatch"].min
