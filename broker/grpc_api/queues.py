"""The ``raftmq.broker.v1.Queues`` servicer: protobuf in, the SQS service's model commands out.

Control-plane calls go through ``SqsService.handle`` with SQS parameters, so validation, wording and semantics are
the SQS API's by construction. The data path (Send, Receive, Delete, ChangeVisibility, Consume) builds the same
model commands the SQS batch actions build, with the same per-entry validators, but without SQS's 10-entry limit:
one replicated command per batch is what makes this API fast.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeAlias

import grpc

from broker.auth.grpc_auth import caller_account
from broker.grpc_api.convert import plain_bodies, received_response, send_entry_of
from broker.grpc_api.errors import abort, detail_of
from broker.ids import random_uuid
from broker.model import errors
from broker.model.commands import ChangeVisibility as ChangeVisibilityCommand
from broker.model.commands import DeleteMessages, ReceiveMessages, SendEntry
from broker.model.sqs_types import MAX_BATCH_BYTES
from broker.model.sqs_validation import check_fifo_id, check_int_param, check_visibility_timeout, check_wait_time
from broker.service import RequestContext
from broker.sqs.messages import plain_send_entries
from broker.sqs.service import SqsService
from proto.broker.v1 import queues_pb2 as pb

log = logging.getLogger(__name__)

MAX_RECEIVE = 1000
DEFAULT_IN_FLIGHT = 100
DEFAULT_PUSH_BATCH = 100
CONSUME_POLL_SECONDS = 20
Context: TypeAlias = grpc.aio.ServicerContext[Any, Any]
EMPTY = pb.Empty()


class QueuesServicer:
    """Serves queues once ``sqs`` yields a service; before that (node starting) every call is UNAVAILABLE."""

    def __init__(self, sqs: Callable[[], SqsService | None], account_id: str, region: str) -> None:
        self._sqs = sqs
        self._node_account = account_id
        self._region = region

    @property
    def _account(self) -> str:
        """The caller's account (set by gRPC authentication), else the node's: resources are per account."""
        return caller_account(self._node_account)

    # -- plumbing ---------------------------------------------------------------------------------------------

    def _service(self) -> SqsService:
        service = self._sqs()
        if service is None:
            raise errors.ServiceUnavailable("Service is unable to handle request: the node is starting.")
        return service

    def _ctx(self) -> RequestContext:
        return RequestContext(request_id=random_uuid(), account_id=self._account, region=self._region,
                              endpoint_url="", protocol="grpc")

    def _url(self, queue: str, account: str = "") -> str:
        if not queue:
            raise errors.MissingParameter("The request must contain the parameter queue.")
        return f"/{account or self._account}/{queue}"

    def _target(self, queue: str, account: str = "") -> tuple[str, str]:
        if not queue:
            raise errors.MissingParameter("The request must contain the parameter queue.")
        return account or self._account, queue

    async def _call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        return await self._service().handle(operation, params, self._ctx())

    # -- control plane ----------------------------------------------------------------------------------------

    async def CreateQueue(self, request: pb.CreateQueueRequest, context: Context) -> pb.QueueRef:
        try:
            params: dict[str, Any] = {"QueueName": request.queue, "Attributes": dict(request.attributes)}
            if request.tags:
                params["tags"] = dict(request.tags)
            await self._call("CreateQueue", params)
        except Exception as exc:
            await abort(context, exc)
        return pb.QueueRef(queue=request.queue, account=self._account)

    async def GetQueue(self, request: pb.QueueRef, context: Context) -> pb.QueueRef:
        try:
            params = {"QueueName": request.queue}
            if request.account:
                params["QueueOwnerAWSAccountId"] = request.account
            await self._call("GetQueueUrl", params)
        except Exception as exc:
            await abort(context, exc)
        return pb.QueueRef(queue=request.queue, account=request.account or self._account)

    async def ListQueues(self, request: pb.ListQueuesRequest, context: Context) -> pb.ListQueuesResponse:
        try:
            params: dict[str, Any] = {"QueueNamePrefix": request.prefix}
            if request.max_results:
                params["MaxResults"] = request.max_results
            if request.next_token:
                params["NextToken"] = request.next_token
            out = await self._call("ListQueues", params)
        except Exception as exc:
            await abort(context, exc)
        names = [url.rpartition("/")[2] for url in out.get("QueueUrls", [])]
        return pb.ListQueuesResponse(queues=names, next_token=out.get("NextToken", ""))

    async def DeleteQueue(self, request: pb.QueueRef, context: Context) -> pb.Empty:
        try:
            await self._call("DeleteQueue", {"QueueUrl": self._url(request.queue, request.account)})
        except Exception as exc:
            await abort(context, exc)
        return EMPTY

    async def PurgeQueue(self, request: pb.QueueRef, context: Context) -> pb.Empty:
        try:
            await self._call("PurgeQueue", {"QueueUrl": self._url(request.queue, request.account)})
        except Exception as exc:
            await abort(context, exc)
        return EMPTY

    async def GetQueueAttributes(self, request: pb.GetQueueAttributesRequest, context: Context) -> pb.QueueAttributes:
        try:
            out = await self._call("GetQueueAttributes", {"QueueUrl": self._url(request.queue),
                                                          "AttributeNames": list(request.names) or ["All"]})
        except Exception as exc:
            await abort(context, exc)
        return pb.QueueAttributes(attributes=out.get("Attributes", {}))

    async def SetQueueAttributes(self, request: pb.SetQueueAttributesRequest, context: Context) -> pb.Empty:
        try:
            await self._call("SetQueueAttributes", {"QueueUrl": self._url(request.queue),
                                                    "Attributes": dict(request.attributes)})
        except Exception as exc:
            await abort(context, exc)
        return EMPTY

    # -- data plane -------------------------------------------------------------------------------------------

    async def Send(self, request: pb.SendRequest, context: Context) -> pb.SendResponse:
        try:
            return await self._send(request)
        except Exception as exc:
            await abort(context, exc)

    async def _send(self, request: pb.SendRequest) -> pb.SendResponse:
        service = self._service()
        account, name = self._target(request.queue)
        if not request.entries:
            raise errors.EmptyBatchRequest("There should be at least one entry in the request.")
        fifo = name.endswith(".fifo")
        failures: dict[int, BaseException] = {}
        bodies = None if fifo else plain_bodies(request)
        if bodies is not None:  # the common batch: built with the bodies as stored (sealed) at once
            _check_batch_bytes(sum(map(len, bodies)))
            entries = plain_send_entries(bodies, await service.stored_bodies(account, name, bodies))
            positions = list(range(len(entries)))
        else:
            entries, positions = [], []
            for index, raw in enumerate(request.entries):
                try:
                    entries.append(send_entry_of(str(index), raw, fifo))
                    positions.append(index)
                except errors.BrokerError as exc:
                    failures[index] = exc
            _check_batch_bytes(sum(e.size for e in entries))
        if entries:
            outcomes = await service.send_entries(account, name, account, entries, sealed=bodies is not None)
        else:
            await service.require_queue(account, name)  # invalid entries only: the queue must still exist
            outcomes = []
        for index, outcome in zip(positions, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                failures[index] = outcome
        if not failures:  # the common case: one result per entry, built in place
            response = pb.SendResponse()
            add = response.results.add
            for entry, outcome in zip(entries, outcomes, strict=True):
                if isinstance(outcome, tuple):  # FIFO: (message id, sequence number), the original's for a duplicate
                    add(message_id=outcome[0], sequence_number=outcome[1], md5_of_body=entry.md5_body)
                else:
                    add(message_id=entry.message_id, md5_of_body=entry.md5_body)
            return response
        results = [pb.SendResult() for _ in request.entries]
        for index, entry, outcome in zip(positions, entries, outcomes, strict=True):
            if index not in failures:
                results[index].CopyFrom(_sent(entry, outcome))
        for index, failure in failures.items():
            results[index].error.CopyFrom(detail_of(failure))
        return pb.SendResponse(results=results)

    async def Receive(self, request: pb.ReceiveRequest, context: Context) -> pb.ReceiveResponse:
        try:
            service = self._service()
            account, name = self._target(request.queue)
            count = check_int_param("max_messages", request.max_messages or 1, 1, MAX_RECEIVE,
                                    f"Must be between 1 and {MAX_RECEIVE}, if provided.") or 1
            visibility = check_visibility_timeout(
                request.visibility_timeout if request.HasField("visibility_timeout") else None)
            wait = check_wait_time(request.wait_seconds if request.HasField("wait_seconds") else None)
            attempt = check_fifo_id("ReceiveRequestAttemptId", request.attempt_id or None)
            if not name.endswith(".fifo"):
                attempt = None
            if wait is None:
                await service.require_queue(account, name)
                wait = service.receive_wait_seconds(account, name)
            received, bodies = await service.receive(ReceiveMessages(account, name, count, visibility, attempt), wait)
        except Exception as exc:
            await abort(context, exc)
        return received_response(received, bodies)

    async def Delete(self, request: pb.DeleteRequest, context: Context) -> pb.BatchResponse:
        try:
            account, name = self._target(request.queue)
            handles = request.receipt_handles
            command = DeleteMessages(account, name, tuple(zip(_entry_ids(len(handles)), handles, strict=True)))
            return await self._settle(command)
        except Exception as exc:
            await abort(context, exc)

    async def ChangeVisibility(self, request: pb.ChangeVisibilityRequest, context: Context) -> pb.BatchResponse:
        try:
            account, name = self._target(request.queue)
            entries = []
            for i, change in enumerate(request.changes):
                entries.append((str(i), change.receipt_handle,
                                check_visibility_timeout(change.visibility_timeout) or 0))
            return await self._settle(ChangeVisibilityCommand(account, name, tuple(entries)))
        except Exception as exc:
            await abort(context, exc)

    async def _settle(self, command: DeleteMessages | ChangeVisibilityCommand) -> pb.BatchResponse:
        """Propose a receipt-handle batch; failures by index. An empty batch still needs an existing queue."""
        results = await self._service().settle(command)
        return pb.BatchResponse(failures=[pb.EntryFailure(index=i, error=detail_of(failure))
                                          for i, failure in enumerate(results) if failure is not None])

    # -- streaming consumer -----------------------------------------------------------------------------------

    async def Consume(self, request_iterator: AsyncIterator[pb.ConsumeRequest],
                      context: Context) -> AsyncIterator[pb.ConsumeResponse]:
        try:
            first = await anext(request_iterator)
            if first.WhichOneof("kind") != "start":
                raise errors.MissingParameter("The first request of Consume must be start.")
            session = _ConsumeSession(self, first.start)
            await session.check()
        except Exception as exc:
            await abort(context, exc)
        async for response in session.run(request_iterator):
            yield response
        if session.failure is not None:
            await abort(context, session.failure)


def _sent(entry: SendEntry, outcome: object) -> pb.SendResult:
    if isinstance(outcome, tuple):  # FIFO: (message id, sequence number), the original's for a duplicate
        return pb.SendResult(message_id=outcome[0], sequence_number=outcome[1], md5_of_body=entry.md5_body)
    return pb.SendResult(message_id=entry.message_id, md5_of_body=entry.md5_body)


class _ConsumeSession:
    """One Consume stream: a deliverer keeps up to max_in_flight messages unsettled, a reader settles them."""

    def __init__(self, servicer: QueuesServicer, start: pb.ConsumeStart) -> None:
        self._servicer = servicer
        self.account, self.name = servicer._target(start.queue)
        self.max_in_flight = check_int_param("max_in_flight", start.max_in_flight or DEFAULT_IN_FLIGHT, 1,
                                             100_000, "Must be between 1 and 100000.") or DEFAULT_IN_FLIGHT
        self.max_batch = check_int_param("max_batch", start.max_batch or DEFAULT_PUSH_BATCH, 1, MAX_RECEIVE,
                                         f"Must be between 1 and {MAX_RECEIVE}.") or DEFAULT_PUSH_BATCH
        self.visibility = check_visibility_timeout(
            start.visibility_timeout if start.HasField("visibility_timeout") else None)
        self.unsettled = 0
        self.failure: BaseException | None = None
        self._room = asyncio.Event()
        self._room.set()
        self._out: asyncio.Queue[pb.ConsumeResponse | None] = asyncio.Queue()

    async def check(self) -> None:
        await self._servicer._service().require_queue(self.account, self.name)

    async def run(self, requests: AsyncIterator[pb.ConsumeRequest]) -> AsyncIterator[pb.ConsumeResponse]:
        deliverer = asyncio.create_task(self._deliver(), name="consume-deliver")
        reader = asyncio.create_task(self._read(requests), name="consume-read")
        try:
            while (item := await self._out.get()) is not None:
                yield item
        finally:
            for task in (deliverer, reader):
                task.cancel()
            await asyncio.gather(deliverer, reader, return_exceptions=True)

    def _fail(self, exc: BaseException) -> None:
        if self.failure is None:
            self.failure = exc
        self._out.put_nowait(None)

    async def _deliver(self) -> None:
        try:
            service = self._servicer._service()
            while True:
                await self._room.wait()
                room = self.max_in_flight - self.unsettled
                if room <= 0:
                    self._room.clear()
                    continue
                if service.stopping:
                    raise errors.ServiceUnavailable("Service is unable to handle request: the node is shutting down.")
                command = ReceiveMessages(self.account, self.name, min(room, self.max_batch), self.visibility, None)
                received, bodies = await service.receive(command, CONSUME_POLL_SECONDS)
                if received:
                    self.unsettled += len(received)
                    self._out.put_nowait(pb.ConsumeResponse(
                        messages=received_response(received, bodies)))
        except Exception as exc:
            self._fail(exc)

    async def _read(self, requests: AsyncIterator[pb.ConsumeRequest]) -> None:
        pending: set[asyncio.Task[None]] = set()
        try:
            async for request in requests:
                kind = request.WhichOneof("kind")
                if kind == "ack":
                    handles = tuple(request.ack.receipt_handles)
                    command: DeleteMessages | ChangeVisibilityCommand = DeleteMessages(
                        self.account, self.name, tuple((str(i), h) for i, h in enumerate(handles)))
                    self._release(len(handles))
                    token = request.ack.token
                elif kind == "nack":
                    handles = tuple(request.nack.receipt_handles)
                    command = ChangeVisibilityCommand(self.account, self.name,
                                               tuple((str(i), h, 0) for i, h in enumerate(handles)))
                    self._release(len(handles))
                    token = request.nack.token
                elif kind == "extend":
                    timeout = check_visibility_timeout(request.extend.visibility_timeout) or 0
                    command = ChangeVisibilityCommand(self.account, self.name, tuple(
                        (str(i), h, timeout) for i, h in enumerate(request.extend.receipt_handles)))
                    token = request.extend.token
                else:
                    raise errors.InvalidParameterValue(f"Unexpected Consume request {kind!r} after start.")
                task = asyncio.create_task(self._settle(command, token))
                pending.add(task)
                task.add_done_callback(pending.discard)
            if pending:
                await asyncio.gather(*pending)
            self._out.put_nowait(None)  # the client half-closed: every settlement answered, end the stream
        except Exception as exc:
            self._fail(exc)
        finally:
            for task in pending:
                task.cancel()

    def _release(self, count: int) -> None:
        self.unsettled = max(0, self.unsettled - count)
        self._room.set()

    async def _settle(self, command: DeleteMessages | ChangeVisibilityCommand, token: int) -> None:
        try:
            response = await self._servicer._settle(command)
        except errors.BrokerError as exc:
            if exc.code == "ServiceUnavailable" or not command.entries:
                self._fail(exc)
                return
            detail = detail_of(exc)  # e.g. the queue was deleted: every entry failed the same way
            response = pb.BatchResponse(failures=[pb.EntryFailure(index=i, error=detail)
                                                  for i in range(len(command.entries))])
        except Exception as exc:  # unexpected: end the stream (the client re-sends on its next one)
            self._fail(exc)
            return
        if token:
            self._out.put_nowait(pb.ConsumeResponse(settled=pb.Settled(token=token, failures=response.failures)))


_ENTRY_IDS = tuple(str(i) for i in range(MAX_RECEIVE))


def _entry_ids(count: int) -> tuple[str, ...]:
    """Entry ids "0", "1", ... for a batch of ``count`` (the commands carry the ids SQS's batch calls have)."""
    return _ENTRY_IDS[:count] if count <= len(_ENTRY_IDS) else tuple(map(str, range(count)))


def _check_batch_bytes(total: int) -> None:
    if total > MAX_BATCH_BYTES:
        raise errors.BatchRequestTooLong(
            f"Batch requests cannot be longer than {MAX_BATCH_BYTES} bytes. You have sent {total} bytes.")
