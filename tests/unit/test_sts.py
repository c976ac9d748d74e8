"""STS answers as the account's root user and refuses to issue credentials."""

from __future__ import annotations

import pytest

from broker.model.errors import BrokerError
from broker.service import RequestContext
from broker.sts import StsService

CTX = RequestContext(request_id="r", account_id="111122223333", region="us-east-1",
                     endpoint_url="http://localhost:4566", protocol="query")


async def test_get_caller_identity_is_the_root_of_the_context_account() -> None:
    assert await StsService().handle("GetCallerIdentity", {}, CTX) == {
        "UserId": "111122223333", "Account": "111122223333", "Arn": "arn:aws:iam::111122223333:root"}


async def test_configured_account_wins() -> None:
    identity = await StsService("999999999999").handle("GetCallerIdentity", {}, CTX)
    assert identity["Account"] == "999999999999"
    assert identity["Arn"] == "arn:aws:iam::999999999999:root"


async def test_get_access_key_info() -> None:
    assert await StsService().handle("GetAccessKeyInfo", {"AccessKeyId": "AKIDEXAMPLE"}, CTX) == {
        "Account": "111122223333"}


@pytest.mark.parametrize("operation", ["AssumeRole", "GetSessionToken", "GetFederationToken",
                                       "AssumeRoleWithWebIdentity", "DecodeAuthorizationMessage"])
async def test_credential_operations_are_refused(operation: str) -> None:
    with pytest.raises(BrokerError) as info:
        await StsService().handle(operation, {}, CTX)
    assert (info.value.code, info.value.status, info.value.sender_fault) == ("InvalidAction", 400, True)
    assert operation in info.value.message
