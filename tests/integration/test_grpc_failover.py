"""A Consume stream held open across a leader failover of a 3-process cluster loses no acknowledged message.

The client knows all three nodes and starts on the leader. Producers keep sending through the client while the
leader is killed with SIGKILL; the consumer's stream breaks, reconnects to a survivor and re-sends the settlements
it had not seen confirmed. Afterwards every message whose send was acknowledged has been delivered and acked, and
the queue is empty: acknowledged deletes were not undone and acknowledged sends were not lost.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from broker.client import AsyncClient, RaftMQError
from tests.cluster_e2e.cluster import Cluster

SENDS = 400


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(tmp_path, 3)
    try:
        c.start()
        yield c
    finally:
        c.close()


async def test_consumer_survives_leader_kill(cluster: Cluster) -> None:
    leader = await asyncio.to_thread(cluster.leader)
    order = [leader, *(n for n in cluster.ids if n != leader)]
    addresses = [cluster.nodes[n].admin_address for n in order]
    async with AsyncClient(addresses, retries=30, backoff_s=0.05, max_backoff_s=0.5, timeout_s=10) as client:
        await client.create_queue("failover")
        sent: set[str] = set()
        acked: set[str] = set()
        killed = asyncio.Event()

        async def produce() -> None:
            producer = client.producer("failover", linger_ms=2, max_batch=20)
            for i in range(SENDS):
                body = f"m{i}"
                try:
                    await producer.send(body)
                except RaftMQError as exc:  # a send whose outcome is unknown is not acknowledged
                    assert exc.retryable, exc
                    continue
                sent.add(body)
                if i == SENDS // 3:
                    await killed.wait()  # the rest is sent during and after the failover
            await producer.close()

        async def kill_leader() -> None:
            while len(acked) < SENDS // 5:
                await asyncio.sleep(0.01)  # another process's progress has no event to await
            await asyncio.to_thread(cluster.kill9, leader)
            killed.set()

        producing = asyncio.create_task(produce())
        killing = asyncio.create_task(kill_leader())
        consumer = client.consumer("failover", max_in_flight=50, max_batch=10, visibility_timeout=3)
        async with consumer:
            async for message in consumer:
                try:
                    await message.ack()
                except RaftMQError as exc:
                    # A redelivered copy's older handle may be refused; the message comes back to be acked again.
                    assert exc.code == "ReceiptHandleIsInvalid", exc
                    continue
                acked.add(message.body)
                if producing.done() and sent <= acked:
                    break
        await producing
        await killing
        assert consumer.reconnects >= 1
        assert sent <= acked and len(sent) >= SENDS * 0.9
        # What is left can only be extra copies of acked messages (a send retried after the kill, or a delivery the
        # closed stream had not settled, visible again after 3 s): drain them until the queue is empty.
        leftovers: list[str] = []
        while True:
            batch = await client.receive("failover", 1000, wait_seconds=4)
            if not batch:
                break
            leftovers += [m.body for m in batch]
            assert await client.delete("failover", [m.receipt_handle for m in batch]) == []
        assert set(leftovers) <= acked
        attributes = await client.get_queue_attributes(
            "failover", ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])
        assert attributes == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}


async def test_admin_status_and_leadership_transfer(cluster: Cluster) -> None:
    leader = await asyncio.to_thread(cluster.leader)
    follower = next(n for n in cluster.ids if n != leader)
    async with AsyncClient(cluster.nodes[follower].admin_address, retries=10, backoff_s=0.05) as client:
        status = await client.cluster_status()
        assert (status.node_id, status.leader, status.role) == (follower, leader, "follower")
        assert sorted(status.voters) == cluster.ids
        await client.transfer_leadership(follower)  # sent to a follower, carried out by the leader
        assert (await client.cluster_status()).role == "leader"
        assert await asyncio.to_thread(cluster.leader) == follower
        with pytest.raises(RaftMQError) as caught:
            await client.transfer_leadership("n9")
        assert caught.value.code == "ClusterAdminFailed"
