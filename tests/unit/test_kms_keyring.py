"""The key file: every name KMS accepts finds its key; every mistake is refused naming the place, never material."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from broker.kms.keyring import KeyFileError, load_keyring, parse_keyring

KEY_ID = "4f1c2d9e-7a33-4c61-9d0e-2b8f6a1c5e70"
OTHER_ID = "0b7e8a51-2c4d-4e6f-8a9b-1c2d3e4f5a6b"
MATERIAL = bytes(range(32))
B64 = base64.b64encode(MATERIAL).decode()


def _doc(**overrides: Any) -> dict[str, Any]:
    key: dict[str, Any] = {"id": KEY_ID, "aliases": ["alias/orders"], "versions": [B64]}
    key.update(overrides)
    return {"keys": [key]}


def test_toml_file_finds_the_key_by_id_arn_alias_and_alias_arn(tmp_path: Path) -> None:
    path = tmp_path / "keys.toml"
    path.write_text(f'[[keys]]\nid = "{KEY_ID}"\naliases = ["alias/orders"]\naccount = "111111111111"\n'
                    f'region = "eu-west-1"\nversions = ["{B64}", "{B64}"]\n')
    ring = load_keyring(path)
    key = ring.find(KEY_ID)
    assert key is not None and key.newest == 2 and key.enabled
    assert key.arn == f"arn:aws:kms:eu-west-1:111111111111:key/{KEY_ID}"
    for name in (key.arn, "alias/orders", "arn:aws:kms:eu-west-1:111111111111:alias/orders"):
        assert ring.find(name) is key
    assert ring.find("alias/other") is None
    assert ring.find(f"arn:aws:kms:us-east-1:111111111111:key/{KEY_ID}") is None  # another region's ARN


def test_json_file_with_defaults(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    path.write_text(json.dumps(_doc(enabled=False)))
    key = load_keyring(path).find("alias/orders")
    assert key is not None and not key.enabled
    assert key.arn == f"arn:aws:kms:us-east-1:000000000000:key/{KEY_ID}"
    assert key.versions == (MATERIAL,)


def test_material_never_appears_in_repr() -> None:
    key = parse_keyring(_doc()).find(KEY_ID)
    assert B64 not in repr(key) and repr(MATERIAL) not in repr(key)


@pytest.mark.parametrize(("doc", "fragment"), [
    ({}, "expected a list 'keys'"),
    ({"keys": ["x"]}, "keys[0]: expected a table"),
    (_doc(id="not-a-uuid"), "'id' must be a UUID"),
    (_doc(versions=[]), "'versions' must list at least one"),
    (_doc(versions=["%%%"]), "versions[0]: not base64"),
    (_doc(versions=[base64.b64encode(b"short").decode()]), "must decode to 32 bytes"),
    (_doc(aliases=["orders"]), "'aliases' must be a list of names like alias/orders"),
    (_doc(enabled="yes"), "'enabled' must be true or false"),
    (_doc(account="12"), "'account' must be 12 digits"),
    (_doc(region="Mars"), "'region' must be a region name"),
])
def test_invalid_documents_are_refused(doc: dict[str, Any], fragment: str) -> None:
    with pytest.raises(KeyFileError, match=None) as info:
        parse_keyring(doc, "k.toml")
    assert fragment in str(info.value) and str(info.value).startswith("k.toml")


def test_a_name_used_by_two_keys_is_refused() -> None:
    doc = {"keys": [_doc()["keys"][0], {"id": OTHER_ID, "aliases": ["alias/orders"], "versions": [B64]}]}
    with pytest.raises(KeyFileError, match="alias/orders also names key"):
        parse_keyring(doc)
    with pytest.raises(KeyFileError, match="the id is used twice"):
        parse_keyring({"keys": [_doc()["keys"][0], _doc()["keys"][0]]})


def test_unreadable_or_unparsable_file_names_only_the_place(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="cannot read the key file"):
        load_keyring(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text(f'versions = ["{B64}"\n')
    with pytest.raises(KeyFileError) as info:
        load_keyring(bad)
    assert B64 not in str(info.value) and "not valid TOML" in str(info.value)
