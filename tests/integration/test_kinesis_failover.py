"""Kinesis on a 3-node Raft cluster (in-process nodes, real gRPC, real LMDB): producers keep writing through every
node while the leader is killed; afterwards every acknowledged record is readable exactly once in its shard, on
every survivor alike, sequence numbers strictly increase per shard and counters leave no gaps."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import grpc

from broker.kinesis.config import KinesisConfig
from broker.kinesis.service import KinesisService
from broker.model.kinesis_keys import parse_sequence_number
from broker.model.kinesis_model import KinesisModel
from broker.model.sqs_model import SqsModel
from broker.notify import Notifier
from broker.service import RequestContext
from broker.state_machine import BrokerStateMachine
from cluster.runtime import RaftReplicator
from cluster.transport import SERVER_OPTIONS
from storage.lmdb_store import LmdbStore
from tests.cluster_runtime.harness import FAST

IDS = ["n1", "n2", "n3"]
ACCOUNT = "123456789012"
CTX = RequestContext(request_id="r", account_id=ACCOUNT, region="us-east-1", endpoint_url="", protocol="json")


@dataclass
class KNode:
    node_id: str
    server: grpc.aio.Server
    store: LmdbStore
    rep: RaftReplicator
    service: KinesisService
    running: bool = True

    async def kill(self) -> None:
        """Stop without handing leadership over: to the others, the node just vanishes."""
        self.running = False
        await self.server.stop(None)
        await self.rep.stop(hand_over=False)
        self.store.close()


async def _start(root: Path) -> dict[str, KNode]:
    servers = {nid: grpc.aio.server(options=SERVER_OPTIONS) for nid in IDS}
    ports = {nid: s.add_insecure_port("127.0.0.1:0") for nid, s in servers.items()}
    peers = {nid: f"127.0.0.1:{port}" for nid, port in ports.items()}
    nodes = {}
    for nid in IDS:
        store = LmdbStore(str(root / nid), map_size=64 << 20)
        model = KinesisModel()
        notifier = Notifier()
        rep = RaftReplicator(store, BrokerStateMachine(SqsModel(), notifier, model),
                             replace(FAST, node_id=nid, peers=peers))
        rep.register(servers[nid])
        await servers[nid].start()
        rep.start()
        service = KinesisService(model, rep, store, notifier, KinesisConfig(account_id=ACCOUNT))
        nodes[nid] = KNode(nid, servers[nid], store, rep, service)
    return nodes


async def _leader(nodes: dict[str, KNode]) -> KNode:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 15
    while loop.time() < deadline:
        live = [n for n in nodes.values() if n.running]
        leaders = [n for n in live if n.rep.is_leader]
        if len(leaders) == 1 and all(n.rep.leader == leaders[0].node_id for n in live):
            return leaders[0]
        await asyncio.sleep(0.02)  # Raft elections have no event to await across nodes
    raise AssertionError("no agreed leader")


async def _until(predicate: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)  # producers run on this loop; this only yields to them


async def _read_shard(service: KinesisService, shard: str) -> list[dict[str, Any]]:
    out = await service.handle("GetShardIterator", {"StreamName": "s", "ShardId": shard,
                                                    "ShardIteratorType": "TRIM_HORIZON"}, CTX)
    records: list[dict[str, Any]] = []
    iterator = out["ShardIterator"]
    while True:
        page = await service.handle("GetRecords", {"ShardIterator": iterator}, CTX)
        records.extend(page["Records"])
        if not page["Records"]:
            return records
        iterator = page["NextShardIterator"]


async def test_producers_survive_leader_kill(tmp_path: Path) -> None:
    nodes = await _start(tmp_path)
    try:
        leader = await _leader(nodes)
        await leader.service.handle("CreateStream", {"StreamName": "s", "ShardCount": 2}, CTX)
        acked: dict[bytes, tuple[str, str]] = {}
        unknown: set[bytes] = set()
        stop = asyncio.Event()

        async def produce(worker: int) -> None:
            for n in itertools.count():
                if stop.is_set():
                    return
                live = [x for x in nodes.values() if x.running]
                node = live[(worker + n) % len(live)]
                batch = [f"{worker}:{n}:{i}".encode() for i in range(5)]
                try:
                    out = await node.service.handle("PutRecords", {"StreamName": "s", "Records": [
                        {"Data": d, "PartitionKey": f"p{worker}-{i}"} for i, d in enumerate(batch)]}, CTX)
                except Exception:  # not leader, outcome unknown, node gone: try elsewhere
                    unknown.update(batch)
                    await asyncio.sleep(0.05)
                    continue
                for data, rec in zip(batch, out["Records"], strict=True):
                    acked[data] = (rec["ShardId"], rec["SequenceNumber"])

        producers = [asyncio.create_task(produce(w)) for w in range(4)]
        await _until(lambda: len(acked) >= 100, "writes before the kill")
        before_kill = len(acked)
        await leader.kill()
        await _leader(nodes)
        await _until(lambda: len(acked) >= before_kill + 100, "writes after the kill")
        stop.set()
        await asyncio.gather(*producers)

        views = []
        for node in (n for n in nodes.values() if n.running):
            await node.rep.read_barrier()
            views.append({shard: await _read_shard(node.service, shard)
                          for shard in ("shardId-000000000000", "shardId-000000000001")})
        assert views[0] == views[1]  # both survivors serve the same records
        seen: dict[bytes, tuple[str, str]] = {}
        for shard, records in views[0].items():
            counters = [parse_sequence_number(r["SequenceNumber"])[2] for r in records]  # type: ignore[index]
            assert counters == list(range(1, len(records) + 1))  # strictly increasing, no gaps
            for r in records:
                assert r["Data"] not in seen, "a record appears twice"
                seen[r["Data"]] = (shard, r["SequenceNumber"])
        for data, where in acked.items():
            assert seen.get(data) == where, f"acknowledged record {data!r} lost or moved"
        assert set(seen) <= set(acked) | unknown
    finally:
        for node in nodes.values():
            if node.running:
                await node.kill()
