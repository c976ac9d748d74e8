"""boto3 SQS clients for both wire protocols SDKs in the field speak.

Current botocore speaks AWS JSON 1.0 to SQS. Older SDKs (botocore <= 1.31.80, Java v1, many others) speak the Query
protocol: form bodies, XML responses, legacy ``AWS.SimpleQueueService.*`` error codes. To be such a client without
installing an old botocore, a botocore session is given one extra data directory, searched first, that holds the
frozen Query model the server pins (``proto/aws/sqs-query-2012-11-05.json``) under the name botocore looks for
(``sqs/2012-11-05/service-2.json``). Everything else (endpoint rules, signing, retries, parsing) is the installed
botocore, so the requests are exactly what botocore 1.31.80 sent.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path
from typing import Any, Final

import boto3
import botocore.session

PROTOCOLS: Final = ("json", "query")
QUERY_MODEL: Final = Path(__file__).resolve().parents[2] / "proto" / "aws" / "sqs-query-2012-11-05.json"


@functools.cache
def query_data_dir() -> Path:
    """A botocore data directory (made once per process, removed at exit) holding only the frozen Query model."""
    root = Path(tempfile.mkdtemp(prefix="raftmq-sqs-query-model-"))
    atexit.register(shutil.rmtree, root, True)
    target = root / "sqs" / "2012-11-05" / "service-2.json"
    target.parent.mkdir(parents=True)
    shutil.copyfile(QUERY_MODEL, target)
    return root


def sqs_session(protocol: str) -> boto3.session.Session:
    """A fresh session (sessions are not thread-safe) whose SQS model speaks ``protocol``."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown SQS protocol {protocol!r}; expected one of {PROTOCOLS}")
    core = botocore.session.Session()
    if protocol == "query":
        core.get_component("data_loader").search_paths.insert(0, str(query_data_dir()))
    return boto3.session.Session(botocore_session=core)


def check_protocol(client: Any, protocol: str) -> Any:
    """Fail loudly if botocore did not pick the model we meant (a silent JSON client would prove nothing)."""
    actual = client.meta.service_model.protocol
    if actual != protocol:
        raise AssertionError(f"asked for an SQS {protocol} client, botocore built a {actual} one")
    return client
