"""A fake of the gRPC Queues and Streams services with known, countable behaviour, to test the ``grpc-*`` scenarios.

It keeps no messages: Send answers every entry with the right MD5; Receive always answers ``receive_count`` copies
of the last body sent (MD5 right); Delete and Ack fail the first handle of every call when ``fail_first`` is set (as
``ReceiptHandleIsInvalid``); Consume pushes ``receive_count`` messages, waits for their ack, settles it and pushes
again. Put accepts every record, sending record i of each call to shard ``s{i mod shards}``; DescribeStream
names those shards; Tail pushes each shard's records as they are put (``millis_behind_latest`` = ``LAG_MS``).
Every call and entry is counted, so a test can compare what the harness reports with
what the server saw. A queue named ``missing`` fails Send with NOT_FOUND and the ``raftmq-error-bin`` detail, as the
real server does.

    python -m benchmarks.fakegrpc --port 50099      # the generator's own ceiling for the grpc-* scenarios
"""

from __future__ import annotations

import argparse
import hashlib
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc

from benchmarks.grpcload import DETAIL_KEY
from proto.broker.v1 import errors_pb2, queues_pb2, queues_pb2_grpc, streams_pb2, streams_pb2_grpc

MISSING = "missing"
LAG_MS = 7
TAIL_POLL_S = 0.05  # how often a quiet Tail checks that its client is still there


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


