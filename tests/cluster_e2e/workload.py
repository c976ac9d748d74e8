"""boto3 producers and consumers, in threads, through every node of a cluster; they record a checkable history.

Clients retry like real SDK users (botocore "standard" mode: 503s, throttling and connection errors, with backoff),
and a send counts as acknowledged only when the client finally got a success. Every body is unique; FIFO bodies are
``GROUP:COUNTER`` and each group has one sequential producer. Consumers record each message with the times their
ReceiveMessage call started and returned, before deleting it. ``drain()`` then empties the queues through the
nodes and ``verdict()`` runs the checker.
"""

from __future__ import annotations

import functools
import itertools
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from tests.cluster_e2e.checker import Receipt, Verdict, check, fifo_body

REGION = "us-east-1"
VISIBILITY_S = 4  # a message whose delete failed comes back this soon
CLIENT_CONFIG = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=2, read_timeout=8,
                       max_pool_connections=4)


def sqs_client(endpoint: str, config: Config = CLIENT_CONFIG) -> Any:
    session = boto3.session.Session()  # sessions are not thread-safe: one per client
    return session.client("sqs", endpoint_url=endpoint, region_name=REGION, aws_access_key_id="AKIDEXAMPLE",
                          aws_secret_access_key="secret", config=config)


@dataclass
class History:
    """Everything clients did, guarded by one lock (``cond`` wakes whoever waits for progress)."""

    cond: threading.Condition = field(default_factory=threading.Condition)
    sent: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    acked: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    received: list[Receipt] = field(default_factory=list)
    failures: Counter[str] = field(default_factory=Counter)
    acked_total: int = 0
    received_total: int = 0

    def attempt(self, queue: str, body: str) -> None:
        with self.cond:
            self.sent[queue].add(body)

    def ack(self, queue: str, body: str) -> None:
        with self.cond:
            self.acked[queue].append(body)
            self.acked_total += 1
            self.cond.notify_all()

    def receive(self, queue: str, bodies: list[str], started: float, ended: float, via: str = "") -> None:
        with self.cond:
            self.received.extend(Receipt(queue, b, started, ended, via) for b in bodies)
            self.received_total += len(bodies)
            self.cond.notify_all()

    def fail(self, what: str, exc: Exception) -> None:
        code = exc.response["Error"]["Code"] if isinstance(exc, ClientError) else type(exc).__name__
        with self.cond:
            self.failures[f"{what}:{code}"] += 1

    def unreceived(self) -> dict[str, set[str]]:
        with self.cond:
            got: dict[str, set[str]] = defaultdict(set)
            for r in self.received:
                got[r.queue].add(r.body)
            return {q: missing for q, bodies in self.acked.items() if (missing := set(bodies) - got[q])}


