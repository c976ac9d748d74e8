"""Fixtures for end-to-end tests: real ``raftmq serve`` processes and boto3 clients pointed at them.

One server per test module keeps the suite fast (start-up is paid once per module); tests stay independent by
using unique queue names. Clients never retry, so the first error a server returns is the one the test sees.

SQS is spoken over two wire protocols (see ``sqs_clients``). The ``protocol`` fixture says which one the ``sqs``
client (and ``sqs_factory``, ``make_queue``, ``queue_url``) speaks: "json" unless a test is marked
``@both_protocols``, which runs it once per protocol. Clients are cached per module and protocol.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config

from tests.integration.server import RaftMQServer, serving
from tests.integration.sqs_clients import PROTOCOLS, check_protocol, sqs_session

REGION = "us-east-1"
DUMMY_KEY = "AKIAIOSFODNN7EXAMPLE"
DUMMY_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"

ClientFactory = Callable[..., Any]

both_protocols = pytest.mark.parametrize("protocol", PROTOCOLS)


def client_config(read_timeout: float = 40.0) -> Config:
    """No retries (errors surface at once) and a read timeout above the 20 s long-poll maximum."""
    return Config(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=5,
                  read_timeout=read_timeout, max_pool_connections=20)


def make_client(service: str, endpoint: str, **kwargs: Any) -> Any:
    """A boto3 client for ``service`` at ``endpoint`` with dummy credentials (the server accepts any)."""
    session = boto3.session.Session()  # sessions are not thread-safe; one per client keeps threads apart
    options: dict[str, Any] = {"region_name": REGION, "aws_access_key_id": DUMMY_KEY,
                               "aws_secret_access_key": DUMMY_SECRET, "config": client_config()}
    options.update(kwargs)
    return session.client(service, endpoint_url=endpoint, **options)


def make_sqs_client(endpoint: str, protocol: str = "json", **kwargs: Any) -> Any:
    """An SQS client speaking ``protocol`` ("json": AWS JSON 1.0; "query": form requests, XML responses)."""
    options: dict[str, Any] = {"region_name": REGION, "aws_access_key_id": DUMMY_KEY,
                               "aws_secret_access_key": DUMMY_SECRET, "config": client_config()}
    options.update(kwargs)
    client = sqs_session(protocol).client("sqs", endpoint_url=endpoint, **options)
    return check_protocol(client, protocol)


@pytest.fixture(scope="session", autouse=True)
def _no_orphan_servers() -> Iterator[None]:
    """Whatever a failing test left running is killed when the session ends."""
    yield
    RaftMQServer.kill_all()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RaftMQServer]:
    """One real server for the whole module, stopped gracefully (and checked to exit 0) at the end."""
    with serving(RaftMQServer(tmp_path_factory.mktemp("raftmq") / "data")) as srv:
        yield srv


@pytest.fixture
def protocol() -> str:
    """The SQS wire protocol of this test; ``@both_protocols`` parametrises it over every protocol."""
    return "json"


@pytest.fixture
def sqs_factory(server: RaftMQServer, protocol: str) -> ClientFactory:
    """Make more SQS clients for the module server (e.g. one per thread), speaking the test's protocol."""

    def factory(**kwargs: Any) -> Any:
        return make_sqs_client(server.endpoint, protocol, **kwargs)

    return factory


@pytest.fixture(scope="module")
def _sqs_clients() -> dict[tuple[str, str], Any]:
    """One client per (endpoint, protocol) for the module: building a botocore client costs ~50 ms."""
    return {}


@pytest.fixture
def sqs(server: RaftMQServer, protocol: str, _sqs_clients: dict[tuple[str, str], Any]) -> Any:
    key = (server.endpoint, protocol)
    if key not in _sqs_clients:
        _sqs_clients[key] = make_sqs_client(server.endpoint, protocol)
    return _sqs_clients[key]


def unique_name(label: str) -> str:
    """A queue name no other test (or earlier run) uses: SQS names allow [A-Za-z0-9_-], 1-80 chars."""
    clean = re.sub(r"[^A-Za-z0-9_-]", "-", label)[:60]
    return f"{clean}-{uuid.uuid4().hex[:12]}"


def fifo_name(unique: str, suffix: str = "") -> str:
    """A FIFO queue name made from a ``unique_name``: keeps its unique tail and fits 80 characters with ``.fifo``
    (cutting the end off instead would make the json and query runs of one test share a queue)."""
    head, _, tag = unique.rpartition("-")
    return f"{head[:50]}-{tag}{suffix[:8]}.fifo"


@pytest.fixture
def queue_name(request: pytest.FixtureRequest) -> str:
    return unique_name(request.node.name)


@pytest.fixture
def make_queue(sqs: Any, queue_name: str) -> Callable[..., str]:
    """Create a queue with a unique name (suffix distinguishes several per test) and return its URL."""
    counter = iter(range(1_000))

    def create(attributes: dict[str, str] | None = None, suffix: str | None = None) -> str:
        name = f"{queue_name}-{suffix if suffix is not None else next(counter)}"
        response = sqs.create_queue(QueueName=name, Attributes=attributes or {})
        url: str = response["QueueUrl"]
        return url

    return create


@pytest.fixture
def queue_url(make_queue: Callable[..., str]) -> str:
    return make_queue()
