"""The HTTP(S) delivery worker: sends the pending deliveries the model recorded, reports each attempt as a command.

Only the leader sends (``is_leader``); the outcome of every attempt is replicated (``DeliveryOutcome``), so a new
leader resumes exactly what is still pending: at-least-once, nothing dropped. The worker wakes when the service
kicks it (a publish or subscribe recorded deliveries), when the next retry is due, or at the latest every
``poll_s`` (deliveries recorded through another node, or a leadership change, have no local event to wait on).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from broker.model.commands import encode
from broker.model.sns_commands import DeliveryOutcome
from broker.model.sns_envelope import string_to_sign
from broker.model.sns_model import Delivery, SnsModel, envelope_for
from broker.model.sns_policy import content_type
from broker.sns import http_client
from broker.sns.signing import Signer
from cluster.api import Replicator

log = logging.getLogger(__name__)
USER_AGENT = "Amazon Simple Notification Service Agent"
OUTCOME_BACKOFF_S = 1.0


class DeliveryWorker:
    def __init__(self, model: SnsModel, replicator: Replicator, signer: Callable[[], Awaitable[Signer]],
                 is_leader: Callable[[], bool] = lambda: True, *, poll_s: float = 0.5, concurrency: int = 32,
                 timeout_s: float = http_client.DEFAULT_TIMEOUT_S) -> None:
        self._model = model
        self._rep = replicator
        self._signer = signer
        self._is_leader = is_leader
        self._poll_s = poll_s
        self._timeout_s = timeout_s
        self._slots = asyncio.Semaphore(concurrency)
        self._wake = asyncio.Event()
        self._in_flight: dict[int, asyncio.Task[None]] = {}

    def kick(self) -> None:
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        stopping = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                self._wake.clear()
                wait = self._poll_s
                if self._is_leader():
                    now = self._rep.now_ms()
                    due, next_due = self._model.due_deliveries(now, limit=256)
                    for delivery in due:
                        if delivery.delivery_id not in self._in_flight:
                            self._start(delivery)
                    if next_due is not None:
                        wait = min(wait, max(0.0, (next_due - now) / 1000))
                woken = asyncio.ensure_future(self._wake.wait())
                await asyncio.wait({woken, stopping}, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
                woken.cancel()
        finally:
            stopping.cancel()
            tasks = list(self._in_flight.values())
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def _start(self, delivery: Delivery) -> None:
        task = asyncio.get_running_loop().create_task(self._deliver(delivery))
        self._in_flight[delivery.delivery_id] = task
        task.add_done_callback(lambda _: self._finished(delivery.delivery_id))

    def _finished(self, delivery_id: int) -> None:
        self._in_flight.pop(delivery_id, None)
        self._wake.set()

    async def _deliver(self, delivery: Delivery) -> None:
        async with self._slots:
            ok = await self.send(delivery)
        try:
            await self._rep.propose_and_wait(encode(DeliveryOutcome(delivery.delivery_id, delivery.attempt, ok)))
        except Exception as exc:  # not leader any more (the new leader sends it again), or no quorum right now
            log.info("event=sns-outcome-not-recorded delivery=%d error=%r", delivery.delivery_id, exc)
            await asyncio.sleep(OUTCOME_BACKOFF_S)  # a backoff, so an unrecordable outcome does not spin the endpoint

    async def send(self, delivery: Delivery) -> bool:
        """One attempt: POST the signed document (or the raw message); True on a 2xx answer."""
        sub = self._model.subs.get(delivery.sub_arn)
        if sub is None:
            return True  # unsubscribed meanwhile: nothing left to deliver
        topic = self._model.topics.get(sub.topic_arn)
        version = topic.attributes.get("SignatureVersion", "1") if topic else "1"
        content = content_type(sub.attributes.get("DeliveryPolicy"), topic.attributes.get("DeliveryPolicy")
                               if topic else None)
        headers = {"Content-Type": content, "User-Agent": USER_AGENT,
                   "x-amz-sns-message-type": delivery.kind, "x-amz-sns-message-id": delivery.fields["MessageId"],
                   "x-amz-sns-topic-arn": sub.topic_arn}
        if delivery.kind == "Notification":
            headers["x-amz-sns-subscription-arn"] = sub.arn
        if delivery.kind == "Notification" and sub.raw:
            headers["x-amz-sns-rawdelivery"] = "true"
            body = str(delivery.fields["Message"])
        else:
            signer = await self._signer()
            signature = signer.sign(string_to_sign(delivery.fields), version)
            body = envelope_for(delivery, sub.arn, version, signature)
        try:
            status = await http_client.post(sub.endpoint, body.encode("utf-8"), headers, self._timeout_s)
        except (OSError, TimeoutError, ValueError) as exc:
            log.info("event=sns-delivery-failed subscription=%s attempt=%d error=%r", sub.arn, delivery.attempt, exc)
            return False
        if not 200 <= status < 300:
            log.info("event=sns-delivery-failed subscription=%s attempt=%d status=%d", sub.arn, delivery.attempt,
                     status)
        return 200 <= status < 300
