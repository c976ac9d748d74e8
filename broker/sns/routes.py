"""Exact HTTP routes SNS needs besides the AWS API: the signing certificate served at SigningCertURL."""

from __future__ import annotations

from broker.http.types import HttpHandler, HttpRequest, HttpResponse
from broker.model.sns_envelope import CERT_PATH
from broker.sns.keys import SigningKeys


def sns_routes(keys: SigningKeys) -> dict[tuple[str, str], HttpHandler]:
    """``GET /SimpleNotificationService-raftmq.pem``: the PEM certificate subscribers verify signatures with."""

    async def certificate(request: HttpRequest) -> HttpResponse:
        signer = await keys.signer()
        return HttpResponse(200, signer.cert_pem.encode(), content_type="application/x-pem-file")

    return {("GET", CERT_PATH): certificate}
