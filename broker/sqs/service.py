"""The SQS service (``broker.service.AwsService`` named "sqs"): request params -> validated commands -> replies.

Stateless input rules are checked here, before proposing, so bad input never reaches the log; everything that
depends on queue state is decided by the model in ``apply``. Reads go through ``read_barrier`` and the model's read
methods. ReceiveMessage proposes a command only when the model says a message is visible, and otherwise long-polls
on the Notifier (woken after a durable send) or until the next delayed/in-flight message becomes visible.

Decisions where AWS is unclear: ReceiveMessage ignores AttributeNames / MessageSystemAttributeNames it does not
know (as AWS does: the names are an enum in the model, but unknown ones are not reported as errors); it ignores
ReceiveRequestAttemptId on standard queues. QueueDeletedRecently is never raised (see ``sqs_model``). The
maintenance loop runs expiry sweeps and the steps of running message move tasks, each step a replicated command.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import json
import logging
import re
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from broker.kms.errors import KmsFailure, RootMissing, sqs_error
from broker.kms.sealer import SQS_MANAGED, TEXT_PREFIX, Sealer
from broker.model import errors
from broker.model.commands import (
    AddPermission,
    CancelMoveTask,
    ChangeVisibility,
    Command,
    CreateQueue,
    DeleteMessages,
    DeleteQueue,
    ExpireMessages,
    MoveMessages,
    PurgeQueue,
    ReceiveMessages,
    RemovePermission,
    SendEntry,
    SendMessages,
    SetQueueAttributes,
    StartMoveTask,
    TagQueue,
    UntagQueue,
)
from broker.model.sqs_model import SqsModel
from broker.model.sqs_movetask import RUNNING
from broker.model.sqs_queue import Queue
from broker.model.sqs_types import (
    MAX_BATCH_BYTES,
    MAX_LIST_QUEUES,
    MAX_MOVES_PER_COMMAND,
    SEQ_SLOTS,
    ReceivedMessage,
)
from broker.model.sqs_validation import (
    MESSAGE_SYSTEM_ATTRIBUTES,
    arn_queue,
    arn_region,
    check_attribute_names,
    check_batch_ids,
    check_fifo_id,
    check_int_param,
    check_max_messages,
    check_queue_attributes,
    check_queue_name,
    check_visibility_timeout,
    check_wait_time,
)
from broker.notify import Notifier
from broker.replication import propose
from broker.service import RequestContext
from broker.sqs.messages import attribute_selector, build_send_entry, render_message, send_result
from broker.sqs.tasks import parse_task_handle, task_entry, task_handle
from broker.sqs.urls import parse_queue_url, queue_arn, queue_url
from broker.state_machine import sqs_wake_key
from cluster.api import Replicator

log = logging.getLogger(__name__)
_new_tuple = tuple.__new__  # NamedTuple construction without its generated Python __new__ (~2x cheaper)
_T = TypeVar("_T")

PERMISSION_ACTIONS = frozenset({"*", "SendMessage", "ReceiveMessage", "DeleteMessage", "ChangeMessageVisibility",
                                "GetQueueAttributes", "GetQueueUrl", "ListDeadLetterSourceQueues", "PurgeQueue"})
MAX_PERMISSION_ACTIONS = 7
MAX_MOVE_RATE = 500
_LABEL = re.compile(r"[A-Za-z0-9_-]{1,80}")

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
                 config: SqsConfig | None = None, *, is_leader: Callable[[], bool] = lambda: True,
                 sealer: Sealer | None = None, ensure_root: Callable[[], Awaitable[object]] | None = None) -> None:
        self._model = model
        # Encryption at rest (broker.kms): None leaves bodies in clear; ``ensure_root`` replicates the secret the
        # SQS-managed key derives from when the cluster has none yet.
        self._sealer = sealer
        self._ensure_root = ensure_root
        self._rep = replicator
        # Only the leader proposes maintenance (expiry sweeps, move-task steps): followers would propose the same.
        self._is_leader = is_leader
        self._notifier = notifier
        self._config = config or SqsConfig()
        self._closed = False
        self._task_started = asyncio.Event()  # wakes the maintenance loop when a move task starts
        self._ops: dict[str, Handler] = {
            "CreateQueue": self.create_queue, "GetQueueUrl": self.get_queue_url, "ListQueues": self.list_queues,
            "DeleteQueue": self.delete_queue, "PurgeQueue": self.purge_queue,
            "GetQueueAttributes": self.get_queue_attributes, "SetQueueAttributes": self.set_queue_attributes,
            "SendMessage": self.send_message, "SendMessageBatch": self.send_message_batch,
            "ReceiveMessage": self.receive_message, "DeleteMessage": self.delete_message,
            "DeleteMessageBatch": self.delete_message_batch, "ChangeMessageVisibility": self.change_visibility,
            "ChangeMessageVisibilityBatch": self.change_visibility_batch, "TagQueue": self.tag_queue,
            "UntagQueue": self.untag_queue, "ListQueueTags": self.list_queue_tags,
            "ListDeadLetterSourceQueues": self.list_dead_letter_source_queues,
            "AddPermission": self.add_permission, "RemovePermission": self.remove_permission,
            "StartMessageMoveTask": self.start_message_move_task,
            "ListMessageMoveTasks": self.list_message_move_tasks,
            "CancelMessageMoveTask": self.cancel_message_move_task,
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
        return await propose(self._rep, command)

    def _stopping(self) -> bool:
        return self._closed or self._notifier.closed

    # -- the data path both front ends use (SQS actions here, the gRPC Queues API in broker/grpc_api) ---------

    @property
    def stopping(self) -> bool:
        """Shutting down: long polls and consumers end."""
        return self._stopping()

    async def require_queue(self, account: str, name: str) -> None:
        """QueueDoesNotExist unless the queue exists (after a read barrier): a batch of only invalid entries, or an
        empty one, still names a queue that must exist."""
        await self._rep.read_barrier()
        self._model.queue(account, name)

    def receive_wait_seconds(self, account: str, name: str) -> int:
        """The queue's ReceiveMessageWaitTimeSeconds (long-poll default)."""
        return self._model.receive_wait_seconds(account, name)

    async def send_entries(self, account: str, name: str, sender: str, entries: list[SendEntry], *,
                           sealed: bool = False) -> list[object]:
        """Send validated entries; one outcome per entry (message id, (id, sequence number) or an exception).

        One SendMessages command per SEQ_SLOTS entries (the model numbers a command's messages in that many
        slots). Standard queues propose the chunks concurrently, which the replicator coalesces into one log append
        and one fsync; FIFO chunks go one after another so that the log keeps the order the client sent. Bodies of
        an encrypted queue are sealed here, before proposing, so plaintext never reaches the log, unless
        ``sealed``: built with what ``stored_bodies`` returned.
        """
        if self._sealer is not None and not sealed:
            entries = await self._sealed(account, name, entries)
        if len(entries) <= SEQ_SLOTS:
            reply: list[object] = await self._propose(SendMessages(account, name, sender, tuple(entries)))
            return reply
        chunks = [tuple(entries[i:i + SEQ_SLOTS]) for i in range(0, len(entries), SEQ_SLOTS)]
        if name.endswith(".fifo"):
            replies = [await self._propose(SendMessages(account, name, sender, chunk)) for chunk in chunks]
        else:
            replies = await asyncio.gather(*(self._propose(SendMessages(account, name, sender, chunk))
                                             for chunk in chunks))
        return [outcome for reply in replies for outcome in reply]

    async def receive(self, command: ReceiveMessages, wait: int) -> tuple[list[ReceivedMessage], list[str]]:
        """Receive up to ``command.max_messages``, long-polling up to ``wait`` seconds when none is visible: the
        messages, and their bodies as the consumer reads them (the model's messages keep sealed bodies sealed).

        Sealed bodies are opened here; one that cannot be (key gone, disabled, other material) fails the call with
        the Kms* error AWS uses, and the received messages come back after their visibility timeout, unharmed.
        The bodies come as a list of their own rather than as rebuilt messages: rebuilding two tuples for every
        message received cost more than opening it from memory."""
        received = await self._receive(command, wait)
        bodies = [r.message.body for r in received]
        if self._sealer is None:
            return received, bodies
        sealed = [i for i, body in enumerate(bodies) if body.startswith(TEXT_PREFIX)]
        if sealed:
            try:
                opened = self._sealer.open_texts([bodies[i] for i in sealed])
            except KmsFailure as failure:
                raise sqs_error(failure) from None
            for i, body in zip(sealed, opened, strict=True):
                bodies[i] = body
        return received, bodies

    async def _sealed(self, account: str, name: str, entries: list[SendEntry]) -> list[SendEntry]:
        """``entries`` with bodies sealed under the queue's KmsMasterKeyId, or the SQS-managed key when
        SqsManagedSseEnabled (AWS's default); as they are for a queue without encryption.

        FIFO content-based deduplication hashes the plaintext here, as the model cannot hash a sealed body."""
        q = await self._known_queue(account, name)
        key = _sealing_key(q.attributes)
        if key is None:
            return entries
        content_dedup = q.fifo and q.content_dedup
        return await self._sealing(lambda: self._seal_entries(key, entries, content_dedup))

    async def stored_bodies(self, account: str, name: str, bodies: list[str]) -> list[str] | None:
        """``bodies`` as a queue's messages keep them (sealed when it is encrypted), or None when the queue keeps
        them as they are; for entries built with their stored body at once (``send_entries(..., sealed=True)``)
        rather than built and then rebuilt sealed."""
        sealer = self._sealer
        if sealer is None:
            return None
        key = _sealing_key((await self._known_queue(account, name)).attributes)
        if key is None:
            return None
        return await self._sealing(lambda: sealer.seal_texts(key, bodies))

    async def _known_queue(self, account: str, name: str) -> Queue:
        """The queue from this node's state (a barrier only when it does not know it): QueueDoesNotExist before
        any plaintext is proposed for a missing queue."""
        q = self._model.queues.get((account, name))
        if q is None:
            await self._rep.read_barrier()
            self._model.queue(account, name)
            q = self._model.queues[(account, name)]
        return q

    async def _sealing(self, seal: Callable[[], _T]) -> _T:
        """``seal()``, creating the cluster's managed root first if it has none yet; KMS failures as SQS errors."""
        try:
            try:
                return seal()
            except RootMissing:
                if self._ensure_root is None:
                    raise
                await self._ensure_root()
                return seal()
        except KmsFailure as failure:
            raise sqs_error(failure) from None

    def _seal_entries(self, key: str, entries: list[SendEntry], content_dedup: bool) -> list[SendEntry]:
        assert self._sealer is not None
        bodies = self._sealer.seal_texts(key, [e.body for e in entries])
        if content_dedup:
            return [e._replace(body=body, dedup_id=e.dedup_id if e.dedup_id is not None
                               else hashlib.sha256(e.body.encode("utf-8")).hexdigest())
                    for e, body in zip(entries, bodies, strict=True)]
        # Built field by field: NamedTuple._replace costs ~3x more, and this runs for every message sent.
        return [_new_tuple(SendEntry, (e[0], e[1], body, *e[3:])) for e, body in zip(entries, bodies, strict=True)]

    async def settle(self, command: DeleteMessages | ChangeVisibility) -> list[BaseException | None]:
        """Delete or change the visibility of a receipt-handle batch; one failure (or None) per entry."""
        if not command.entries:
            await self.require_queue(command.account, command.name)
            return []
        results: list[BaseException | None] = await self._propose(command)
        return results

    def _region(self, ctx: RequestContext) -> str:
        return ctx.region or self._config.region

    def _arn_target(self, arn: object, param: str, ctx: RequestContext) -> tuple[str, str]:
        """(account, name) of a queue ARN given as ``param``; ResourceNotFound when it cannot be one of ours."""
        if not isinstance(arn, str) or not arn:
            raise errors.MissingParameter(f"The request must contain the parameter {param}.")
        target = arn_queue(arn)
        if target is None:
            raise errors.InvalidParameterValue(
                f"Value {arn} for parameter {param} is invalid. Reason: You must use this format to specify the "
                f"{param}: arn:<partition>:<service>:<region>:<account-id>:<resource-id>")
        if arn_region(arn) != self._region(ctx):
            raise errors.ResourceNotFoundException(
                f"The resource that you specified for the {param} parameter doesn't exist.")
        return target

    def _check_redrive_region(self, attributes: dict[str, str], ctx: RequestContext) -> None:
        """A dead-letter queue must be in the same region and account as its source."""
        raw = attributes.get("RedrivePolicy")
        if raw:
            arn = json.loads(raw)["deadLetterTargetArn"]
            target = arn_queue(arn)
            if arn_region(arn) != self._region(ctx) or target is None or target[0] != self._account(ctx):
                raise errors.InvalidParameterValue(
                    f"Value {raw} for parameter RedrivePolicy is invalid. Reason: Dead letter target does not exist.")

    # -- queues -----------------------------------------------------------------------------------------------

    async def create_queue(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        raw_attributes = params.get("Attributes") or {}
        name = check_queue_name(params.get("QueueName"), raw_attributes)
        attributes = check_queue_attributes(raw_attributes, creating=True, fifo=name.endswith(".fifo"))
        self._check_redrive_region(attributes, ctx)
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
        attributes = check_queue_attributes(raw, creating=False, fifo=name.endswith(".fifo"))
        self._check_redrive_region(attributes, ctx)
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
        """SenderId as AWS reports it: the caller's user id (the account id for a root caller)."""
        return ctx.user_id or ctx.access_key_id or self._account(ctx)

    async def send_message(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        account, name = self._target(params, ctx)
        entry = build_send_entry("0", params, name.endswith(".fifo"))
        (outcome,) = await self.send_entries(account, name, self._sender(ctx), [entry])
        if isinstance(outcome, BaseException):
            raise outcome
        return send_result(entry, outcome)

    async def send_message_batch(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        account, name = self._target(params, ctx)
        raw_entries = params.get("Entries") or []
        check_batch_ids(raw_entries, "SendMessageBatchRequestEntry")
        entries: list[SendEntry] = []
        failed: list[dict[str, Any]] = []
        for raw in raw_entries:
            try:
                entries.append(build_send_entry(raw["Id"], raw, name.endswith(".fifo")))
            except errors.BrokerError as exc:
                failed.append(_failure(raw["Id"], exc))
        total = sum(e.size for e in entries)
        if total > MAX_BATCH_BYTES:
            raise errors.BatchRequestTooLong(
                f"Batch requests cannot be longer than {MAX_BATCH_BYTES} bytes. You have sent {total} bytes.")
        successful: list[dict[str, Any]] = []
        if entries:
            results = await self.send_entries(account, name, self._sender(ctx), entries)
            for entry, outcome in zip(entries, results, strict=True):
                if isinstance(outcome, BaseException):
                    failed.append(_failure(entry.entry_id, outcome))
                else:
                    successful.append({"Id": entry.entry_id, **send_result(entry, outcome)})
        else:
            await self.require_queue(account, name)
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
        attempt = check_fifo_id("ReceiveRequestAttemptId", params.get("ReceiveRequestAttemptId"))
        if not name.endswith(".fifo"):
            attempt = None  # standard queues ignore it, as AWS does
        if wait is None:
            wait = self._model.receive_wait_seconds(account, name)
        received, bodies = await self.receive(ReceiveMessages(account, name, max_messages, visibility, attempt), wait)
        if not received:
            return {}
        region = self._region(ctx)
        return {"Messages": [render_message(r, body, system_names, selector, region)
                             for r, body in zip(received, bodies, strict=True)]}

    async def _receive(self, command: ReceiveMessages, wait: int) -> list[ReceivedMessage]:
        """Receive now if anything is deliverable (or a ReceiveRequestAttemptId retry may be answered); else wait
        for a wake-up or the next visibility time."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        account, name = command.account, command.name
        key = sqs_wake_key(account, name)
        retry = command.attempt_id is not None  # a retried attempt may be answered although nothing is visible
        while True:
            now = self._rep.now_ms()
            if self._model.has_visible(account, name, now) or (
                    retry and self._model.has_attempt(account, name, str(command.attempt_id), now)):
                retry = False
                received: list[ReceivedMessage] = await self._propose(command)
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
        results = await self.settle(command)
        successful: list[dict[str, Any]] = []
        for entry, failure in zip(command.entries, results, strict=True):
            if failure is None:
                successful.append({"Id": str(entry[0])})
            else:
                failed.append(_failure(str(entry[0]), failure))
        return successful

    # -- dead-letter queues, permissions, move tasks -----------------------------------------------------------

    async def list_dead_letter_source_queues(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        account, name = self._target(params, ctx)
        max_results = check_int_param("MaxResults", params.get("MaxResults"), 1, MAX_LIST_QUEUES,
                                      f"MaxResults must be an integer between 1 and {MAX_LIST_QUEUES}.")
        await self._rep.read_barrier()
        sources = self._model.dead_letter_sources(account, name)
        token = params.get("NextToken")
        if token:
            after = _decode_page_token(token)
            sources = [s for s in sources if s > after]
        limit = MAX_LIST_QUEUES if max_results is None else max_results
        page = sources[:limit]
        out: dict[str, Any] = {"queueUrls": [queue_url(ctx.endpoint_url, a, n) for a, n in page]}
        if max_results is not None and len(sources) > limit:
            out["NextToken"] = base64.urlsafe_b64encode("\x00".join(page[-1]).encode()).decode()
        return out

    async def add_permission(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        account, name = self._target(params, ctx)
        label = _check_label(params.get("Label"))
        account_ids = [str(a) for a in params.get("AWSAccountIds") or []]
        actions = [str(a) for a in params.get("Actions") or []]
        if not account_ids:
            raise errors.MissingParameter("The request must contain the parameter AWSAccountIds.")
        if not actions:
            raise errors.MissingParameter("The request must contain the parameter Actions.")
        if len(actions) > MAX_PERMISSION_ACTIONS:
            raise errors.OverLimit(f"{len(actions)} Actions were found, maximum allowed is {MAX_PERMISSION_ACTIONS}.")
        for action in actions:
            if action not in PERMISSION_ACTIONS:
                raise errors.InvalidParameterValue(f"Value SQS:{action} for parameter ActionName is invalid. "
                                                   "Reason: Only the queue owner is allowed to invoke this action.")
        for account_id in account_ids:
            if not (account_id.isdigit() and len(account_id) == 12):
                raise errors.InvalidParameterValue(
                    f"Value [{account_id}] for parameter PrincipalId is invalid. Reason: Unable to verify.")
        arn = queue_arn(self._region(ctx), account, name)
        await self._propose(AddPermission(account, name, label, tuple(account_ids), tuple(actions), arn))
        return {}

    async def remove_permission(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        account, name = self._target(params, ctx)
        label = params.get("Label")
        if not isinstance(label, str) or not label:
            raise errors.MissingParameter("The request must contain the parameter Label.")
        await self._propose(RemovePermission(account, name, label))
        return {}

    async def start_message_move_task(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        source_arn = params.get("SourceArn")
        account, name = self._arn_target(source_arn, "SourceArn", ctx)
        dest_arn = params.get("DestinationArn")
        dest: tuple[str | None, str | None] = (None, None)
        if dest_arn is not None:
            dest = self._arn_target(dest_arn, "DestinationArn", ctx)
        rate = params.get("MaxNumberOfMessagesPerSecond")
        if rate is not None and (isinstance(rate, bool) or not isinstance(rate, int)
                                 or not 1 <= rate <= MAX_MOVE_RATE):
            raise errors.InvalidParameterValue(
                "Value for parameter MaxNumberOfMessagesPerSecond is invalid. Reason: You must enter a number "
                f"that's between 1 and {MAX_MOVE_RATE}.")
        task_id = await self._propose(StartMoveTask(account, name, str(source_arn), dest[0], dest[1],
                                                    dest_arn, rate))
        self._task_started.set()
        return {"TaskHandle": task_handle(task_id, str(source_arn))}

    async def list_message_move_tasks(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        account, name = self._arn_target(params.get("SourceArn"), "SourceArn", ctx)
        max_results = check_int_param("MaxResults", params.get("MaxResults"), 1, 10,
                                      "You must enter a number that's between 1 and 10.")
        await self._rep.read_barrier()
        if not self._model.has_queue(account, name):
            raise errors.ResourceNotFoundException(
                "The resource that you specified for the SourceArn parameter doesn't exist.")
        tasks = self._model.move_tasks(account, name)[:max_results or 1]
        return {"Results": [task_entry(t) for t in tasks]}

    async def cancel_message_move_task(self, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        task_id, source_arn = parse_task_handle(params.get("TaskHandle"))
        target = arn_queue(source_arn)
        if target is None or arn_region(source_arn) != self._region(ctx):
            raise errors.ResourceNotFoundException(
                "The resource that you specified for the SourceArn parameter doesn't exist.")
        moved = await self._propose(CancelMoveTask(target[0], target[1], task_id))
        return {"ApproximateNumberOfMessagesMoved": moved}

    # -- background -------------------------------------------------------------------------------------------

    async def run_maintenance(self, stop: asyncio.Event) -> None:
        """Propose expiry sweeps when the model says a message passed its retention period, and the steps of
        running message move tasks at their rates; run until ``stop``."""
        interval = self._config.maintenance_interval_s
        while not stop.is_set():
            if not self._is_leader():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), interval)
                continue
            self._task_started.clear()  # a task started from here on wakes the pause below
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
            task_due = await self._step_move_tasks()
            pause = interval if due is None or due <= now else min(interval, (due - now) / 1000 + 0.001)
            if task_due is not None:
                pause = min(pause, max(0.0, (task_due - self._rep.now_ms()) / 1000 + 0.001))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(_first(stop.wait(), self._task_started.wait()), pause)

    async def _step_move_tasks(self) -> int | None:
        """Propose one MoveMessages per running task whose rate allows a move now; return when the next one is
        due (None: no running task)."""
        next_due: int | None = None
        for task in self._model.running_tasks():
            now = self._rep.now_ms()
            at = task.next_due()
            if at <= now:
                try:
                    await self._propose(MoveMessages(task.task_id, MAX_MOVES_PER_COMMAND))
                    at = task.next_due()
                except Exception:  # not leader, shutting down: try again a little later
                    log.debug("move task step not applied", exc_info=True)
                    at = now + int(self._config.maintenance_interval_s * 1000)
                if task.status != RUNNING:
                    continue
            next_due = at if next_due is None else min(next_due, at)
        return next_due

    def queue_gauges(self) -> Iterator[tuple[str, str, int, int, int]]:
        """Gauge source for ``broker.metrics.register_queue_gauges``."""
        return self._model.gauges(self._rep.now_ms())


def _sealing_key(attributes: dict[str, str]) -> str | None:
    """The key a queue seals bodies with: its KmsMasterKeyId, else the SQS-managed key when SqsManagedSseEnabled
    (AWS's default for new queues); None for a queue without encryption."""
    return attributes.get("KmsMasterKeyId") or (
        SQS_MANAGED if attributes.get("SqsManagedSseEnabled", "true") == "true" else None)


def _failure(entry_id: str, exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, errors.BrokerError):
        return {"Id": entry_id, "SenderFault": exc.sender_fault, "Code": exc.code, "Message": exc.message}
    return {"Id": entry_id, "SenderFault": False, "Code": "InternalFailure", "Message": str(exc)}


async def _first(*waits: Awaitable[Any]) -> None:
    """Return as soon as one of ``waits`` completes (the others are cancelled)."""
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()


def _decode_page_token(token: str) -> tuple[str, str]:
    try:
        account, _, name = base64.urlsafe_b64decode(token.encode()).decode().partition("\x00")
    except (binascii.Error, ValueError, UnicodeError):
        account, name = "", ""
    if not account or not name:
        raise errors.InvalidParameterValue("Invalid NextToken value.")
    return account, name


def _check_label(label: object) -> str:
    if not isinstance(label, str) or not label:
        raise errors.MissingParameter("The request must contain the parameter Label.")
    if not _LABEL.fullmatch(label):
        raise errors.InvalidParameterValue(
            f"Value {label} for parameter Label is invalid. Reason: Can only include alphanumeric characters, "
            "hyphens, or underscores. 1 to 80 in length.")
    return label


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
