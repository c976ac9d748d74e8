"""Who is calling and what they may do: SigV4 verification, the credentials file, IAM policy evaluation.

Pure modules (``sigv4``, ``policy``, ``resources``, ``credentials``) do the work; ``authenticator`` glues them for
the gateway, and ``mode`` decides at start-up between dev mode (any credentials) and verified credentials.
"""

from broker.auth.authenticator import Authenticator, DevAuthenticator, Identity, RequestAuthenticator
from broker.auth.mode import SecurityMode, build_authenticator, security_mode

__all__ = ["Authenticator", "DevAuthenticator", "Identity", "RequestAuthenticator", "SecurityMode",
           "build_authenticator", "security_mode"]
