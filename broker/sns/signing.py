"""The broker's SNS message-signing key: generated once, replicated, used to sign what SNS delivers.

AWS signs every message with SHA1withRSA (SignatureVersion 1) or SHA256withRSA (2) and serves the certificate at
SigningCertURL. RaftMQ does the same with a self-signed certificate whose key is replicated state (``SetSigningKey``),
so every node signs identically and serves the same PEM. PKCS#1 v1.5 signatures are deterministic.
"""

from __future__ import annotations

import base64
import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID


def generate_key_pair() -> tuple[str, str]:
    """(private key PEM, self-signed certificate PEM), valid ten years."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.raftmq.local")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=3650)).sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    return key_pem, cert.public_bytes(serialization.Encoding.PEM).decode()


class Signer:
    """Signs canonical SNS strings with one key."""

    def __init__(self, key_pem: str, cert_pem: str) -> None:
        key = serialization.load_pem_private_key(key_pem.encode(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("the SNS signing key must be an RSA key")
        self._key = key
        self.key_pem = key_pem
        self.cert_pem = cert_pem

    def sign(self, text: str, version: str = "1") -> str:
        algorithm: hashes.HashAlgorithm = hashes.SHA256() if version == "2" else hashes.SHA1()
        return base64.b64encode(self._key.sign(text.encode("utf-8"), padding.PKCS1v15(), algorithm)).decode()


def verify(cert_pem: str, text: str, signature: str, version: str = "1") -> bool:
    """What a subscriber does: check ``signature`` over ``text`` with the certificate's public key."""
    public = x509.load_pem_x509_certificate(cert_pem.encode()).public_key()
    if not isinstance(public, rsa.RSAPublicKey):
        return False
    algorithm: hashes.HashAlgorithm = hashes.SHA256() if version == "2" else hashes.SHA1()
    try:
        public.verify(base64.b64decode(signature), text.encode("utf-8"), padding.PKCS1v15(), algorithm)
    except Exception:
        return False
    return True
