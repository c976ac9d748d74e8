"""The key file: KMS-like keys (UUID id, ARN, aliases, enabled flag) with numbered versions of 256-bit material.

TOML (read with ``tomllib``) or JSON with the same structure; every node of a cluster must get the same file::

    [[keys]]
    id = "4f1c2d9e-7a33-4c61-9d0e-2b8f6a1c5e70"
    aliases = ["alias/orders"]
    enabled = true                        # false: sealing and opening fail with KmsDisabled / KMSDisabledException
    account = "000000000000"              # for the key's ARN (default: 000000000000)
    region = "us-east-1"                  # for the key's ARN (default: us-east-1)
    versions = ["<base64 of 32 bytes>", "<base64 of 32 bytes>"]   # oldest first; the last one seals new data

Versions are numbered from 1 in file order, and sealed data names the version it was sealed with, so rotation is
appending a version (never removing or reordering one that sealed data still needs). Key material lives only in
``KmsKey.versions``, whose repr hides it; error messages name the place in the file, never material.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import tomllib
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

KEY_BYTES = 32
_ALIAS = re.compile(r"^alias/[A-Za-z0-9/_-]{1,250}$")
_ACCOUNT = re.compile(r"^\d{12}$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")


class KeyFileError(ValueError):
    """The key file is unreadable or wrong; the message names the place, never key material."""


@dataclass(frozen=True, slots=True)
class KmsKey:
    """One key of the file; ``versions[n - 1]`` is the material of version ``n``."""

    key_id: str
    arn: str
    aliases: tuple[str, ...]
    enabled: bool
    versions: tuple[bytes, ...] = field(repr=False)

    @property
    def newest(self) -> int:
        """The version that seals new data."""
        return len(self.versions)


class Keyring:
    """The keys of the file, found by any name KMS accepts: key id, key ARN, alias name or alias ARN."""

    def __init__(self, keys: list[KmsKey] | tuple[KmsKey, ...] = ()) -> None:
        self.keys: dict[str, KmsKey] = {}
        self._names: dict[str, KmsKey] = {}
        for key in keys:
            if key.key_id in self.keys:
                raise KeyFileError(f"key {key.key_id}: the id is used twice")
            self.keys[key.key_id] = key
            region, account = key.arn.split(":")[3:5]
            names = [key.key_id, key.arn, *key.aliases,
                     *(f"arn:aws:kms:{region}:{account}:{alias}" for alias in key.aliases)]
            for name in names:
                if name in self._names:
                    raise KeyFileError(f"key {key.key_id}: the name {name} also names key {self._names[name].key_id}")
                self._names[name] = key

    def find(self, name: str) -> KmsKey | None:
        """The key ``name`` refers to, or None (KMS would answer NotFound)."""
        return self._names.get(name)

    def __len__(self) -> int:
        return len(self.keys)


def load_keyring(path: str | Path) -> Keyring:
    """Read and validate a key file (``.json``: JSON, anything else: TOML)."""
    where = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise KeyFileError(f"{where}: cannot read the key file ({exc.strerror})") from None
    try:
        doc = json.loads(raw) if where.endswith(".json") else tomllib.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        # The parser's message can quote the offending line (key material, perhaps): say only where.
        raise KeyFileError(f"{where}: not valid {'JSON' if where.endswith('.json') else 'TOML'}") from None
    return parse_keyring(doc, where)


def parse_keyring(doc: Any, where: str = "key file") -> Keyring:
    """Validate a decoded key file document."""
    if not isinstance(doc, dict) or not isinstance(doc.get("keys"), list):
        raise KeyFileError(f"{where}: expected a list 'keys'")
    return Keyring([_key(entry, f"{where}: keys[{i}]") for i, entry in enumerate(doc["keys"])])


def _key(entry: Any, where: str) -> KmsKey:
    if not isinstance(entry, dict):
        raise KeyFileError(f"{where}: expected a table")
    key_id = entry.get("id")
    try:
        if not isinstance(key_id, str) or str(uuid.UUID(key_id)) != key_id.lower():
            raise ValueError
    except ValueError:
        raise KeyFileError(f"{where}: 'id' must be a UUID like 1234abcd-12ab-34cd-56ef-1234567890ab") from None
    key_id = key_id.lower()
    account = entry.get("account", "000000000000")
    region = entry.get("region", "us-east-1")
    if not isinstance(account, str) or not _ACCOUNT.match(account):
        raise KeyFileError(f"{where}: 'account' must be 12 digits")
    if not isinstance(region, str) or not _REGION.match(region):
        raise KeyFileError(f"{where}: 'region' must be a region name like us-east-1")
    aliases = entry.get("aliases", [])
    if not isinstance(aliases, list) or not all(isinstance(a, str) and _ALIAS.match(a) for a in aliases):
        raise KeyFileError(f"{where}: 'aliases' must be a list of names like alias/orders")
    enabled = entry.get("enabled", True)
    if not isinstance(enabled, bool):
        raise KeyFileError(f"{where}: 'enabled' must be true or false")
    versions = entry.get("versions")
    if not isinstance(versions, list) or not versions:
        raise KeyFileError(f"{where}: 'versions' must list at least one base64 key (32 bytes)")
    material = tuple(_material(v, f"{where}: versions[{i}]") for i, v in enumerate(versions))
    return KmsKey(key_id, f"arn:aws:kms:{region}:{account}:key/{key_id}", tuple(aliases), enabled, material)


def _material(value: Any, where: str) -> bytes:
    try:
        if not isinstance(value, str):
            raise ValueError
        raw = base64.b64decode(value, validate=True)
    except (ValueError, binascii.Error):
        raise KeyFileError(f"{where}: not base64") from None
    if len(raw) != KEY_BYTES:
        raise KeyFileError(f"{where}: must decode to {KEY_BYTES} bytes (256 bits), not {len(raw)}")
    return raw
