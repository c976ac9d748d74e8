"""The SQS service (``broker.service.AwsService`` named "sqs"): request params -> validated commands -> replies.

Stateless input rules are checked here, before proposing, so bad input never reaches the log; everything that
depends on queue state is decided by the model in ``apply``. Reads go through ``read_barrier`` and the model's read
methods. ReceiveMessage proposes a command only when the model says a message is visible, and otherwise long-polls
on the Notifier (woken after a durable send) or until the next delayed/in-flight message becomes visible.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from broker.model import errors
from broker.model.commands import (
    ChangeVisibility,
    Command,
    CreateQueue,
    DeleteMessages,
    DeleteQueue,
    ExpireMessages,
    PurgeQueue,
    ReceiveMessages,
    SendEntry,
    SendMessages,
    SetQueueAttributes,
    TagQueue,
    UntagQueue,
    encode,
)
from broker.model.sqs_model import SqsModel
from broker.model.sqs_types import MAX_BATCH_BYTES, MAX_LIST_QUEUES
from broker.model.sqs_validation import (
    MESSAGE_SYSTEM_ATTRIBUTES,
    check_attribute_names,
    check_batch_ids,
    check_int_param,
    check_max_messages,
    check_queue_attributes,
    check_queue_name,
    check_visibility_timeout,
    check_wait_time,
)
from broker.notify import Notifier
from broker.service import RequestContext
from broker.sqs.messages import attribute_selector, build_send_entry, render_message, send_result
from broker.sqs.urls import parse_queue_url, queue_arn, queue_url
from broker.state_machine import sqs_wake_key
from cluster.api import Replicator

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any], RequestContext], Awaitable[dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class SqsConfig:
    account_id: str = "000000000000"
    region: str = "us-east-1"
    maintenance_interval_s: float = 1.0


class SqsService:
    """SQS standard queues over the replicated model."""

    name = "sqs"

    def __init__(self, model: SqsModel, replicator: Replicator, notifier: Notifier,
                 config: SqsConfig | None = None) -> None:
        self._model = model
        self._rep = replicator
        self._notifier = notifier
        self._config = config or SqsConfig()
        self._closed = False
        self._ops: dict[str, Handler] = {
            "CreateQueue": self.create_queue, "GetQueueUrl": self.get_queue_url, "ListQueues": self.list_queues,
            "DeleteQueue": self.delete_queue, "PurgeQueue": self.purge_queue,
            "GetQueueAttributes": self.get_queue_attributes, "SetQueueAttributes": self.set_queue_attributes,
            "SendMessage": self.send_message, "SendMessageBatch": self.send_message_batch,
            "ReceiveMessage": self.receive_message, "DeleteMessage": self.delete_message,
            "DeleteMessageBatch": self.delete_message_batch, "ChangeMessageVisibility": self.change_visibility,
            "ChangeMessageVisibilityBatch": self.change_visibility_batch, "TagQueue": self.tag_queue,
            "UntagQueue": self.untag_queue, "ListQueueTags": self.list_queue_tags,
        }

    @property
    def operations(self) -> frozenset[str]:
        return frozenset(self._ops)

    async def handle(self, operation: str, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        handler = self._ops.get(operation)
        if handler is None:
            raise errors.InvalidAction(f"The action {operation} is not valid for this endpoint.")
        return await handler(params, ctx)

    def close(self) -> None:
        """Shutdown: end every long poll now (they answer with no messages)."""
        self._closed = True
        self._notifier.close()

    # -- helpers ----------------------------------------------------------------------------------------------

    def _account(self, ctx: RequestContext) -> str:
        return ctx.account_id or self._config.account_id

    def _target(self, params: dict[str, Any], ctx: RequestContext) -> tuple[str, str]:
        return parse_queue_url(params.get("QueueUrl"), self._account(ctx))

    async def _propose(self, command: Command) -> Any:
        reply = await self._rep.propose_and_wait(encode(command))
        if isinstance(reply, BaseException):
            raise reply
        return reply

    def _stopping(self) -> bool:
        return self._closed or self._notifier.closed

    # -- queues -----------------------------------------------------------------------------------------------

    async def create_queue(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        raw_attributes = params.get("Attributes") or {}
        name = check_queue_name(params.get("QueueName"), raw_attributes)
        attributes = check_queue_attributes(raw_attributes, creating=True)
        tags = _check_tags(params.get("tags") or {})
        account = self._account(ctx)
        await self._propose(CreateQueue(account, name, tuple(sorted(attributes.items())), tuple(sorted(tags.items()))))
        return {"QueueUrl": queue_url(ctx.endpoint_url, account, name)}

    async def get_queue_url(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        name = params.get("QueueName")
        if not isinstance(name, str) or not name:
            raise errors.MissingParameter("The request must contain the parameter QueueName.")
        account = params.get("QueueOwnerAWSAccountId") or self._account(ctx)
        await self._rep.read_barrier()
        self._model.queue(account, name)
        return {"QueueUrl": queue_url(ctx.endpoint_url, account, name)}

    async def list_queues(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        max_results = check_int_param("MaxResults", params.get("MaxResults"), 1, MAX_LIST_QUEUES,
                                      f"MaxResults must be an integer between 1 and {MAX_LIST_QUEUES}.")
        account = self._account(ctx)
        await self._rep.read_barrier()
        names, token = self._model.list_queues(account, params.get("QueueNamePrefix") or "", max_results,
                                               params.get("NextToken"))
        out: dict[str, Any] = {}
        if names:
            out["QueueUrls"] = [queue_url(ctx.endpoint_url, account, n) for n in names]
        if token:
            out["NextToken"] = token
        return out

    async def delete_queue(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        await self._propose(DeleteQueue(*self._target(params, ctx)))
        return {}

    async def purge_queue(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        await self._propose(PurgeQueue(*self._target(params, ctx)))
        return {}

    async def get_queue_attributes(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        account, name = self._target(params, ctx)
        names = list(params.get("AttributeNames") or [])
        check_attribute_names(names)
        await self._rep.read_barrier()
        region = ctx.region or self._config.region
        attributes = self._model.get_queue_attributes(account, name, names, self._rep.now_ms(),
                                                      queue_arn(region, account, name))
        return {"Attributes": attributes} if attributes else {}

    async def set_queue_attributes(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        account, name = self._target(params, ctx)
        raw = params.get("Attributes")
        if not isinstance(raw, dict):
            raise errors.MissingParameter("The request must contain the parameter Attributes.")
        attributes = check_queue_attributes(raw, creating=False)
        await self._propose(SetQueueAttributes(account, name, tuple(sorted(attributes.items()))))
        return {}

    async def tag_queue(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        account, name = self._target(params, ctx)
        tags = _check_tags(params.get("Tags") or {})
        if not tags:
            raise errors.MissingParameter("The request must contain the parameter Tags.")
        await self._propose(TagQueue(account, name, tuple(sorted(tags.items()))))
        return {}

    async def untag_queue(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        account, name = self._target(params, ctx)
        keys = params.get("TagKeys") or []
        if not keys:
            raise errors.MissingParameter("The request must contain the parameter TagKeys.")
        await self._propose(UntagQueue(account, name, tuple(str(k) for k in keys)))
        return {}

    async def list_queue_tags(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        account, name = self._target(params, ctx)
        await self._rep.read_barrier()
        tags = self._model.list_queue_tags(account, name)
        return {"Tags": tags} if tags else {}

    # -- messages ---------------------------------------------------------------------------------------------

    def _sender(self, ctx: RequestContext) -> str:
        return ctx.access_key_id or self._account(ctx)

    async def send_message(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        account, name = self._target(params, ctx)
        entry = build_send_entry("0", params)
        (failure,) = await self._propose(SendMessages(account, name, self._sender(ctx), (entry,)))
        if failure is not None:
            raise failure
        return send_result(entry)

    async def send_message_batch(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        account, name = self._target(params, ctx)
        raw_entries = params.get("Entries") or []
        check_batch_ids(raw_entries, "SendMessageBatchRequestEntry")
        entries: list[SendEntry] = []
        failed: list[dict[str, Any]] = []
        for raw in raw_entries:
            try:
                entries.append(build_send_entry(raw["Id"], raw))
            except errors.BrokerError as exc:
                failed.append(_failure(raw["Id"], exc))
        total = sum(e.size for e in entries)
        if total > MAX_BATCH_BYTES:
            raise errors.BatchRequestTooLong(
                f"Batch requests cannot be longer than {MAX_BATCH_BYTES} bytes. You have sent {total} bytes.")
        successful: list[dict[str, Any]] = []
        if entries:
            results = await self._propose(SendMessages(account, name, self._sender(ctx), tuple(entries)))
            for entry, failure in zip(entries, results, strict=True):
                if failure is None:
                    successful.append({"Id": entry.entry_id, **send_result(entry)})
                else:
                    failed.append(_failure(entry.entry_id, failure))
        else:
            await self._rep.read_barrier()
            self._model.queue(account, name)  # a batch of only invalid entries still needs an existing queue
        return {"Successful": successful, "Failed": failed}

    async def receive_message(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        account, name = self._target(params, ctx)
        max_messages = check_max_messages(params.get("MaxNumberOfMessages"))
        visibility = check_visibility_timeout(params.get("VisibilityTimeout"))
        wait = check_wait_time(params.get("WaitTimeSeconds"))
        system_names = frozenset(n for n in [*(params.get("AttributeNames") or []),
                                             *(params.get("MessageSystemAttributeNames") or [])]
                                 if n in MESSAGE_SYSTEM_ATTRIBUTES)
        selector = attribute_selector(params.get("MessageAttributeNames"))
        if wait is None:
            wait = self._model.receive_wait_seconds(account, name)
        received = await self._receive(account, name, max_messages, visibility, wait)
        if not received:
            return {}
        return {"Messages": [render_message(r, system_names, selector) for r in received]}

    async def _receive(self, account: str, name: str, max_messages: int, visibility: int | None,
                       wait: int) -> list[Any]:
        """Receive now if anything is visible; else wait for a wake-up or the next visibility time."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        key = sqs_wake_key(account, name)
        command = ReceiveMessages(account, name, max_messages, visibility)
        while True:
            now = self._rep.now_ms()
            if self._model.has_visible(account, name, now):
                received: list[Any] = await self._propose(command)
                if received:
                    return received
            remaining = deadline - loop.time()
            if remaining <= 0 or self._stopping():
                return []
            next_at = self._model.next_visible_at(account, name)
            timeout = remaining if next_at is None else min(remaining, max(0.001, (next_at - now) / 1000 + 0.001))
            await self._notifier.wait(key, timeout)

    async def delete_message(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        account, name = self._target(params, ctx)
        handle = _receipt_handle(params)
        (failure,) = await self._propose(DeleteMessages(account, name, (("0", handle),)))
        if failure is not None:
            raise failure
        return {}

    async def delete_message_batch(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        account, name = self._target(params, ctx)
        raw_entries = params.get("Entries") or []
        check_batch_ids(raw_entries, "DeleteMessageBatchRequestEntry")
        entries: list[tuple[str, str]] = []
        failed: list[dict[str, Any]] = []
        for raw in raw_entries:
            try:
                entries.append((raw["Id"], _receipt_handle(raw)))
            except errors.BrokerError as exc:
                failed.append(_failure(raw["Id"], exc))
        successful = await self._batch(DeleteMessages(account, name, tuple(entries)), failed)
        return {"Successful": successful, "Failed": failed}

    async def change_visibility(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        account, name = self._target(params, ctx)
        handle = _receipt_handle(params)
        timeout = _required_timeout(params)
        (failure,) = await self._propose(ChangeVisibility(account, name, (("0", handle, timeout),)))
        if failure is not None:
            raise failure
        return {}

    async def change_visibility_batch(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        account, name = self._target(params, ctx)
        raw_entries = params.get("Entries") or []
        check_batch_ids(raw_entries, "ChangeMessageVisibilityBatchRequestEntry")
        entries: list[tuple[str, str, int]] = []
        failed: list[dict[str, Any]] = []
        for raw in raw_entries:
            try:
                entries.append((raw["Id"], _receipt_handle(raw), _required_timeout(raw)))
            except errors.BrokerError as exc:
                failed.append(_failure(raw["Id"], exc))
        successful = await self._batch(ChangeVisibility(account, name, tuple(entries)), failed)
        return {"Successful": successful, "Failed": failed}

    async def _batch(self, command: DeleteMessages | ChangeVisibility,
                     failed: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Propose a receipt-handle batch; split the per-entry replies into Successful and ``failed``."""
        if not command.entries:
            await self._rep.read_barrier()
            self._model.queue(command.account, command.name)
            return []
        results = await self._propose(command)
        successful: list[dict[str, Any]] = []
        for entry, failure in zip(command.entries, results, strict=True):
            if failure is None:
                successful.append({"Id": str(entry[0])})
            else:
                failed.append(_failure(str(entry[0]), failure))
        return successful

    # -- background -------------------------------------------------------------------------------------------

    async def run_maintenance(self, stop: asyncio.Event) -> None:
        """Propose expiry sweeps when the model says a message passed its retention period; run until ``stop``."""
        interval = self._config.maintenance_interval_s
        while not stop.is_set():
            due = self._model.next_expiry_ms()
            now = self._rep.now_ms()
            if due is not None and due <= now:
                try:
                    removed = await self._propose(ExpireMessages())
                except Exception:  # not leader, shutting down: try again later
                    log.debug("expiry sweep not applied", exc_info=True)
                    removed = 0
                if removed:
                    continue
            pause = interval if due is None or due <= now else min(interval, (due - now) / 1000 + 0.001)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), pause)

    def queue_gauges(self) -> Iterator[tuple[str, str, int, int, int]]:
        """Gauge source for ``broker.metrics.register_queue_gauges``."""
        return self._model.gauges(self._rep.now_ms())


def _failure(entry_id: str, exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, errors.BrokerError):
        return {"Id": entry_id, "SenderFault": exc.sender_fault, "Code": exc.code, "Message": exc.message}
    return {"Id": entry_id, "SenderFault": False, "Code": "InternalFailure", "Message": str(exc)}


def _receipt_handle(params: dict[str, Any]) -> str:
    handle = params.get("ReceiptHandle")
    if not isinstance(handle, str) or not handle:
        raise errors.MissingParameter("The request must contain the parameter ReceiptHandle.")
    return handle


def _required_timeout(params: dict[str, Any]) -> int:
    timeout = check_visibility_timeout(params.get("VisibilityTimeout"))
    if timeout is None:
        raise errors.MissingParameter("The request must contain the parameter VisibilityTimeout.")
    return timeout


def _check_tags(tags: dict[str, Any]) -> dict[str, str]:
    for key, value in tags.items():
        if not isinstance(key, str) or not 1 <= len(key) <= 128 or not isinstance(value, str) or len(value) > 256:
            raise errors.InvalidParameterValue(f"Tag {key!r} is invalid: keys are 1-128 and values 0-256 characters.")
    if len(tags) > 50:
        raise errors.InvalidParameterValue("Too many tags: a queue can have at most 50.")
    return dict(tags)