class Workload:
    """A standard and a FIFO queue under steady load from every node in ``targets`` (the test edits them)."""

    def __init__(self, targets: list[str], *, std_producers: int = 2, fifo_producers: int = 2,
                 groups_per_producer: int = 2, consumers_per_queue: int = 2) -> None:
        self.history = History()
        self._targets = list(targets)
        self._targets_lock = threading.Lock()
        self._stop = threading.Event()
        tag = uuid.uuid4().hex[:8]
        self.std_name, self.fifo_name = f"e2e-std-{tag}", f"e2e-fifo-{tag}.fifo"
        admin = sqs_client(targets[0])
        self.std_url = admin.create_queue(QueueName=self.std_name,
                                          Attributes={"VisibilityTimeout": str(VISIBILITY_S)})["QueueUrl"]
        self.fifo_url = admin.create_queue(QueueName=self.fifo_name, Attributes={
            "FifoQueue": "true", "VisibilityTimeout": str(VISIBILITY_S)})["QueueUrl"]
        self.urls = {self.std_name: self.std_url, self.fifo_name: self.fifo_url}
        workers: list[Callable[[int], None]] = [self._std_producer] * std_producers
        workers += [functools.partial(self._fifo_producer, groups=groups_per_producer)] * fifo_producers
        workers += [functools.partial(self._consumer, queue=self.std_name)] * consumers_per_queue
        workers += [functools.partial(self._consumer, queue=self.fifo_name)] * consumers_per_queue
        self._threads = [threading.Thread(target=self._guard, args=(w, i), daemon=True, name=f"e2e-worker-{i}")
                         for i, w in enumerate(workers)]
        self.crashed: list[BaseException] = []
        self._current: dict[str, tuple[str, float]] = {}  # worker -> (endpoint, since): who waits on whom

    # -- control ---------------------------------------------------------------------------------------------
    def start(self) -> Workload:
        for t in self._threads:
            t.start()
        return self

    def set_targets(self, endpoints: list[str]) -> None:
        """The endpoints clients use from now on (a load balancer's view of the healthy nodes)."""
        with self._targets_lock:
            self._targets = list(endpoints)

    def targets(self) -> list[str]:
        with self._targets_lock:
            return list(self._targets)

    def wait_acked(self, more: int, timeout: float, *, at_least_s: float = 0.0) -> None:
        """Block until ``more`` further sends were acknowledged (and, for a fault that must last, ``at_least_s``
        passed); AssertionError (with failure counts and what each worker waits on) if that takes ``timeout``."""
        h = self.history
        with h.cond:
            goal = h.acked_total + more
            h.cond.wait_for(lambda: bool(self.crashed), at_least_s)  # the fault's minimum length, unless a bug
            remaining = max(0.0, timeout - at_least_s)
            if not h.cond.wait_for(lambda: h.acked_total >= goal or bool(self.crashed), remaining):
                now = time.monotonic()
                busy = {name: f"{endpoint} for {now - since:.1f} s"
                        for name, (endpoint, since) in sorted(self._current.items())}
                raise AssertionError(f"only {h.acked_total - goal + more}/{more} sends acknowledged in {timeout} s; "
                                     f"failures: {dict(h.failures)}; workers' last calls: {busy}")
        assert not self.crashed, self.crashed

    def stop(self, timeout: float = 60.0) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout)
        alive = [t.name for t in self._threads if t.is_alive()]
        assert not alive, f"workers still running after {timeout} s: {alive}"
        assert not self.crashed, self.crashed

    # -- workers ---------------------------------------------------------------------------------------------
    def _guard(self, work: Callable[[int], None], index: int) -> None:
        try:
            work(index)
        except BaseException as exc:  # a bug in the workload itself must fail the test, not vanish
            self.crashed.append(exc)
            with self.history.cond:
                self.history.cond.notify_all()

    def _clients(self) -> Callable[[int], tuple[str, Any]]:
        """Per-thread clients; picks the endpoint for request ``n`` round-robin over the current targets."""
        cache: dict[str, Any] = {}

        def pick(n: int) -> tuple[str, Any]:
            targets = self.targets()
            endpoint = targets[n % len(targets)]
            if endpoint not in cache:
                cache[endpoint] = sqs_client(endpoint)
            self._current[threading.current_thread().name] = (endpoint, time.monotonic())
            return endpoint, cache[endpoint]

        return pick

    def _std_producer(self, index: int) -> None:
        pick = self._clients()
        for n in itertools.count():
            if self._stop.is_set():
                return
            body = f"s{index}-{n}"
            self.history.attempt(self.std_name, body)
            try:
                pick(n + index)[1].send_message(QueueUrl=self.std_url, MessageBody=body)
            except (ClientError, BotoCoreError) as exc:
                self.history.fail("send", exc)
                continue
            self.history.ack(self.std_name, body)

    def _fifo_producer(self, index: int, groups: int) -> None:
        pick = self._clients()
        counters = dict.fromkeys((f"g{index}x{g}" for g in range(groups)), 0)
        for n in itertools.count():
            if self._stop.is_set():
                return
            group = f"g{index}x{n % groups}"
            counters[group] += 1
            body = fifo_body(group, counters[group])
            self.history.attempt(self.fifo_name, body)
            try:
                pick(n + index)[1].send_message(QueueUrl=self.fifo_url, MessageBody=body, MessageGroupId=group,
                                                MessageDeduplicationId=body.replace(":", "-"))
            except (ClientError, BotoCoreError) as exc:
                self.history.fail("send-fifo", exc)
                continue  # maybe applied, maybe not; the next counter follows it either way
            self.history.ack(self.fifo_name, body)

    def _consumer(self, index: int, queue: str) -> None:
        pick = self._clients()
        for n in itertools.count():
            if self._stop.is_set():
                return
            self._receive_once(pick(n + index)[1], queue)

    def _receive_once(self, client: Any, queue: str, wait_s: int = 1) -> int:
        url = self.urls[queue]
        started = time.monotonic()
        try:
            messages = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                              WaitTimeSeconds=wait_s).get("Messages", [])
        except (ClientError, BotoCoreError) as exc:
            self.history.fail("receive", exc)
            return 0
        if not messages:
            return 0
        self.history.receive(queue, [m["Body"] for m in messages], started, time.monotonic(),
                             client.meta.endpoint_url)
        entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
        try:
            client.delete_message_batch(QueueUrl=url, Entries=entries)
        except (ClientError, BotoCoreError) as exc:
            self.history.fail("delete", exc)  # they come back after the visibility timeout
        return len(messages)

    # -- the end ---------------------------------------------------------------------------------------------
    def drain(self, endpoints: list[str], timeout: float = 45.0) -> None:
        """Receive (and delete) through ``endpoints`` until every acknowledged message was received or time is up."""
        clients = [sqs_client(e) for e in endpoints]
        deadline = time.monotonic() + timeout
        for n in itertools.count():
            missing = self.history.unreceived()
            if not missing or time.monotonic() > deadline:
                return
            for queue in missing:
                self._receive_once(clients[n % len(clients)], queue)

    def verdict(self) -> Verdict:
        h = self.history
        with h.cond:
            return check(h.sent, h.acked, list(h.received), [self.fifo_name])

    def summary(self) -> str:
        h = self.history
        with h.cond:
            return (f"acked={h.acked_total} received={h.received_total} "
                    f"sent={sum(len(s) for s in h.sent.values())} failures={dict(h.failures)}")
