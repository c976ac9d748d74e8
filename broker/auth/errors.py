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


# (code, query code, status) of an authorization failure per service, as each words it.
_ACCESS_DENIED = {
    "sqs": ("AccessDeniedException", "AccessDenied", 403),  # JSON __type; awsQueryCompatible -> AccessDenied
    "sns": ("AuthorizationErrorException", "AuthorizationError", 403),
    "kinesis": ("AccessDeniedException", None, 400),
    "sts": ("AccessDenied", None, 403),
}

# Kinesis (AWS JSON 1.1, no Query heritage) has its own names for the authentication failures.
_KINESIS = {
    "InvalidClientTokenId": ("UnrecognizedClientException", 400),
    "SignatureDoesNotMatch": ("InvalidSignatureException", 400),
    "RequestExpired": ("InvalidSignatureException", 400),
    "IncompleteSignature": ("IncompleteSignatureException", 400),
    "MissingAuthenticationToken": ("MissingAuthenticationTokenException", 403),
}


def for_service(error: BrokerError, service: str) -> BrokerError:
    """An authentication error under the name the service gives it."""
    if service == "kinesis" and error.code in _KINESIS:
        code, status = _KINESIS[error.code]
        return BrokerError(error.message, code=code, status=status)
    return error


def access_denied(service: str, principal_arn: str, action: str, resource: str, reason: str) -> BrokerError:
    """AWS's wording: who, which action, which resource, and why (no policy allows it / an explicit deny)."""
    code, query_code, status = _ACCESS_DENIED.get(service, ("AccessDenied", None, 403))
    error = BrokerError(f"User: {principal_arn} is not authorized to perform: {action} on resource: {resource} "
                        f"{reason}", code=code, status=status)
    error.query_code = query_code
    return error
