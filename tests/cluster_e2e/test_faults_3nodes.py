"""Three real nodes under boto3 load through all of them: kill -9 the leader, SIGSTOP a node, partition a node
(both ways, or one way), slow links.

After each fault heals, the checker proves every acknowledged send was received (or still queued and drained),
nothing was received that was never sent, and FIFO order per group held.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
import uuid

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.cluster_e2e.cluster import Cluster
from tests.cluster_e2e.proxy import DROP, delay
from tests.cluster_e2e.scenario import converged, finish_and_check, serving, start_load
from tests.cluster_e2e.workload import sqs_client


def test_kill9_the_leader_then_it_restarts_with_its_data_and_catches_up(cluster3: Cluster) -> None:
    c = cluster3
    load = start_load(c)
    try:
        old = c.leader()
        c.kill9(old)
        load.set_targets(serving(c))
        others = [n for n in c.ids if n != old]
        new = c.leader(others)
        assert new != old
        load.wait_acked(40, 60)  # the survivors keep serving
        c.restart(old)
        load.set_targets(serving(c))
        c.wait_caught_up(old)
        load.wait_acked(30, 60)  # also through the restarted node
    finally:
        load.stop()
    finish_and_check(c, load)
    # An election may still happen on a loaded machine between reading the status and finding the leader: wait for
    # the restarted node to follow whichever leader the running nodes agree on, with every voter.
    c.wait_for(lambda: (s := c.status(old)) is not None and s.leader == c.leader() and s.voters == tuple(c.ids),
               20, f"{old} to follow the agreed leader with every voter")


def test_sigstop_the_leader_then_sigcont_it(cluster3: Cluster) -> None:
    c = cluster3
    load = start_load(c)
    try:
        frozen = c.leader()
        c.sigstop(frozen)
        load.set_targets(serving(c))  # requests already sent to it hang until it wakes: ambiguous, not lost
        others = [n for n in c.ids if n != frozen]
        new = c.leader(others)
        # Frozen longer than the forward timeout (5 s) and the visibility timeout (4 s): calls stuck in it time out
        # and retry elsewhere, and messages it handed out just before freezing come back to other consumers.
        load.wait_acked(40, 60, at_least_s=6)
        born = f"born-while-frozen-{uuid.uuid4().hex[:8]}"
        sqs_client(c.endpoint(new)).create_queue(QueueName=born)
        c.sigcont(frozen)  # it wakes believing it leads: it must step down, not answer from stale state
        woken = sqs_client(c.endpoint(frozen))
        assert woken.get_queue_url(QueueName=born)["QueueUrl"].endswith("/" + born)  # never QueueDoesNotExist
        load.set_targets(serving(c))
        c.wait_for(lambda: (s := c.status(frozen)) is not None and s.leader != frozen and s.role == "follower",
                   10, f"{frozen} to step down after waking")
        c.wait_caught_up(frozen)
        load.wait_acked(30, 60)
    finally:
        load.stop()
    finish_and_check(c, load)
    assert new != frozen


def _health(endpoint: str) -> int:
    try:
        with urllib.request.urlopen(f"{endpoint}/health", timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as err:
        return int(err.code)


def test_partition_the_leader_through_the_proxy_then_heal(cluster3: Cluster) -> None:
    c = cluster3
    load = start_load(c)
    try:
        cut = c.leader()
        others = [n for n in c.ids if n != cut]
        c.proxy.isolate(cut, others)
        load.set_targets([c.endpoint(n) for n in others])
        new = c.leader(others)
        assert new != cut
        load.wait_acked(40, 60)
        # The cut-off node never hangs a client: it answers 503 ServiceUnavailable (retryable) within seconds.
        probe = sqs_client(c.endpoint(cut), Config(retries={"total_max_attempts": 1}, read_timeout=20))
        body = "probe-from-the-minority"
        load.history.attempt(load.std_name, body)
        started = time.monotonic()
        with pytest.raises(ClientError) as err:
            probe.send_message(QueueUrl=load.std_url, MessageBody=body)
        assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
        assert err.value.response["Error"]["Code"] == "ServiceUnavailable"
        assert time.monotonic() - started < 15
        # Nor does it answer a read from stale state: a queue the majority created since is not "missing" there.
        born = f"born-in-the-majority-{uuid.uuid4().hex[:8]}"
        sqs_client(c.endpoint(new)).create_queue(QueueName=born)
        with pytest.raises(ClientError) as stale:
            probe.get_queue_url(QueueName=born)
        assert stale.value.response["Error"]["Code"] == "ServiceUnavailable"
        assert sum(c.proxy.dropped[(cut, o)] + c.proxy.dropped[(o, cut)] for o in others) > 0
        # A load balancer sees it too: /health is 503 on the cut-off node (it knows no leader), 200 on the others.
        assert _health(c.endpoint(cut)) == 503
        assert _health(c.endpoint(new)) == 200
        c.proxy.heal()
        load.set_targets(serving(c))
        c.wait_caught_up(cut)
        assert _health(c.endpoint(cut)) == 200
        assert sqs_client(c.endpoint(cut)).get_queue_url(QueueName=born)["QueueUrl"].endswith("/" + born)
        load.wait_acked(30, 60)
    finally:
        load.stop()
    finish_and_check(c, load)
    converged(c)


def test_one_way_partition_the_leader_hears_nothing_and_steps_down(cluster3: Cluster) -> None:
    c = cluster3
    load = start_load(c)
    try:
        deaf = c.leader()
        others = [n for n in c.ids if n != deaf]
        for other in others:
            c.proxy.set_link(other, deaf, DROP)  # it still sends heartbeats; no answer reaches it
        load.set_targets([c.endpoint(n) for n in others])
        c.wait_for(lambda: (s := c.status(deaf)) is not None and s.role != "leader", 10,
                   f"{deaf} to step down (check-quorum) when no follower answers")
        assert c.leader(others) in others
        load.wait_acked(40, 60)
        c.proxy.heal()
        load.set_targets(serving(c))
        c.wait_caught_up(deaf)
        load.wait_acked(30, 60)
    finally:
        load.stop()
    finish_and_check(c, load)


def test_slow_links_slow_commits_but_lose_nothing(cluster3: Cluster) -> None:
    c = cluster3
    load = start_load(c)
    try:
        for src in c.ids:
            for dst in c.ids:
                if src != dst:
                    c.proxy.set_link(src, dst, delay(0.08))  # 80 ms each way, well inside the election timeout
        load.wait_acked(40, 60)
        c.proxy.heal()
        load.wait_acked(20, 60)
    finally:
        load.stop()
    finish_and_check(c, load)
