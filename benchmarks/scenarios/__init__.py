"""Scenario registry: the name given to ``python -m benchmarks run NAME`` -> its spec."""

from __future__ import annotations

from benchmarks.scenarios import grpc_queues, grpc_streams, kinesis, sns_fanout, sqs_cycle
from benchmarks.scenarios.base import Scenario, ScenarioSpec

SCENARIOS: dict[str, ScenarioSpec] = {spec.name: spec for spec in (
    sqs_cycle.SPEC, kinesis.PUT_SPEC, kinesis.CYCLE_SPEC, grpc_queues.BATCH_SPEC, grpc_queues.STREAM_SPEC,
    grpc_streams.SPEC, grpc_streams.TAIL_SPEC, sns_fanout.SPEC)}

__all__ = ["SCENARIOS", "Scenario", "ScenarioSpec"]
