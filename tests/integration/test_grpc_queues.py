"""The v1 Queues gRPC API against a real ``raftmq serve``: every RPC, through the Python client library.

Semantics are the SQS model's, so these tests check the translation (fields, batches beyond SQS's 10, per-entry
failures, error details, the Consume stream's flow control and settlements) and that both APIs share one model.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from broker.client import AsyncClient, Client, ConsumedMessage, RaftMQError
from proto.broker.v1 import queues_pb2 as pb
from tests.integration.conftest import make_sqs_client, unique_name
from tests.integration.server import RaftMQServer


@pytest.fixture
def address(server: RaftMQServer) -> str:
    assert server.ready is not None
    return f"127.0.0.1:{server.ready.grpc_port}"


@pytest.fixture
async def client(address: str) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(address, retries=2) as c:
        yield c


@pytest.fixture
def name(request: pytest.FixtureRequest) -> str:
    return unique_name(request.node.name)


async def _expect(code: str, awaitable: Any) -> RaftMQError:
    with pytest.raises(RaftMQError) as caught:
        await awaitable
    assert caught.value.code == code, caught.value
    return caught.value


# -- control plane ----------------------------------------------------------------------------------------------

async def test_queue_lifecycle(client: AsyncClient, name: str) -> None:
    await client.create_queue(name, {"VisibilityTimeout": "45"}, tags={"team": "a"})
    assert await client.get_queue(name) == name
    assert name in await client.list_queues(prefix=name[:20])
    assert (await client.get_queue_attributes(name, ["VisibilityTimeout"])) == {"VisibilityTimeout": "45"}
    await client.set_queue_attributes(name, {"VisibilityTimeout": "7"})
    attributes = await client.get_queue_attributes(name)
    assert attributes["VisibilityTimeout"] == "7" and "QueueArn" in attributes
    await client.send(name, ["x"])
    await client.purge_queue(name)
    assert (await client.get_queue_attributes(name, ["ApproximateNumberOfMessages"])) == {
        "ApproximateNumberOfMessages": "0"}
    await client.delete_queue(name)
    error = await _expect("QueueDoesNotExist", client.get_queue(name))
    assert error.status == grpc.StatusCode.NOT_FOUND
    assert name not in await client.list_queues(prefix=name[:20])


async def test_create_conflicting_attributes_and_bad_names_are_aws_errors(client: AsyncClient, name: str) -> None:
    await client.create_queue(name, {"VisibilityTimeout": "45"})
    await client.create_queue(name, {"VisibilityTimeout": "45"})  # idempotent, as SQS
    error = await _expect("QueueNameExists", client.create_queue(name, {"VisibilityTimeout": "46"}))
    assert error.status == grpc.StatusCode.ALREADY_EXISTS
    error = await _expect("InvalidParameterValue", client.create_queue("bad name!"))
    assert error.status == grpc.StatusCode.INVALID_ARGUMENT
    await _expect("QueueDoesNotExist", client.send(name + "-missing", ["x"]))
    await _expect("QueueDoesNotExist", client.receive(name + "-missing"))


# -- data plane -------------------------------------------------------------------------------------------------

async def test_send_receive_delete_batches_beyond_ten(client: AsyncClient, name: str) -> None:
    await client.create_queue(name)
    bodies = [f"m{i}" for i in range(500)]
    results = await client.send(name, bodies)
    assert len(results) == 500 and all(r.message_id and not r.HasField("error") for r in results)
    assert len({r.message_id for r in results}) == 500
    received: list[pb.Message] = []
    while len(received) < 500:
        batch = await client.receive(name, 1000, wait_seconds=1)
        assert batch
        received += batch
    assert sorted(m.body for m in received) == sorted(bodies)
    assert {m.message_id for m in received} == {r.message_id for r in results}
    assert all(m.receive_count == 1 and m.sent_timestamp_ms > 0 and m.sender_id for m in received)
    assert await client.delete(name, [m.receipt_handle for m in received]) == []
    assert await client.receive(name, 10, wait_seconds=0) == []
    assert (await client.get_queue_attributes(name, ["ApproximateNumberOfMessagesNotVisible"])) == {
        "ApproximateNumberOfMessagesNotVisible": "0"}


async def test_invalid_entries_fail_alone_and_batches_have_a_byte_limit(client: AsyncClient, name: str) -> None:
    await client.create_queue(name)
    entries = [pb.SendEntry(body="ok"), pb.SendEntry(body=""), pb.SendEntry(body="late", delay_seconds=901),
               pb.SendEntry(body="attrs", attributes={"n": pb.AttributeValue(data_type="Number", string_value="7")})]
    results = await client.send(name, entries)
    assert [r.error.code for r in results] == ["", "MissingParameter", "InvalidParameterValue", ""]
    assert results[1].error.sender_fault and results[1].error.http_status == 400
    messages = await client.receive(name, 10, wait_seconds=1)
    while len(messages) < 2:
        messages += await client.receive(name, 10, wait_seconds=1)
    assert sorted(m.body for m in messages) == ["attrs", "ok"]
    await _expect("BatchRequestTooLong", client.send(name, ["x" * 262_144] * 5))
    await _expect("EmptyBatchRequest", client.send(name, []))


async def test_message_attributes_round_trip(client: AsyncClient, name: str) -> None:
    await client.create_queue(name)
    attributes = {"s": pb.AttributeValue(data_type="String", string_value="v"),
                  "b": pb.AttributeValue(data_type="Binary", binary_value=b"\x00\x01")}
    await client.send(name, [pb.SendEntry(body="a", attributes=attributes)])
    (message,) = await client.receive(name, 1, wait_seconds=5)
    assert dict(message.attributes) == attributes


async def test_long_poll_wakes_on_send(client: AsyncClient, name: str) -> None:
    await client.create_queue(name)
    started = time.monotonic()
    assert await client.receive(name, 10, wait_seconds=1) == []
    assert time.monotonic() - started >= 0.9
    poll = asyncio.ensure_future(client.receive(name, 10, wait_seconds=20))
    await client.send(name, ["wake"])
    messages = await asyncio.wait_for(poll, 10)
    assert [m.body for m in messages] == ["wake"]


async def test_change_visibility_batch(client: AsyncClient, name: str) -> None:
    await client.create_queue(name)
    await client.send(name, ["a", "b"])
    received = await client.receive(name, 10, wait_seconds=1, visibility_timeout=300)
    while len(received) < 2:
        received += await client.receive(name, 10, wait_seconds=1, visibility_timeout=300)
    failures = await client.change_visibility(name, [(received[0].receipt_handle, 0),
                                                     (received[1].receipt_handle, 600), ("bogus", 0)])
    assert [(f.index, f.error.code) for f in failures] == [(2, "ReceiptHandleIsInvalid")]
    (again,) = await client.receive(name, 10, wait_seconds=1)
    assert (again.body, again.receive_count) == (received[0].body, 2)
    assert [(f.index, f.error.code) for f in await client.delete(name, ["bogus", again.receipt_handle])] == [
        (0, "ReceiptHandleIsInvalid")]


async def test_fifo_order_dedup_and_sequence_numbers(client: AsyncClient, name: str) -> None:
    fifo = name[:70] + ".fifo"
    await client.create_queue(fifo, {"FifoQueue": "true"})
    entries = [pb.SendEntry(body=f"g{i}", group_id="g", deduplication_id=f"d{i}") for i in range(20)]
    results = await client.send(fifo, [*entries, pb.SendEntry(body="nogroup")])
    assert results[-1].error.code == "MissingParameter"
    sequence = [int(r.sequence_number) for r in results[:-1]]
    assert sequence == sorted(sequence) and len(set(sequence)) == 20
    duplicate = await client.send(fifo, [entries[3]])
    assert duplicate[0].message_id == results[3].message_id
    received: list[pb.Message] = []
    while len(received) < 20:
        batch = await client.receive(fifo, 1000, wait_seconds=1)
        assert batch
        received += batch
    assert [m.body for m in received] == [f"g{i}" for i in range(20)]
    assert all(m.group_id == "g" and m.sequence_number for m in received)


async def test_dead_letter_queue(client: AsyncClient, name: str, server: RaftMQServer) -> None:
    dlq = name[:70] + "-dlq"
    await client.create_queue(dlq)
    arn = (await client.get_queue_attributes(dlq, ["QueueArn"]))["QueueArn"]
    await client.create_queue(name, {"RedrivePolicy": f'{{"deadLetterTargetArn":"{arn}","maxReceiveCount":"1"}}'})
    await client.send(name, ["poison"])
    (first,) = await client.receive(name, 1, wait_seconds=5)
    assert await client.change_visibility(name, [(first.receipt_handle, 0)]) == []
    assert await client.receive(name, 1, wait_seconds=0) == []  # the second receive moved it
    (dead,) = await client.receive(dlq, 1, wait_seconds=5)
    assert (dead.body, dead.message_id) == ("poison", first.message_id)


def test_sqs_and_grpc_share_one_model(address: str, server: RaftMQServer, name: str) -> None:
    sqs = make_sqs_client(server.endpoint)
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    with Client(address) as client:
        client.send(name, ["from-grpc"])
        message = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=5)["Messages"][0]
        assert message["Body"] == "from-grpc"
        sqs.send_message(QueueUrl=url, MessageBody="from-sqs")
        (received,) = client.receive(name, 10, wait_seconds=5)
        assert received.body == "from-sqs"
        assert client.delete(name, [received.receipt_handle, message["ReceiptHandle"]]) == []


# -- the Consume stream -----------------------------------------------------------------------------------------

async def test_consumer_with_producer_gets_every_message_once(client: AsyncClient, name: str) -> None:
    await client.create_queue(name)
    async with client.producer(name, linger_ms=1, max_batch=64) as producer:
        results = await asyncio.gather(*(producer.send(f"p{i}") for i in range(600)))
    assert len({r.message_id for r in results}) == 600
    seen: list[str] = []
    async with client.consumer(name, max_in_flight=64, max_batch=32) as consumer:
        async for message in consumer:
            seen.append(message.body)
            await message.ack()
            if len(seen) == 600:
                break
    assert sorted(seen) == sorted(f"p{i}" for i in range(600))
    assert await client.get_queue_attributes(name, ["ApproximateNumberOfMessages",
                                                    "ApproximateNumberOfMessagesNotVisible"]) == {
        "ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}


async def test_loops_that_do_not_wait_lose_nothing(client: AsyncClient, name: str) -> None:
    """``send_nowait`` and ``ack_nowait``: every message sent once and deleted once, and close() waits for both."""
    await client.create_queue(name)
    async with client.producer(name, linger_ms=1, max_batch=100) as producer:
        futures = [producer.send_nowait(f"n{i}") for i in range(1000)]
        assert not any(f.done() for f in futures)  # queued, not sent: the loop did not wait
    assert len({f.result().message_id for f in futures}) == 1000 and producer.failed == 0
    seen: list[str] = []
    async with client.consumer(name, max_in_flight=500, max_batch=100) as consumer:
        async for message in consumer:
            message.ack_nowait()
            seen.append(message.body)
            if len(seen) == 1000:
                break
    assert sorted(seen) == sorted(f"n{i}" for i in range(1000)) and consumer.failed_settlements == 0
    assert await client.get_queue_attributes(name, ["ApproximateNumberOfMessages",
                                                    "ApproximateNumberOfMessagesNotVisible"]) == {
        "ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}


async def test_consume_holds_at_most_max_in_flight_unsettled(client: AsyncClient, name: str) -> None:
    await client.create_queue(name)
    await client.send(name, [f"m{i}" for i in range(100)])
    held = []
    async with client.consumer(name, max_in_flight=10, max_batch=4) as consumer:
        async for message in consumer:
            held.append(message)
            if len(held) == 10:
                break
        # The stream holds 10 unsettled messages, so everything else is still there for a plain receive.
        rest = await client.receive(name, 1000, wait_seconds=0)
        assert len(rest) == 90
        assert await client.change_visibility(name, [(m.receipt_handle, 0) for m in rest]) == []
        for message in held[:5]:
            await message.ack()
        more = [await anext(consumer) for _ in range(5)]
        assert {m.body for m in more}.isdisjoint(m.body for m in held)
    assert (await client.get_queue_attributes(name, ["ApproximateNumberOfMessages"]))[
        "ApproximateNumberOfMessages"] in {str(n) for n in range(85, 96)}


async def test_consume_nack_extend_and_bad_handles(client: AsyncClient, name: str) -> None:
    await client.create_queue(name)
    await client.send(name, ["again"])
    async with client.consumer(name, max_in_flight=1, visibility_timeout=300) as consumer:
        first = await anext(consumer)
        await first.extend(600)
        await first.nack()
        second = await anext(consumer)
        assert (second.message_id, second.message.receive_count) == (first.message_id, 2)
        bogus = ConsumedMessage(consumer, pb.Message(receipt_handle="bogus"))
        results = await asyncio.gather(bogus.ack(), second.ack(), return_exceptions=True)  # one request, two acks
        assert isinstance(results[0], RaftMQError) and results[0].code == "ReceiptHandleIsInvalid"
        assert results[1] is None
    assert await client.receive(name, 1, wait_seconds=0) == []


async def test_consume_missing_queue_is_not_found(client: AsyncClient, name: str) -> None:
    consumer = client.consumer(name + "-missing")
    with pytest.raises(RaftMQError) as caught:
        await anext(consumer)
    assert (caught.value.code, caught.value.status) == ("QueueDoesNotExist", grpc.StatusCode.NOT_FOUND)
    await consumer.close()


def test_sync_consumer(address: str, name: str) -> None:
    with Client(address) as client:
        client.create_queue(name)
        client.send(name, ["s1", "s2", "s3"])
        seen = []
        with client.consume(name, max_in_flight=2) as consumer:
            for message in consumer:
                if message.body == "s2":
                    message.ack_nowait()  # confirmed by close(), like the others
                else:
                    message.ack()
                seen.append(message.body)
                if len(seen) == 3:
                    break
        assert sorted(seen) == ["s1", "s2", "s3"]
        assert client.receive(name, 10, wait_seconds=0) == []  # all three deleted
        client.topics.create(name)  # the stream and topic calls have blocking forms too
        assert name in client.topics.list_topics()
        assert client.cluster_status().role == "leader"


# -- the client library's connection handling and the standard services -----------------------------------------

async def test_client_moves_on_from_a_dead_address(address: str, name: str) -> None:
    async with AsyncClient(["127.0.0.1:1", address], backoff_s=0.01) as c:
        await c.create_queue(name)
        assert await c.get_queue(name) == name


async def test_client_gives_up_when_no_node_answers() -> None:
    async with AsyncClient(["127.0.0.1:1"], retries=2, backoff_s=0.01, timeout_s=2) as c:
        error = await _expect("ServiceUnavailable", c.list_queues())
        assert error.retryable


@pytest.fixture
def channel(address: str) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(address) as ch:
        yield ch


def test_health_and_reflection(channel: grpc.Channel) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    assert health.Check(health_pb2.HealthCheckRequest()).status == health_pb2.HealthCheckResponse.SERVING
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    (answer,) = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
    assert {f"raftmq.broker.v1.{s}" for s in ("Queues", "Streams", "Topics", "Admin")} <= {
        s.name for s in answer.list_services_response.service}
    (answer,) = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(
        file_containing_symbol="raftmq.broker.v1.Queues")]))
    assert answer.file_descriptor_response.file_descriptor_proto


async def test_single_node_admin(client: AsyncClient, server: RaftMQServer) -> None:
    assert server.ready is not None
    status = await client.cluster_status()
    assert (status.node_id, status.leader, status.role, list(status.voters)) == (
        server.ready.node, server.ready.node, "leader", [server.ready.node])
    error = await _expect("UnsupportedOperation", client.transfer_leadership("n2"))
    assert not error.retryable


def test_bytes_that_do_not_parse_are_invalid_argument_with_an_aws_code(address: str) -> None:
    """A client's garbage is its mistake (INVALID_ARGUMENT, SerializationException), in a unary call and in a
    request stream alike, not grpcio's UNKNOWN/INTERNAL for a parse failure."""
    from broker.grpc_api.errors import DETAIL_KEY
    from proto.broker.v1.errors_pb2 import ErrorDetail

    with grpc.insecure_channel(address) as channel:
        calls = [lambda: channel.unary_unary("/raftmq.broker.v1.Queues/Send")(b"\x0b", timeout=10),
                 lambda: list(channel.stream_stream("/raftmq.broker.v1.Queues/Consume")(iter([b"\x0b"]), timeout=10))]
        for call in calls:
            with pytest.raises(grpc.RpcError) as refused:
                call()
            assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            detail = dict(refused.value.trailing_metadata() or ())[DETAIL_KEY]
            assert ErrorDetail.FromString(detail).code == "SerializationException"
