"""The start-up rule: dev mode on loopback only, refusal elsewhere unless --insecure, verified with a file."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from broker.auth import Authenticator, DevAuthenticator, SecurityMode, build_authenticator, security_mode
from broker.auth.mode import is_loopback
from broker.cli import main


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "localhost", "::1", "[::1]"])
def test_loopback_without_credentials_is_dev_mode(host: str) -> None:
    assert is_loopback(host)
    assert security_mode(host, None, insecure=False) is SecurityMode.DEV


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "example.com", ""])
def test_elsewhere_without_credentials_refuses_unless_insecure(host: str) -> None:
    with pytest.raises(ValueError, match="without --credentials"):
        security_mode(host, None, insecure=False)
    assert security_mode(host, None, insecure=True) is SecurityMode.INSECURE


def test_a_credentials_file_means_verified_anywhere() -> None:
    assert security_mode("0.0.0.0", "creds.toml", insecure=False) is SecurityMode.VERIFIED
    assert security_mode("127.0.0.1", "creds.toml", insecure=True) is SecurityMode.VERIFIED


def test_dev_mode_says_so_at_start_up(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="raftmq"):
        auth = build_authenticator("127.0.0.1", None, False, "123456789012")
    assert isinstance(auth, DevAuthenticator)
    assert "mode=dev" in caplog.text and "ANY credentials" in caplog.text and "123456789012" in caplog.text


def test_insecure_mode_says_so_at_start_up(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="raftmq"):
        build_authenticator("0.0.0.0", None, True, "123456789012")
    assert "mode=insecure" in caplog.text and "ANY client" in caplog.text


def test_verified_mode_logs_counts_and_never_a_secret(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "creds.toml"
    path.write_text('[[accounts]]\nid = "111111111111"\n[[accounts.root_keys]]\nid = "AKIAROOT000000000001"\n'
                    'secret = "s3cr3t-value"\n')
    with caplog.at_level(logging.DEBUG):
        auth = build_authenticator("0.0.0.0", str(path), False, "000000000000")
    assert isinstance(auth, Authenticator)
    assert "mode=verified" in caplog.text and "accounts=1 access_keys=1" in caplog.text
    assert "s3cr3t-value" not in caplog.text


def test_serve_on_a_public_address_without_credentials_does_not_start(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["serve", "--host", "0.0.0.0", "--port", "0", "--grpc-port", "0", "--data-dir",
                 str(tmp_path / "data"), "--log-level", "error"])
    assert code == 1
    assert "refusing to listen on 0.0.0.0 without --credentials" in capsys.readouterr().err
    data = tmp_path / "data"
    assert not data.exists() or not any(data.iterdir())  # refused before anything was locked or opened


def test_serve_with_an_unreadable_credentials_file_does_not_start(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["serve", "--credentials", str(tmp_path / "missing.toml"), "--port", "0", "--grpc-port", "0",
                 "--data-dir", str(tmp_path / "data"), "--log-level", "error"])
    assert code == 1
    assert "cannot read credentials file" in capsys.readouterr().err