class FakeBroker(queues_pb2_grpc.QueuesServicer, streams_pb2_grpc.StreamsServicer):
    """Both servicers in one object sharing the counters (thread-safe: the server runs handlers on a pool)."""

    def __init__(self, receive_count: int = 7, fail_first: bool = False) -> None:
        self.receive_count = receive_count
        self.fail_first = fail_first
        self.calls: Counter[str] = Counter()
        self.entries: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._last_body = "t=000000000000000000000;x" + "x" * 8
        self.shards = 2
        self._records: dict[str, list[bytes]] = {f"s{i}": [] for i in range(self.shards)}
        self._put = threading.Condition(self._lock)

    def _count(self, call: str, entries: int = 0) -> None:
        with self._lock:
            self.calls[call] += 1
            self.entries[call] += entries

    def _messages(self) -> list[queues_pb2.Message]:
        body = self._last_body
        md5 = _md5(body)
        return [queues_pb2.Message(message_id=str(i), receipt_handle=f"h{i}", body=body, md5_of_body=md5)
                for i in range(self.receive_count)]

    def _failures(self, count: int) -> list[queues_pb2.EntryFailure]:
        if not self.fail_first or count == 0:
            return []
        return [queues_pb2.EntryFailure(index=0, error=errors_pb2.ErrorDetail(code="ReceiptHandleIsInvalid"))]

    # Queues
    def CreateQueue(self, request: queues_pb2.CreateQueueRequest, context: Any) -> queues_pb2.QueueRef:
        self._count("CreateQueue")
        return queues_pb2.QueueRef(queue=request.queue)

    def DeleteQueue(self, request: queues_pb2.QueueRef, context: Any) -> queues_pb2.Empty:
        self._count("DeleteQueue")
        return queues_pb2.Empty()

    def Send(self, request: queues_pb2.SendRequest, context: Any) -> queues_pb2.SendResponse:
        if request.queue == MISSING:
            detail = errors_pb2.ErrorDetail(code="QueueDoesNotExist", message="no such queue", sender_fault=True)
            context.set_trailing_metadata(((DETAIL_KEY, detail.SerializeToString()),))
            context.abort(grpc.StatusCode.NOT_FOUND, "no such queue")
        self._count("Send", len(request.entries))
        if request.entries:
            self._last_body = request.entries[-1].body
        return queues_pb2.SendResponse(results=[
            queues_pb2.SendResult(message_id=str(i), md5_of_body=_md5(e.body)) for i, e in enumerate(request.entries)])

    def Receive(self, request: queues_pb2.ReceiveRequest, context: Any) -> queues_pb2.ReceiveResponse:
        self._count("Receive", self.receive_count)
        return queues_pb2.ReceiveResponse(messages=self._messages())

    def Delete(self, request: queues_pb2.DeleteRequest, context: Any) -> queues_pb2.BatchResponse:
        self._count("Delete", len(request.receipt_handles))
        return queues_pb2.BatchResponse(failures=self._failures(len(request.receipt_handles)))

    def Consume(self, request_iterator: Iterator[queues_pb2.ConsumeRequest],
                context: Any) -> Iterator[queues_pb2.ConsumeResponse]:
        start = next(request_iterator)
        self._count("Consume")
        assert start.WhichOneof("kind") == "start"
        while context.is_active():
            self._count("Pushed", self.receive_count)
            yield queues_pb2.ConsumeResponse(messages=queues_pb2.ReceiveResponse(messages=self._messages()))
            ack = next(request_iterator, None)
            if ack is None:
                return
            self._count("Ack", len(ack.ack.receipt_handles))
            yield queues_pb2.ConsumeResponse(settled=queues_pb2.Settled(
                token=ack.ack.token, failures=self._failures(len(ack.ack.receipt_handles))))

    # Streams
    def CreateStream(self, request: streams_pb2.CreateStreamRequest, context: Any) -> streams_pb2.StreamRef:
        self._count("CreateStream")
        return streams_pb2.StreamRef(stream=request.stream)

    def DescribeStream(self, request: streams_pb2.StreamRef, context: Any) -> streams_pb2.StreamDescription:
        self._count("DescribeStream")
        return streams_pb2.StreamDescription(stream=request.stream, status="ACTIVE", shards=[
            streams_pb2.Shard(shard_id=shard) for shard in self._records])

    def DeleteStream(self, request: streams_pb2.StreamRef, context: Any) -> streams_pb2.StreamEmpty:
        self._count("DeleteStream")
        return streams_pb2.StreamEmpty()

    def Put(self, request: streams_pb2.PutRequest, context: Any) -> streams_pb2.PutResponse:
        self._count("Put", len(request.records))
        with self._put:
            for i, record in enumerate(request.records):
                self._records[f"s{i % self.shards}"].append(record.data)
            self._put.notify_all()
        return streams_pb2.PutResponse(results=[
            streams_pb2.PutResult(shard_id="shardId-000000000000", sequence_number=str(i))
            for i in range(len(request.records))])


    def Tail(self, request: streams_pb2.ReadRequest, context: Any) -> Iterator[streams_pb2.ReadResponse]:
        self._count("Tail")
        shard = self._records[request.shard_id]
        cursor = 0
        while context.is_active():
            with self._put:
                self._put.wait_for(lambda seen=cursor: len(shard) > seen, TAIL_POLL_S)  # type: ignore[misc]
                new = shard[cursor:]
            if not new:
                continue
            cursor += len(new)
            self._count("Tailed", len(new))
            yield streams_pb2.ReadResponse(records=[
                streams_pb2.Record(data=data, sequence_number=str(cursor - len(new) + i))
                for i, data in enumerate(new)], millis_behind_latest=LAG_MS)


def serve(broker: FakeBroker, port: int = 0, workers: int = 32) -> tuple[grpc.Server, int]:
    """Start a threaded server on 127.0.0.1 (``port`` 0: a free one); (server, port)."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers))
    queues_pb2_grpc.add_QueuesServicer_to_server(broker, server)  # type: ignore[no-untyped-call]
    streams_pb2_grpc.add_StreamsServicer_to_server(broker, server)  # type: ignore[no-untyped-call]
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    return server, bound


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fakegrpc", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--receive-count", type=int, default=100)
    args = parser.parse_args(argv)
    server, port = serve(FakeBroker(args.receive_count), args.port)
    print(f"fake gRPC broker on 127.0.0.1:{port}", flush=True)
    server.wait_for_termination()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
