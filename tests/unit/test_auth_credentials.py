"""The credentials file: TOML and JSON, several keys per user, rotation, policies; errors never show a secret."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from broker.auth.credentials import CredentialsError, load_credentials, parse_credentials

TOML = '''
[[accounts]]
id = "111111111111"
[[accounts.root_keys]]
id = "AKIAROOTA00000000001"
secret = "root-a-secret"
[[accounts.users]]
name = "alice"
policies = ['{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "sqs:*", "Resource": "*"}}']
[[accounts.users.keys]]
id = "AKIAALICE0000000NEW"
secret = "alice-new"
[[accounts.users.keys]]
id = "AKIAALICE0000000OLD"
secret = "alice-old"
active = false

[[accounts]]
id = "222222222222"
[[accounts.users]]
name = "bob"
[[accounts.users.policies]]
Version = "2012-10-17"
Statement = [{Effect = "Deny", Action = "sqs:DeleteQueue", Resource = "*"}]
[[accounts.users.keys]]
id = "AKIABOB00000000001"
secret = "bob-secret"
'''


def test_toml_file_with_accounts_users_keys_and_policies(tmp_path: Path) -> None:
    path = tmp_path / "creds.toml"
    path.write_text(TOML)
    store = load_credentials(path)
    assert store.accounts == ("111111111111", "222222222222")
    root = store.lookup("AKIAROOTA00000000001")
    assert root is not None and root.principal.is_root and root.principal.arn == "arn:aws:iam::111111111111:root"
    new, old = store.lookup("AKIAALICE0000000NEW"), store.lookup("AKIAALICE0000000OLD")
    assert new is not None and old is not None
    assert new.principal is old.principal and new.active and not old.active
    assert new.principal.arn == "arn:aws:iam::111111111111:user/alice"
    assert new.principal.policies[0].statements[0].actions == ("sqs:*",)
    bob = store.lookup("AKIABOB00000000001")
    assert bob is not None and bob.principal.policies[0].statements[0].effect == "Deny"
    assert store.lookup("AKIANOBODY00000000") is None


def test_json_file_is_the_same_structure(tmp_path: Path) -> None:
    path = tmp_path / "creds.json"
    path.write_text(json.dumps({"accounts": [{"id": "333333333333", "users": [
        {"name": "carol", "keys": [{"id": "AKIACAROL000000001", "secret": "c"}]}]}]}))
    key = load_credentials(path).lookup("AKIACAROL000000001")
    assert key is not None and key.principal.account_id == "333333333333"


def test_secrets_are_not_in_reprs(tmp_path: Path) -> None:
    path = tmp_path / "creds.toml"
    path.write_text(TOML)
    store = load_credentials(path)
    assert "alice-new" not in repr(store) and "root-a-secret" not in repr(store)


@pytest.mark.parametrize(("data", "message"), [
    ({}, "non-empty list 'accounts'"),
    ({"accounts": [{"id": "12"}]}, "12 digits"),
    ({"accounts": [{"id": "111111111111"}, {"id": "111111111111"}]}, "appears twice"),
    ({"accounts": [{"id": "111111111111", "root_keys": [{"id": "lower-case", "secret": "x"}]}]}, "access key id"),
    ({"accounts": [{"id": "111111111111", "root_keys": [{"id": "AKIAROOT0000000001"}]}]}, "'secret'"),
    ({"accounts": [{"id": "111111111111", "users": [
        {"name": "u", "keys": [{"id": "AKIADUP00000000001", "secret": "a"}]},
        {"name": "v", "keys": [{"id": "AKIADUP00000000001", "secret": "b"}]}]}]}, "appears twice"),
    ({"accounts": [{"id": "111111111111", "users": [{"name": "u", "policies": ["{not json"]}]}]}, "policies[0]"),
    ({"accounts": [{"id": "111111111111", "users": [{"name": "u", "policies": [
        {"Statement": [{"Effect": "Maybe", "Action": "*", "Resource": "*"}]}]}]}]}, "Effect must be"),
])
def test_bad_files_name_the_place(data: object, message: str) -> None:
    with pytest.raises(CredentialsError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_credentials(data)


def test_a_syntax_error_does_not_echo_the_file(tmp_path: Path) -> None:
    path = tmp_path / "creds.toml"
    path.write_text('[[accounts]]\nid = "111111111111"\nsecret = "top-secret-value\n')
    with pytest.raises(CredentialsError) as info:
        load_credentials(path)
    assert "top-secret-value" not in str(info.value) and "not valid TOML" in str(info.value)
