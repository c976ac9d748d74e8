"""The development CA helper: what it signs, the SANs, key file permissions, and the ``raftmq certs`` commands."""

from __future__ import annotations

import ipaddress
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import ExtendedKeyUsageOID

from broker.certs import create_ca, issue
from broker.cli import main


def test_node_certificate_is_signed_by_the_ca_and_names_every_host(tmp_path: Path) -> None:
    ca = create_ca(tmp_path / "ca")
    files = issue(tmp_path / "ca", "n1", ["127.0.0.1", "::1", "node1.example"], tmp_path / "n1")
    ca_cert = x509.load_pem_x509_certificate(ca.cert.read_bytes())
    cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
    cert.verify_directly_issued_by(ca_cert)  # raises if the signature or issuer does not match
    assert ca_cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")]
    assert san.get_values_for_type(x509.DNSName) == ["node1.example"]
    usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH} <= set(usages)
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert files.cert.parent == tmp_path / "n1"


def test_private_keys_are_readable_by_the_owner_only(tmp_path: Path) -> None:
    ca = create_ca(tmp_path)
    node = issue(tmp_path, "admin", [])
    for key in (ca.key, node.key):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    cert = x509.load_pem_x509_certificate(node.cert.read_bytes())
    with pytest.raises(x509.ExtensionNotFound):  # a client-only certificate carries no SAN
        cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)


def test_a_certificate_of_another_ca_does_not_verify(tmp_path: Path) -> None:
    create_ca(tmp_path / "a")
    other = create_ca(tmp_path / "b")
    files = issue(tmp_path / "a", "n1", ["127.0.0.1"])
    with pytest.raises(InvalidSignature):  # same CA name, different key
        x509.load_pem_x509_certificate(files.cert.read_bytes()).verify_directly_issued_by(
            x509.load_pem_x509_certificate(other.cert.read_bytes()))


def test_cli_creates_ca_and_node_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["certs", "dev-ca", "--out", str(tmp_path / "ca")]) == 0
    assert main(["certs", "node", "--ca", str(tmp_path / "ca"), "--name", "n2", "--host", "127.0.0.1",
                 "--host", "localhost"]) == 0
    printed = capsys.readouterr().out.split()
    assert printed == [str(tmp_path / "ca" / name) for name in ("ca.pem", "ca.key", "n2.pem", "n2.key")]
    cert = x509.load_pem_x509_certificate((tmp_path / "ca" / "n2.pem").read_bytes())
    assert cert.subject.rfc4514_string() == "CN=n2"


def test_cli_reports_a_missing_ca(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["certs", "node", "--ca", str(tmp_path / "none"), "--name", "n1"]) == 1
    assert "raftmq certs:" in capsys.readouterr().err
