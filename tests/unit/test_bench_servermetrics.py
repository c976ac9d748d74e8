"""Group-commit figures scraped from a server's /metrics around a run."""

from __future__ import annotations

import asyncio

from benchmarks import servermetrics
from benchmarks.awsjson import Target
from benchmarks.fakesqs import FakeSqs, start

SAMPLE = """# HELP raftmq_fsync_seconds Duration of one durable LMDB commit (write + fsync)
# TYPE raftmq_fsync_seconds histogram
raftmq_fsync_seconds_bucket{{le="0.005"}} 3.0
raftmq_fsync_seconds_count {count}
raftmq_fsync_seconds_sum {seconds}
raftmq_commit_batch_entries_count {count}
raftmq_commit_batch_entries_sum {entries}
raftmq_requests_total{{action="SendMessageBatch",service="sqs",status="200"}} 12.0
garbage line without a number x
"""


def sample(count: int, seconds: float, entries: int) -> str:
    return SAMPLE.format(count=count, seconds=seconds, entries=entries)


def test_parse_reads_samples_with_and_without_labels() -> None:
    samples = servermetrics.parse(sample(10, 0.2, 300))
    assert samples["raftmq_fsync_seconds_count"] == 10.0
    assert samples['raftmq_fsync_seconds_bucket{le="0.005"}'] == 3.0
    assert samples['raftmq_requests_total{action="SendMessageBatch",service="sqs",status="200"}'] == 12.0
    assert "garbage line without a number" not in samples


def test_commit_summary_is_the_delta_over_the_run() -> None:
    before = servermetrics.parse(sample(10, 0.2, 300))
    after = servermetrics.parse(sample(110, 1.2, 5300))
    assert servermetrics.commit_summary(before, after, elapsed=2.0) == {
        "commits": 100, "commits_per_s": 50.0, "entries_per_commit": 50.0, "commit_ms_mean": 10.0}
    assert servermetrics.commit_summary(after, after, 2.0) is None  # nothing committed
    assert servermetrics.commit_summary({}, {"raftmq_fsync_seconds_sum": 1.0}, 2.0) is None  # not exposed


async def test_scrape_reads_metrics_and_tolerates_servers_without_them() -> None:
    async def metrics(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"GET /metrics HTTP/1.1\r\n")
        body = sample(7, 0.07, 70).encode()
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(metrics, "127.0.0.1", 0)
    async with server:
        got = await servermetrics.scrape(Target(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"))
    assert got["raftmq_commit_batch_entries_sum"] == 70.0

    fake = await start(FakeSqs())  # answers GET /metrics with a 400 error
    async with fake:
        assert await servermetrics.scrape(Target(f"http://127.0.0.1:{fake.sockets[0].getsockname()[1]}")) == {}
