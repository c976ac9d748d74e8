"""STS, as far as SDKs and tools need it.

- ``GetCallerIdentity`` -> the verified caller of the request context (``broker.auth``): its account, ARN
  (``arn:aws:iam::<account>:user/<name>`` or ``...:root``) and UserId. Without one (dev mode) every caller is the
  root user of the configured account: Arn = ``arn:aws:iam::<account>:root``, UserId = the account id (what real
  STS returns for root credentials);
- ``GetAccessKeyInfo`` -> Account = the configured account id;
- every other STS action (AssumeRole, GetSessionToken, ...) issues credentials RaftMQ cannot honour: it fails with
  ``InvalidAction`` (400) naming the action, rather than handing out credentials that mean nothing.
"""

from __future__ import annotations

from typing import Any

from broker.model.errors import InvalidAction
from broker.service import RequestContext


class StsService:
    """The ``sts`` AwsService."""

    name = "sts"

    def __init__(self, account_id: str | None = None) -> None:
        # None: answer with the account of the request context (the gateway's configured account).
        self._account_id = account_id

    async def handle(self, operation: str, params: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        account = self._account_id or ctx.account_id
        if operation == "GetCallerIdentity":
            if ctx.principal_arn and self._account_id is None:
                return {"UserId": ctx.user_id or account, "Account": ctx.account_id, "Arn": ctx.principal_arn}
            return {"UserId": account, "Account": account, "Arn": f"arn:aws:iam::{account}:root"}
        if operation == "GetAccessKeyInfo":
            return {"Account": account}
        raise InvalidAction(f"The action {operation} is not supported by this endpoint: "
                            "RaftMQ does not issue temporary credentials.")
