"""The authentication and authorization errors AWS returns, with its codes, statuses and wording.

They are ``BrokerError``s, so every protocol codec words them the way it words any other error.
"""

from __future__ import annotations

from broker.model.errors import BrokerError

SIGNATURE_MISMATCH = ("The request signature we calculated does not match the signature you provided. "
                      "Check your AWS Secret Access Key and signing method. Consult the service documentation "
                      "for details.")


def invalid_client_token_id() -> BrokerError:
    """An access key the broker does not know (or a deleted one)."""
    return BrokerError("The security token included in the request is invalid.", code="InvalidClientTokenId",
                       status=403)


def signature_does_not_match(message: str = SIGNATURE_MISMATCH) -> BrokerError:
    return BrokerError(message, code="SignatureDoesNotMatch", status=403)


def incomplete_signature(message: str) -> BrokerError:
    return BrokerError(message, code="IncompleteSignature", status=400)


def missing_authentication_token() -> BrokerError:
    return BrokerError("Request is missing Authentication Token", code="MissingAuthenticationToken", status=403)


def request_expired(message: str) -> BrokerError:
    return BrokerError(message, code="RequestExpired", status=400)


def access_denied(principal_arn: str, action: str, resource: str, reason: str) -> BrokerError:
    """AWS's wording: who, which action, which resource, and why (no policy allows it / an explicit deny)."""
    return BrokerError(f"User: {principal_arn} is not authorized to perform: {action} on resource: {resource} "
                       f"{reason}", code="AccessDenied", status=403)
