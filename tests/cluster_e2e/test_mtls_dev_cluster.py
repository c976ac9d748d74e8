"""``raftmq dev-cluster --tls``: a local 3-node cluster with its own CA, HTTPS and mutual TLS, that boto3 (trusting
the printed CA) and the admin CLI (with the printed admin certificate) can use."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import boto3
from botocore.config import Config

from tests.cluster_e2e.cluster import REPO
from tests.integration.server import parse_ready_line


def test_dev_cluster_with_tls_serves_https_and_admin_over_mtls(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "broker.cli", "dev-cluster", "--nodes", "3", "--tls",
                             "--data-dir", str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, cwd=str(REPO), start_new_session=True)  # its own group: killable as a whole
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline().strip() for _ in range(5)]
        ready = [parse_ready_line(line) for line in lines[:3]]
        assert all(r is not None and r.endpoint.startswith("https://") for r in ready), lines
        peers = re.search(r"peers=(\S+),", lines[3])
        tls = re.fullmatch(r"RaftMQ dev cluster TLS: ca=(\S+) admin-cert=(\S+) admin-key=(\S+)", lines[4])
        assert peers is not None and tls is not None, lines
        ca, cert, key = tls.groups()
        n1_cluster = peers.group(1).split(",")[0].split("=", 1)[1]
        endpoint = ready[1].endpoint if ready[1] is not None else ""
        sqs = boto3.session.Session().client(
            "sqs", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="AKIADEV",
            aws_secret_access_key="dev", verify=ca, config=Config(retries={"max_attempts": 8, "mode": "standard"}))
        url = sqs.create_queue(QueueName="dev-tls")["QueueUrl"]  # retried 503s while the nodes elect a leader
        sqs.send_message(QueueUrl=url, MessageBody="hello")
        status = subprocess.run([sys.executable, "-m", "broker.cli", "cluster", "--endpoint", n1_cluster, "--ca", ca,
                                 "--cert", cert, "--key", key, "status"], capture_output=True, text=True,
                                timeout=60, cwd=str(REPO), check=False)
        assert status.returncode == 0, status.stderr
        assert json.loads(status.stdout)["leader"] in ("n1", "n2", "n3")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
