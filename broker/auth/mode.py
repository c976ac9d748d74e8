"""The start-up rule: dev mode only where nobody else can reach the broker.

- no credentials file, loopback address -> dev mode: any credentials are accepted, and the log says so;
- no credentials file, any other address -> refuse to start, unless ``--insecure`` asks for dev mode anyway;
- a credentials file -> every request is SigV4-verified and authorized by IAM policies.
"""

from __future__ import annotations

import enum
import ipaddress
import logging

from broker.auth.authenticator import Authenticator, DevAuthenticator
from broker.auth.credentials import load_credentials

log = logging.getLogger("raftmq")


class SecurityMode(enum.Enum):
    DEV = "dev"  # loopback, no credentials file
    INSECURE = "insecure"  # reachable from elsewhere, no credentials file, --insecure given
    VERIFIED = "verified"  # a credentials file


def is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def security_mode(host: str, credentials_file: str | None, insecure: bool) -> SecurityMode:
    """Which mode a node with these options runs in; ValueError (the CLI's "cannot start") when none may."""
    if credentials_file:
        return SecurityMode.VERIFIED
    if is_loopback(host):
        return SecurityMode.DEV
    if insecure:
        return SecurityMode.INSECURE
    raise ValueError(f"refusing to listen on {host} without --credentials: anyone who can reach it could use the "
                     "broker with any credentials. Give --credentials FILE, listen on 127.0.0.1, or pass --insecure")


def build_authenticator(host: str, credentials_file: str | None, insecure: bool,
                        account_id: str, *, secure_transport: bool = False) -> Authenticator | DevAuthenticator:
    """The authenticator for these options, logging the mode once (never a secret). ``secure_transport``: the
    HTTP front door serves only TLS, so ``aws:SecureTransport`` is true in policy conditions."""
    mode = security_mode(host, credentials_file, insecure)
    if mode is SecurityMode.VERIFIED:
        assert credentials_file is not None
        store = load_credentials(credentials_file)
        log.info("event=auth mode=verified credentials=%s accounts=%d access_keys=%d", credentials_file,
                 len(store.accounts), len(store.keys))
        return Authenticator(store, secure_transport=secure_transport)
    if mode is SecurityMode.DEV:
        log.warning("event=auth mode=dev: listening on loopback only (%s) without --credentials; ANY credentials "
                    "are accepted as the root user of account %s", host, account_id)
    else:
        log.warning("event=auth mode=insecure: listening on %s without --credentials (--insecure); ANY credentials "
                    "from ANY client are accepted as the root user of account %s", host, account_id)
    return DevAuthenticator(account_id)
