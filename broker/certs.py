"""Development certificates: a CA and the node/server certificates it signs (``raftmq certs ...``).

Made with ``cryptography`` so that trying TLS and mutual TLS needs no openssl recipe. Keys are ECDSA P-256 (fast
handshakes, accepted by OpenSSL, BoringSSL in gRPC, boto3 and the AWS CLI). A node certificate serves both ends of
mutual TLS (extended key usage serverAuth and clientAuth) and names every address it is reached at as a SAN: IP
addresses as IP SANs, anything else as a DNS name. This is a development CA: its key sits unencrypted next to its
certificate (mode 0600); a production cluster should use its own PKI with the same file layout.
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_CERT = "ca.pem"
CA_KEY = "ca.key"
BACKDATE = datetime.timedelta(minutes=5)  # tolerate small clock differences between the machines


@dataclass(frozen=True, slots=True)
class CertFiles:
    """Where a certificate and its private key were written."""

    cert: Path
    key: Path


def _write(path: Path, data: bytes, private: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    fd = os.open(path, flags, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    if private:
        os.chmod(path, 0o600)  # also when the file existed with wider permissions


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def create_ca(out_dir: str | Path, name: str = "RaftMQ development CA", days: int = 3650) -> CertFiles:
    """Write a self-signed CA (``ca.pem``, ``ca.key``) into ``out_dir``."""
    out = Path(out_dir)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = _now()
    public = key.public_key()
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE).not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False),
                           critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .sign(key, hashes.SHA256()))
    files = CertFiles(out / CA_CERT, out / CA_KEY)
    _write(files.key, _key_pem(key), private=True)
    _write(files.cert, cert.public_bytes(serialization.Encoding.PEM), private=False)
    return files


def _san(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return x509.DNSName(host)


def issue(ca_dir: str | Path, name: str, hosts: Sequence[str], out_dir: str | Path | None = None,
          days: int = 825) -> CertFiles:
    """Sign a certificate for ``name`` (its CN) valid for ``hosts``; write ``<name>.pem``/``<name>.key``.

    ``hosts`` may be empty for a certificate that only authenticates a client (an operator's admin CLI).
    """
    ca = Path(ca_dir)
    ca_key = serialization.load_pem_private_key((ca / CA_KEY).read_bytes(), password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{ca / CA_KEY}: not an EC key made by 'raftmq certs dev-ca'")
    ca_cert = x509.load_pem_x509_certificate((ca / CA_CERT).read_bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
               .issuer_name(ca_cert.subject).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - BACKDATE).not_valid_after(now + datetime.timedelta(days=days))
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=False, key_cert_sign=False,
                                            crl_sign=False, content_commitment=False, data_encipherment=False,
                                            key_agreement=False, encipher_only=False, decipher_only=False),
                              critical=True)
               .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                     ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                              critical=False))
    if hosts:
        builder = builder.add_extension(x509.SubjectAlternativeName([_san(h) for h in hosts]), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    out = Path(out_dir) if out_dir is not None else ca
    files = CertFiles(out / f"{name}.pem", out / f"{name}.key")
    _write(files.key, _key_pem(key), private=True)
    _write(files.cert, cert.public_bytes(serialization.Encoding.PEM), private=False)
    return files


# -- command line --------------------------------------------------------------------------------------------------

def add_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    certs = commands.add_parser("certs", help="make a development CA and node certificates")
    actions = certs.add_subparsers(dest="action", required=True)
    ca = actions.add_parser("dev-ca", help="create a development CA (ca.pem, ca.key) in --out")
    ca.add_argument("--out", required=True, help="directory to write ca.pem and ca.key into")
    ca.add_argument("--name", default="RaftMQ development CA", help="the CA's common name")
    node = actions.add_parser("node", help="create a node/server certificate signed by the CA in --ca")
    node.add_argument("--ca", required=True, help="directory holding ca.pem and ca.key")
    node.add_argument("--name", required=True, help="common name and file name (e.g. the node id n1)")
    node.add_argument("--host", action="append", default=[],
                      help="an IP address or DNS name the node is reached at (repeat; becomes a SAN)")
    node.add_argument("--out", default=None, help="directory for NAME.pem/NAME.key (default: the CA's)")
    node.add_argument("--days", type=int, default=825)


def run(args: argparse.Namespace) -> int:
    """``raftmq certs ...``: prints the written paths, one per line."""
    if args.action == "dev-ca":
        files = create_ca(args.out, args.name)
    else:
        files = issue(args.ca, args.name, args.host, args.out, args.days)
    print(files.cert)
    print(files.key)
    return 0
