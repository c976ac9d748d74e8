"""Kinesis service settings: AWS's values by default, overridable for tests and local use.

The composition root only passes the node's account and region, so the rest can be set from the environment
(``RAFTMQ_KINESIS_*``, see ``from_env``) until the node config grows a Kinesis section.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace


@dataclass(frozen=True, slots=True)
class KinesisConfig:
    account_id: str = "000000000000"
    region: str = "us-east-1"
    iterator_ttl_ms: int = 300_000  # shard iterators expire after 5 minutes, as on AWS
    status_delay_ms: int = 0  # how long CREATING/UPDATING/DELETING last (AWS takes seconds)
    consumer_delay_ms: int = 0  # how long a new consumer stays CREATING
    # Per-shard throughput limits are off by default: local users replay and bulk-load far beyond 1 MiB/s,
    # and a lone broker has no reason to pretend to be slower than it is. Turn them on to test back-off code.
    throughput_limits: bool = False
    shard_limit: int = 500
    on_demand_stream_limit: int = 50
    subscription_ms: int = 300_000  # a SubscribeToShard call lasts 5 minutes
    heartbeat_s: float = 5.0  # a subscriber gets an event at least this often, records or not
    maintenance_interval_s: float = 1.0

    @classmethod
    def from_env(cls, account_id: str, region: str, environ: dict[str, str] | None = None) -> KinesisConfig:
        """Defaults overridden by RAFTMQ_KINESIS_ITERATOR_TTL_MS, _STATUS_DELAY_MS, _CONSUMER_DELAY_MS,
        _THROUGHPUT_LIMITS (1/true/on), _SHARD_LIMIT, _SUBSCRIPTION_MS."""
        env = os.environ if environ is None else environ
        config = cls(account_id=account_id, region=region)

        def num(name: str, default: int) -> int:
            raw = env.get(f"RAFTMQ_KINESIS_{name}")
            return int(raw) if raw else default

        limits = env.get("RAFTMQ_KINESIS_THROUGHPUT_LIMITS", "").lower() in ("1", "true", "on", "yes")
        return replace(config, iterator_ttl_ms=num("ITERATOR_TTL_MS", config.iterator_ttl_ms),
                       status_delay_ms=num("STATUS_DELAY_MS", config.status_delay_ms),
                       consumer_delay_ms=num("CONSUMER_DELAY_MS", config.consumer_delay_ms),
                       throughput_limits=limits, shard_limit=num("SHARD_LIMIT", config.shard_limit),
                       subscription_ms=num("SUBSCRIPTION_MS", config.subscription_ms))
