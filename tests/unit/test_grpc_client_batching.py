"""The client's automatic batching, against a fake transport: the producer's size and linger triggers and per-entry
errors, and the consumer's one request per loop turn for settlements."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from broker.client.consumer import ConsumedMessage, Consumer
from broker.client.errors import RaftMQError
from broker.client.producer import Producer
from proto.broker.v1 import errors_pb2
from proto.broker.v1 import queues_pb2 as pb


class FakeClient:
    """Records each Send batch; entries whose body is "bad" fail alone."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []

    async def send(self, queue: str, entries: Sequence[pb.SendEntry]) -> list[pb.SendResult]:
        self.batches.append([e.body for e in entries])
        return [pb.SendResult(error=errors_pb2.ErrorDetail(code="InvalidMessageContents")) if e.body == "bad"
                else pb.SendResult(message_id=f"id-{e.body}") for e in entries]


def _producer(fake: FakeClient, *, linger_ms: float, max_batch: int) -> Producer:
    return Producer(fake, "q", linger_ms=linger_ms, max_batch=max_batch)  # type: ignore[arg-type]


async def test_full_batches_go_at_once_and_the_rest_after_linger() -> None:
    fake = FakeClient()
    producer = _producer(fake, linger_ms=20, max_batch=4)
    results = await asyncio.gather(*(producer.send(str(i)) for i in range(10)))
    assert [r.message_id for r in results] == [f"id-{i}" for i in range(10)]
    assert fake.batches == [["0", "1", "2", "3"], ["4", "5", "6", "7"], ["8", "9"]]


async def test_a_failed_entry_raises_for_its_sender_only() -> None:
    fake = FakeClient()
    producer = _producer(fake, linger_ms=1, max_batch=100)
    good, bad = await asyncio.gather(producer.send("ok"), producer.send("bad"), return_exceptions=True)
    assert isinstance(good, pb.SendResult) and good.message_id == "id-ok"
    assert isinstance(bad, RaftMQError) and bad.code == "InvalidMessageContents"
    assert fake.batches == [["ok", "bad"]]


async def test_flush_sends_what_lingers() -> None:
    fake = FakeClient()
    producer = _producer(fake, linger_ms=60_000, max_batch=100)
    pending = asyncio.ensure_future(producer.send("late"))
    await asyncio.sleep(0)  # let send() queue its entry
    await producer.flush()
    assert (await pending).message_id == "id-late"


async def test_send_nowait_fills_batches_and_flush_raises_a_failure_nobody_awaited() -> None:
    fake = FakeClient()
    producer = _producer(fake, linger_ms=60_000, max_batch=3)
    futures = [producer.send_nowait(body) for body in ("a", "bad", "c", "d")]
    assert fake.batches == []  # nothing sent yet: the first batch goes on the next loop turn
    with pytest.raises(RaftMQError) as caught:
        await producer.flush()
    assert caught.value.code == "InvalidMessageContents" and producer.failed == 1
    assert fake.batches == [["a", "bad", "c"], ["d"]]
    assert [f.result().message_id for f in (futures[0], *futures[2:])] == ["id-a", "id-c", "id-d"]
    await producer.flush()  # raised once
    assert producer.failed == 1


class FakeCall:
    """A Consume call that records writes; settlements are answered by the test."""

    def __init__(self) -> None:
        self.writes: list[pb.ConsumeRequest] = []

    async def write(self, request: pb.ConsumeRequest) -> None:
        self.writes.append(request)

    def cancel(self) -> None:
        pass


async def test_settlements_of_one_loop_turn_share_one_request_per_kind() -> None:
    consumer = Consumer(FakeClient(), "q", max_in_flight=10, max_batch=10,  # type: ignore[arg-type]
                        visibility_timeout=None)
    call = FakeCall()
    consumer._call = call
    messages = [ConsumedMessage(consumer, pb.Message(receipt_handle=f"h{i}")) for i in range(4)]
    acks = asyncio.gather(messages[0].ack(), messages[1].ack(), messages[2].nack(), messages[3].extend(60))
    while len(call.writes) < 3:
        await asyncio.sleep(0)  # the flush task runs on a later turn of this loop
    kinds = {w.WhichOneof("kind"): w for w in call.writes}
    assert list(kinds["ack"].ack.receipt_handles) == ["h0", "h1"]
    assert list(kinds["nack"].nack.receipt_handles) == ["h2"]
    assert (list(kinds["extend"].extend.receipt_handles), kinds["extend"].extend.visibility_timeout) == (["h3"], 60)
    for kind in ("ack", "nack", "extend"):
        consumer._settled(pb.Settled(token=getattr(kinds[kind], kind).token))
    assert await acks == [None, None, None, None]


async def test_a_failed_settlement_raises_for_its_message() -> None:
    consumer = Consumer(FakeClient(), "q", max_in_flight=10, max_batch=10,  # type: ignore[arg-type]
                        visibility_timeout=None)
    call = FakeCall()
    consumer._call = call
    first, second = (ConsumedMessage(consumer, pb.Message(receipt_handle=h)) for h in ("a", "b"))
    acks = asyncio.gather(first.ack(), second.ack(), return_exceptions=True)
    while not call.writes:
        await asyncio.sleep(0)
    failure = pb.EntryFailure(index=1, error=errors_pb2.ErrorDetail(code="ReceiptHandleIsInvalid"))
    consumer._settled(pb.Settled(token=call.writes[0].ack.token, failures=[failure]))
    ok, failed = await acks
    assert ok is None
    assert isinstance(failed, RaftMQError) and failed.code == "ReceiptHandleIsInvalid"


def test_backoff_is_bounded() -> None:
    from broker.client.aio import AsyncClient

    client = AsyncClient("127.0.0.1:1", backoff_s=0.1, max_backoff_s=0.5)
    assert all(0 <= client.backoff(a) <= 0.5 for a in range(20))
    with pytest.raises(ValueError):
        AsyncClient([])


async def test_nowait_settlements_travel_together_count_failures_and_close_waits_for_them() -> None:
    consumer = Consumer(FakeClient(), "q", max_in_flight=10, max_batch=10,  # type: ignore[arg-type]
                        visibility_timeout=None)
    call = FakeCall()
    consumer._call = call
    for handle in ("a", "b", "c"):
        ConsumedMessage(consumer, pb.Message(receipt_handle=handle)).ack_nowait()  # returns at once
    ConsumedMessage(consumer, pb.Message(receipt_handle="d")).nack_nowait()
    while len(call.writes) < 2:
        await asyncio.sleep(0)
    acks = next(w.ack for w in call.writes if w.WhichOneof("kind") == "ack")
    nacks = next(w.nack for w in call.writes if w.WhichOneof("kind") == "nack")
    assert list(acks.receipt_handles) == ["a", "b", "c"] and list(nacks.receipt_handles) == ["d"]
    closing = asyncio.ensure_future(consumer.close())
    for _ in range(20):  # loop turns, not time: nothing but the settlements can let close() go on
        await asyncio.sleep(0)
    assert not closing.done()  # close waits for the settlements on their way
    failure = pb.EntryFailure(index=1, error=errors_pb2.ErrorDetail(code="ReceiptHandleIsInvalid"))
    consumer._settled(pb.Settled(token=acks.token, failures=[failure]))
    consumer._settled(pb.Settled(token=nacks.token))
    await closing
    assert consumer.failed_settlements == 1
